package imaging

import (
	"math"

	"github.com/davidbyttow/govips/v2/vips"
)

// The pixel work of effects.go's parameters. Animations are a strip of
// frames one above the other: what moves pixels (rotation, a convolution, a
// watermark's position) is done frame by frame, so that no frame bleeds
// into the next; what maps each pixel on its own is done on the strip.

// eachFrame runs f on every frame of img (frames stacked, each
// img.Height()/frames high) and stacks the results again. f may change a
// frame's size, the same way for every frame.
func eachFrame(img *vips.ImageRef, frames int, f func(*vips.ImageRef) error) error {
	if frames == 1 {
		// The first frame of an animation kept alone still says it has
		// many pages, which govips' rotation would act on.
		if img.Pages() != 1 {
			if err := img.SetPages(1); err != nil {
				return err
			}
			if err := img.SetPageHeight(img.Height()); err != nil {
				return err
			}
		}
		return f(img)
	}
	w, h := img.Width(), img.Height()/frames
	// One frame as an image of its own: one page, the height of the whole.
	single := func(r *vips.ImageRef, i int) error {
		if err := r.SetPages(1); err != nil {
			return err
		}
		if err := r.SetPageHeight(r.Height()); err != nil {
			return err
		}
		return r.ExtractArea(0, i*h, w, h)
	}
	rest := make([]*vips.ImageRef, 0, frames-1)
	defer func() {
		for _, r := range rest {
			r.Close()
		}
	}()
	for i := 1; i < frames; i++ {
		r, err := img.Copy()
		if err != nil {
			return err
		}
		rest = append(rest, r)
		if err := single(r, i); err != nil {
			return err
		}
	}
	if err := single(img, 0); err != nil {
		return err
	}
	for _, r := range append([]*vips.ImageRef{img}, rest...) {
		if err := f(r); err != nil {
			return err
		}
	}
	if err := img.ArrayJoin(rest, 1); err != nil {
		return err
	}
	if err := img.SetPages(frames); err != nil {
		return err
	}
	return img.SetPageHeight(img.Height() / frames)
}

// orient rotates and flips every frame as plan says.
func orient(img *vips.ImageRef, plan Plan, frames int) error {
	if !plan.orients() {
		return nil
	}
	return eachFrame(img, frames, func(f *vips.ImageRef) error {
		if a, ok := map[int]vips.Angle{90: vips.Angle90, 180: vips.Angle180, 270: vips.Angle270}[plan.Rotate]; ok {
			if err := f.Rotate(a); err != nil {
				return err
			}
		}
		if plan.Flip == FlipH || plan.Flip == FlipHV {
			if err := f.Flip(vips.DirectionHorizontal); err != nil {
				return err
			}
		}
		if plan.Flip == FlipV || plan.Flip == FlipHV {
			return f.Flip(vips.DirectionVertical)
		}
		return nil
	})
}

// findTrim is the part of img (upright, as decoded at full size) that trim
// keeps: every frame's content, found by libvips' find_trim against the
// top-left pixel's colour, or for ulb the rows between black bars at the
// top and bottom. A frame that is all background keeps the whole.
func findTrim(img *vips.ImageRef, t Trim, frames int) (Rect, error) {
	c, err := img.Copy()
	if err != nil {
		return Rect{}, err
	}
	defer c.Close()
	if err := toSRGB(c); err != nil {
		return Rect{}, err
	}
	if c.HasAlpha() { // a transparent border is a border
		if err := c.Flatten(&vips.Color{R: 255, G: 255, B: 255}); err != nil {
			return Rect{}, err
		}
	}
	bg := vips.Color{}
	if !t.Black {
		p, err := c.GetPoint(0, 0)
		if err != nil {
			return Rect{}, err
		}
		bg = vips.Color{R: uint8(p[0]), G: uint8(p[1]), B: uint8(p[2])}
	}
	w, h := c.Width(), c.Height()/frames
	whole := Rect{0, 0, w, h}
	var box Rect
	err = eachFrame(c, frames, func(f *vips.ImageRef) error {
		l, tp, fw, fh, err := f.FindTrim(float64(t.Threshold), &bg)
		if err != nil {
			return err
		}
		if fw <= 0 || fh <= 0 {
			box = whole
		} else {
			box = union(box, Rect{l, tp, fw, fh})
		}
		return nil
	})
	if err != nil {
		return Rect{}, err
	}
	if box.W <= 0 || box.H <= 0 {
		return whole, nil
	}
	if t.Black { // Photon's ulb takes bars off the top and bottom only
		box.X, box.W = 0, w
	}
	return box, nil
}

func union(a, b Rect) Rect {
	if a.W <= 0 || a.H <= 0 {
		return b
	}
	x0, y0 := min(a.X, b.X), min(a.Y, b.Y)
	x1, y1 := max(a.X+a.W, b.X+b.W), max(a.Y+a.H, b.Y+b.H)
	return Rect{x0, y0, x1 - x0, y1 - y0}
}

// GD's 3×3 kernels, as Photon's filters draw with them: the weights by
// row, the divisor and the offset added after dividing.
type kernel struct {
	k           [9]float64
	div, offset float64
}

var (
	edgeDetect  = kernel{[9]float64{-1, 0, -1, 0, 4, 0, -1, 0, -1}, 1, 127}
	emboss      = kernel{[9]float64{1.5, 0, 0, 0, 0, 0, 0, 0, -1.5}, 1, 127}
	gaussian3   = kernel{[9]float64{1, 2, 1, 2, 4, 2, 1, 2, 1}, 16, 0}
	meanRemoval = kernel{[9]float64{-1, -1, -1, -1, 9, -1, -1, -1, -1}, 1, 0}
)

func smoothKernel(weight float64) kernel {
	return kernel{[9]float64{1, 1, 1, 1, weight, 1, 1, 1, 1}, weight + 8, 0}
}

// adjust applies a to img (sRGB or grey, 8 bits, sized) in the order the
// README gives: Photon's filter, then brightness, contrast and colorize,
// then smooth, all in GD's arithmetic; then blur and sharpen. Alpha is left
// as it is, except that blurs blur it too.
func adjust(img *vips.ImageRef, a Adjust, frames int) error {
	if a == (Adjust{}) {
		return nil
	}
	if err := colourOnly(img, func(c *vips.ImageRef) error { return pointFilter(c, a.Filter) }); err != nil {
		return err
	}
	var k *kernel
	switch a.Filter {
	case FilterEdgeDetect:
		k = &edgeDetect
	case FilterEmboss:
		k = &emboss
	case FilterMeanRemoval:
		k = &meanRemoval
	}
	if k != nil {
		if err := colourOnly(img, func(c *vips.ImageRef) error {
			if err := eachFrame(c, frames, func(f *vips.ImageRef) error { return convolve(f, *k) }); err != nil {
				return err
			}
			return toUchar(c)
		}); err != nil {
			return err
		}
	}
	switch a.Filter {
	case FilterBlurGaussian:
		if err := blurFrames(img, frames, func(f *vips.ImageRef) error { return convolve(f, gaussian3) }); err != nil {
			return err
		}
	case FilterBlurSelective:
		// GD averages the neighbours that are like the centre; a 3×3
		// median smooths the same flat areas and keeps the same edges.
		if err := blurFrames(img, frames, func(f *vips.ImageRef) error { return f.Rank(3, 3, 4) }); err != nil {
			return err
		}
	}
	if err := colourOnly(img, func(c *vips.ImageRef) error { return pointAdjust(c, a) }); err != nil {
		return err
	}
	if a.Smooth != nil {
		if err := blurFrames(img, frames, func(f *vips.ImageRef) error { return convolve(f, smoothKernel(*a.Smooth)) }); err != nil {
			return err
		}
	}
	if a.Blur > 0 {
		if err := blurFrames(img, frames, func(f *vips.ImageRef) error { return gaussianBlur(f, a.Blur/2) }); err != nil {
			return err
		}
	}
	if a.Sharpen > 0 {
		return colourOnly(img, func(c *vips.ImageRef) error {
			return eachFrame(c, frames, func(f *vips.ImageRef) error { return sharpen(f, a.Sharpen) })
		})
	}
	return nil
}

// blurFrames runs b on every frame of img, alpha included, with the
// colours premultiplied and in float from start to end (8-bit
// premultiplied colours would lose the faint ones), then rounds to 8 bits.
func blurFrames(img *vips.ImageRef, frames int, b func(*vips.ImageRef) error) error {
	if err := premultiplied(img, func(p *vips.ImageRef) error { return eachFrame(p, frames, b) }); err != nil {
		return err
	}
	return toUchar(img)
}

// pointFilter is Photon's filters that map each pixel by itself.
func pointFilter(c *vips.ImageRef, f Filter) error {
	switch f {
	case FilterGrayscale, FilterSepia:
		n := c.Bands()
		if n == 3 {
			g := []float64{0.299, 0.587, 0.114}
			if err := c.Recomb([][]float64{g, g, g}); err != nil {
				return err
			}
			if err := toUchar(c); err != nil {
				return err
			}
		}
		if f == FilterSepia {
			return linear(c, same(n, 1), []float64{100, 50, 0}[:n])
		}
	case FilterNegate:
		return c.Invert()
	}
	return nil
}

// pointAdjust is brightness, contrast and colorize, in that order.
func pointAdjust(c *vips.ImageRef, a Adjust) error {
	n := c.Bands()
	if a.Brightness != 0 {
		if err := linear(c, same(n, 1), same(n, float64(a.Brightness))); err != nil {
			return err
		}
	}
	if a.Contrast != 0 {
		// GD's contrast c scales the distance from mid-grey by
		// ((100-c)/100)²; Photon passes the value negated.
		f := (100 + float64(a.Contrast)) / 100
		f *= f
		if err := linear(c, same(n, f), same(n, 127.5*(1-f))); err != nil {
			return err
		}
	}
	if t := a.Colorize; t != nil && n == 3 {
		return linear(c, same(n, 1), []float64{float64(t.R), float64(t.G), float64(t.B)})
	}
	return nil
}

// linear maps each band by mul and add, ending in 8 bits, rounded and
// clipped, as each of GD's steps does.
func linear(c *vips.ImageRef, mul, add []float64) error {
	if err := c.Linear(mul, add); err != nil {
		return err
	}
	return toUchar(c)
}

// same is n copies of v.
func same(n int, v float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// convolve applies k to one frame, the edges extended as GD extends them.
// The sum is built of shifted copies (govips has no convolution), and left
// in float.
func convolve(img *vips.ImageRef, k kernel) error {
	w, h := img.Width(), img.Height()
	if err := img.Embed(1, 1, w+2, h+2, vips.ExtendCopy); err != nil {
		return err
	}
	first := -1
	var terms []*vips.ImageRef
	defer func() {
		for _, t := range terms {
			t.Close()
		}
	}()
	for i, v := range k.k {
		if v == 0 {
			continue
		}
		if first < 0 {
			first = i
			continue
		}
		t, err := img.Copy()
		if err != nil {
			return err
		}
		terms = append(terms, t)
		if err := t.ExtractArea(i%3, i/3, w, h); err != nil {
			return err
		}
		if err := t.Linear1(v/k.div, 0); err != nil {
			return err
		}
	}
	if err := img.ExtractArea(first%3, first/3, w, h); err != nil {
		return err
	}
	if err := img.Linear1(k.k[first]/k.div, k.offset); err != nil {
		return err
	}
	for _, t := range terms {
		if err := img.Add(t); err != nil {
			return err
		}
	}
	return nil
}

// gaussianBlur blurs one frame by sigma. A wide blur is done on the frame
// shrunk, at a sigma of 4, then scaled back: the same image, since the blur
// leaves no detail finer than the shrink, at a cost that does not grow
// with sigma.
func gaussianBlur(img *vips.ImageRef, sigma float64) error {
	const most = 4.0
	if sigma <= most {
		return blur(img, sigma)
	}
	w, h := img.Width(), img.Height()
	s := most / sigma
	sw, sh := max(1, int(math.Round(float64(w)*s))), max(1, int(math.Round(float64(h)*s)))
	if err := img.ResizeWithVScale(float64(sw)/float64(w), float64(sh)/float64(h), vips.KernelLinear); err != nil {
		return err
	}
	if err := blur(img, most); err != nil {
		return err
	}
	if err := img.ResizeWithVScale(float64(w)/float64(img.Width()), float64(h)/float64(img.Height()), vips.KernelCubic); err != nil {
		return err
	}
	if img.Width() != w || img.Height() != h { // rounding: at most a pixel
		if err := img.Embed(0, 0, w, h, vips.ExtendCopy); err != nil {
			return err
		}
		return img.ExtractArea(0, 0, w, h)
	}
	return nil
}

// blur is libvips' Gaussian blur in float (its integer masks, in 8.14,
// brighten a flat area by up to 2%), left in float. The mask ends where
// the curve falls to 0.01: the default, 0.2, leaves a single tap below
// sigma 0.8, no blur at all.
func blur(img *vips.ImageRef, sigma float64) error {
	if err := img.Cast(vips.BandFormatFloat); err != nil {
		return err
	}
	return img.GaussianBlur(sigma, 0.01)
}

// toUchar rounds img to 8 bits, clipped: libvips' cast truncates.
func toUchar(img *vips.ImageRef) error {
	if err := img.Linear1(1, 0.5); err != nil {
		return err
	}
	return img.Cast(vips.BandFormatUchar)
}

// sharpen is an unsharp mask of one frame's colour bands: the image plus
// amount times its difference from itself blurred by one output pixel,
// the amount half the strength on Cloudflare's 0–10 scale. (libvips'
// sharpen, as govips exposes it, caps its effect at a fixed lightness
// change, so that 10 would be hardly stronger than 3.)
func sharpen(img *vips.ImageRef, strength float64) error {
	amount := strength / 2
	blurred, err := img.Copy()
	if err != nil {
		return err
	}
	defer blurred.Close()
	if err := blur(blurred, 1); err != nil {
		return err
	}
	if err := blurred.Linear1(-amount, 0); err != nil {
		return err
	}
	if err := img.Linear1(1+amount, 0); err != nil {
		return err
	}
	if err := img.Add(blurred); err != nil {
		return err
	}
	return toUchar(img)
}

// colourOnly runs f on the colour bands of img, keeping its alpha aside.
func colourOnly(img *vips.ImageRef, f func(*vips.ImageRef) error) error {
	if !img.HasAlpha() {
		return f(img)
	}
	alpha, err := splitAlpha(img)
	if err != nil {
		return err
	}
	defer alpha.Close()
	if err := f(img); err != nil {
		return err
	}
	return img.BandJoin(alpha)
}

// splitAlpha takes img's last band (its alpha) out into an image of its
// own, leaving the colour bands in img.
func splitAlpha(img *vips.ImageRef) (*vips.ImageRef, error) {
	n := img.Bands()
	alpha, err := img.ExtractBandToImage(n-1, 1)
	if err != nil {
		return nil, err
	}
	if err := img.ExtractBand(0, n-1); err != nil {
		alpha.Close()
		return nil, err
	}
	return alpha, nil
}

// premultiplied runs f on img's colour premultiplied by its alpha, in
// float, and on its alpha, then divides the colour by the new alpha, so
// that a blur does not bleed the colour of transparent pixels into the
// visible ones. The result stays in float. (govips' own premultiplication
// is a state that its resizes clear, so it is not used here.)
func premultiplied(img *vips.ImageRef, f func(*vips.ImageRef) error) error {
	if err := img.Cast(vips.BandFormatFloat); err != nil {
		return err
	}
	if !img.HasAlpha() {
		return f(img)
	}
	alpha, err := splitAlpha(img)
	if err != nil {
		return err
	}
	defer alpha.Close()
	if err := withUnitAlpha(alpha, img.Multiply); err != nil {
		return err
	}
	if err := f(img); err != nil {
		return err
	}
	if err := f(alpha); err != nil {
		return err
	}
	if err := withUnitAlpha(alpha, img.Divide); err != nil { // 0 where alpha is 0
		return err
	}
	return img.BandJoin(alpha)
}

// withUnitAlpha calls op with alpha scaled from 0..255 to 0..1.
func withUnitAlpha(alpha *vips.ImageRef, op func(*vips.ImageRef) error) error {
	unit, err := alpha.Copy()
	if err != nil {
		return err
	}
	defer unit.Close()
	if err := unit.Linear1(1.0/255, 0); err != nil {
		return err
	}
	return op(unit)
}
