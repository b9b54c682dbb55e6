package imaging

import (
	"math"

	"github.com/prism-image/prism"
)

// Size is a width and height in pixels.
type Size struct{ W, H int }

// Rect is a rectangle in pixels.
type Rect struct{ X, Y, W, H int }

// Plan is the geometry of one transform, worked out from the upright source
// size before any pixel is decoded. Every step is in the coordinates of the
// step before it:
//
//	Edges   region of the upright source that trim keeps (all of it
//	        without trim; found in the pixels when AutoTrim)
//	Rotate, Flip
//	        turn that region into the oriented image
//	Crop    region of the oriented image
//	Resized size the crop region is scaled to
//	Window  region of the resized image that is kept (its size, and its
//	        position unless Strategy picks it from the content)
//	Canvas  final size; larger than Window only when letterboxing, with
//	        the window placed at Offset
//
// The pipeline crops and resizes the upright source (SourceCrop, then
// SourceResized) and orients what is left, which is the same image at a
// fraction of the cost.
type Plan struct {
	Edges    Rect
	AutoTrim bool
	Rotate   int
	Flip     Flip
	Crop     Rect
	Resized  Size
	Window   Rect
	Strategy Strategy
	Canvas   Size
	Offset   Size
}

// pads says the plan embeds the image in a larger canvas.
func (p Plan) pads() bool { return p.Canvas.W != p.Window.W || p.Canvas.H != p.Window.H }

// turns says the plan rotates by a quarter turn, swapping width and height.
func (p Plan) turns() bool { return p.Rotate == 90 || p.Rotate == 270 }

// orients says the plan rotates or flips.
func (p Plan) orients() bool { return p.Rotate != 0 || p.Flip != "" }

// SourceCrop is Crop in the coordinates of the upright source.
func (p Plan) SourceCrop() Rect {
	r, e := p.Crop, Size{p.Edges.W, p.Edges.H}
	o := e
	if p.turns() {
		o = Size{e.H, e.W}
	}
	if p.Flip == FlipH || p.Flip == FlipHV {
		r.X = o.W - r.X - r.W
	}
	if p.Flip == FlipV || p.Flip == FlipHV {
		r.Y = o.H - r.Y - r.H
	}
	switch p.Rotate {
	case 90:
		r = Rect{r.Y, e.H - r.X - r.W, r.H, r.W}
	case 180:
		r = Rect{e.W - r.X - r.W, e.H - r.Y - r.H, r.W, r.H}
	case 270:
		r = Rect{e.W - r.Y - r.H, r.X, r.H, r.W}
	}
	r.X += p.Edges.X
	r.Y += p.Edges.Y
	return r
}

// SourceResized is Resized before rotation.
func (p Plan) SourceResized() Size {
	if p.turns() {
		return Size{p.Resized.H, p.Resized.W}
	}
	return p.Resized
}

// NewPlan works out the geometry of o on a source whose upright size is src
// (one frame, for animations). With trim=auto the plan is for the whole
// source, which bounds the plan for whatever part the trim keeps.
func NewPlan(src Size, o Options) (Plan, error) {
	edges := Rect{0, 0, src.W, src.H}
	if t := o.Trim; t != nil && !t.Auto {
		e := t.Edges // top, right, bottom, left
		edges = Rect{e[3], e[0], src.W - e[1] - e[3], src.H - e[0] - e[2]}
		if edges.W < 1 || edges.H < 1 {
			return Plan{}, prism.InvalidParam("trim", "%s leaves nothing of the %dx%d image", t, src.W, src.H)
		}
	}
	return planOn(edges, o)
}

// planOn plans o on the region edges of the upright source.
func planOn(edges Rect, o Options) (Plan, error) {
	p := Plan{Edges: edges, AutoTrim: o.Trim != nil && o.Trim.Auto, Rotate: o.Rotate, Flip: o.Flip}
	oriented := Size{edges.W, edges.H}
	if p.turns() {
		oriented = Size{edges.H, edges.W}
	}
	p.Crop = Rect{0, 0, oriented.W, oriented.H}
	if o.Crop != nil {
		c, err := cropRect(oriented, *o.Crop)
		if err != nil {
			return Plan{}, err
		}
		p.Crop = c
	}
	region := Size{p.Crop.W, p.Crop.H}
	width, height := o.Width, o.Height
	if width == 0 && o.WidthPct > 0 {
		width = max(1, int(math.Round(float64(region.W)*o.WidthPct/100)))
	}
	if height == 0 && o.HeightPct > 0 {
		height = max(1, int(math.Round(float64(region.H)*o.HeightPct/100)))
	}
	// zoom and dpr scale the box as a whole, so capping it at MaxDimension
	// keeps its aspect ratio.
	s := o.scale()
	if longest := float64(max(width, height)); longest*s > MaxDimension {
		s = MaxDimension / longest
	}
	box := Size{scaleDim(width, s), scaleDim(height, s)}

	p.Resized = region
	switch o.Mode {
	case ModeFit, ModeLetterbox:
		p.Resized = fitInside(region, box)
	case ModeCover:
		return p.cover(region, box, o), nil
	}
	p.Window = Rect{0, 0, p.Resized.W, p.Resized.H}
	p.Canvas = p.Resized
	if o.Mode == ModeLetterbox {
		p.Canvas = box
		p.Offset = Size{(box.W - p.Resized.W) / 2, (box.H - p.Resized.H) / 2}
	}
	return p, nil
}

// cover scales region to cover box and trims it to exactly box. It never
// enlarges: when the region is too small it keeps the box's aspect ratio at
// the largest size the region allows.
func (p Plan) cover(region, box Size, o Options) Plan {
	s := math.Max(float64(box.W)/float64(region.W), float64(box.H)/float64(region.H))
	if s > 1 {
		k := math.Min(float64(region.W)/float64(box.W), float64(region.H)/float64(box.H))
		box = Size{clampDim(box.W, k, region.W), clampDim(box.H, k, region.H)}
		p.Resized = region
	} else {
		p.Resized = Size{
			max(box.W, int(math.Round(float64(region.W)*s))),
			max(box.H, int(math.Round(float64(region.H)*s))),
		}
	}
	p.Window = anchor(p.Resized, box, o.Gravity)
	if f := o.Focus; f != nil {
		p.Window.X = focus(f.X, p.Resized.W, box.W)
		p.Window.Y = focus(f.Y, p.Resized.H, box.H)
	}
	p.Strategy = o.Strategy
	p.Canvas = box
	return p
}

// focus is where a window of length n starts, centred on the fraction f of
// a side of length side, within it.
func focus(f float64, side, n int) int {
	return min(side-n, max(0, int(math.Round(f*float64(side)-float64(n)/2))))
}

func clampDim(d int, k float64, limit int) int {
	return min(limit, max(1, int(math.Round(float64(d)*k))))
}

// fitInside scales region down to fit box (0 = unbounded), never enlarging.
// The bounding side lands exactly on the box.
func fitInside(region, box Size) Size {
	s := 1.0
	if box.W > 0 {
		s = math.Min(s, float64(box.W)/float64(region.W))
	}
	if box.H > 0 {
		s = math.Min(s, float64(box.H)/float64(region.H))
	}
	if s >= 1 {
		return region
	}
	out := Size{
		max(1, int(math.Round(float64(region.W)*s))),
		max(1, int(math.Round(float64(region.H)*s))),
	}
	if box.W > 0 && s == float64(box.W)/float64(region.W) {
		out.W = box.W
	}
	if box.H > 0 && s == float64(box.H)/float64(region.H) {
		out.H = box.H
	}
	return out
}

// anchor places a box-sized window inside an image of size img by gravity.
func anchor(img, box Size, g Gravity) Rect {
	dx, dy := img.W-box.W, img.H-box.H
	x, y := dx/2, dy/2
	switch g {
	case GravityNorth, GravityNorthEast, GravityNorthWest:
		y = 0
	case GravitySouth, GravitySouthEast, GravitySouthWest:
		y = dy
	}
	switch g {
	case GravityWest, GravityNorthWest, GravitySouthWest:
		x = 0
	case GravityEast, GravityNorthEast, GravitySouthEast:
		x = dx
	}
	return Rect{x, y, box.W, box.H}
}

// scaleDim applies zoom and dpr to a requested dimension, within MaxDimension.
func scaleDim(d int, s float64) int {
	if d == 0 {
		return 0
	}
	return min(MaxDimension, max(1, int(math.Round(float64(d)*s))))
}

// cropRect resolves r against the source and clips it to the image.
func cropRect(src Size, r Region) (Rect, error) {
	x, y := r.X.resolve(src.W), r.Y.resolve(src.H)
	w, h := r.W.resolve(src.W), r.H.resolve(src.H)
	x1, y1 := min(src.W, x+w), min(src.H, y+h)
	if x >= src.W || y >= src.H || x1 <= x || y1 <= y {
		return Rect{}, prism.InvalidParam("crop", "region %s lies outside the %dx%d image", r, src.W, src.H)
	}
	return Rect{x, y, x1 - x, y1 - y}, nil
}
