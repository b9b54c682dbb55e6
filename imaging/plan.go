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
//	Crop    region of the upright source
//	Resized size the crop region is scaled to
//	Trim    region of the resized image that is kept (its size, and its
//	        position unless Strategy picks it from the content)
//	Canvas  final size; larger than Trim only when letterboxing, with the
//	        trimmed image placed at Offset
type Plan struct {
	Crop     Rect
	Resized  Size
	Trim     Rect
	Strategy Strategy
	Canvas   Size
	Offset   Size
}

// pads says the plan embeds the image in a larger canvas.
func (p Plan) pads() bool { return p.Canvas.W != p.Trim.W || p.Canvas.H != p.Trim.H }

// NewPlan works out the geometry of o on a source whose upright size is src
// (one frame, for animations).
func NewPlan(src Size, o Options) (Plan, error) {
	p := Plan{Crop: Rect{0, 0, src.W, src.H}}
	if o.Crop != nil {
		c, err := cropRect(src, *o.Crop)
		if err != nil {
			return Plan{}, err
		}
		p.Crop = c
	}
	region := Size{p.Crop.W, p.Crop.H}
	// zoom and dpr scale the box as a whole, so capping it at MaxDimension
	// keeps its aspect ratio.
	s := o.scale()
	if longest := float64(max(o.Width, o.Height)); longest*s > MaxDimension {
		s = MaxDimension / longest
	}
	box := Size{scaleDim(o.Width, s), scaleDim(o.Height, s)}

	p.Resized = region
	switch o.Mode {
	case ModeFit, ModeLetterbox:
		p.Resized = fitInside(region, box)
	case ModeCover:
		return p.cover(region, box, o), nil
	}
	p.Trim = Rect{0, 0, p.Resized.W, p.Resized.H}
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
	p.Trim = anchor(p.Resized, box, o.Gravity)
	p.Strategy = o.Strategy
	p.Canvas = box
	return p
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
