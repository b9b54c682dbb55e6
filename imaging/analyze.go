package imaging

import (
	"context"
	"fmt"
	"image"
	"image/color"

	"github.com/buckket/go-blurhash"
	"github.com/davidbyttow/govips/v2/vips"
)

// Analysis is what Prism learns of an original's pixels when it first sees
// it: its header, plus the placeholders sites show while it loads.
type Analysis struct {
	Header
	DominantColor string // #rrggbb of the most common colour; "" when fully transparent
	BlurHash      string
}

// placeholderSize bounds the thumbnail the placeholders come from.
const placeholderSize = 64

// Analyze decodes every pixel of src (every frame of an animation, at
// reduced scale where the format allows; an SVG drawn at placeholder size),
// so a corrupt or truncated file is refused here with a 415, a source over
// the limits with a 422. When ctx ends libvips stops, and it is a 503.
func (p *Processor) Analyze(ctx context.Context, src []byte) (Analysis, error) {
	in, err := p.PrepareAnalysis(src)
	if err != nil {
		return Analysis{}, err
	}
	return in.Run(ctx)
}

// Inspection is an analysis planned and bounded, not yet run.
type Inspection struct {
	src    []byte
	h      Header
	o      Options
	plan   Plan
	frames int // decoded
}

// placeholderOptions fit the placeholders' thumbnail.
var placeholderOptions = Options{Mode: ModeFit, Width: placeholderSize, Height: placeholderSize}

// PrepareAnalysis reads src's header and plans its analysis within the
// limits (415, 422).
func (p *Processor) PrepareAnalysis(src []byte) (*Inspection, error) {
	h, err := Probe(src)
	if err != nil {
		return nil, err
	}
	in, err := inspection(src, h, h.Frames)
	if err != nil {
		return nil, err
	}
	if err := p.checkCost(h, in.plan, h.Frames); err != nil {
		return nil, err
	}
	return in, nil
}

// inspection plans decoding frames of src, whose header is h, to the
// placeholders' size.
func inspection(src []byte, h Header, frames int) (*Inspection, error) {
	plan, err := NewPlan(Size{h.Width, h.Height}, placeholderOptions)
	if err != nil {
		return nil, err
	}
	return &Inspection{src: src, h: h, o: placeholderOptions, plan: plan, frames: frames}, nil
}

// Memory is about the most memory libvips will hold while in runs.
func (in *Inspection) Memory() int64 {
	return decodeMemory(in.h, in.plan, in.frames) + placeholderSize*placeholderSize*4*int64(in.frames)
}

// Run decodes every pixel of the frames planned and works the placeholders
// out from the first.
func (in *Inspection) Run(ctx context.Context) (Analysis, error) {
	h, plan := in.h, in.plan
	var first *image.NRGBA
	err := guarded(ctx, func(watch func(*vips.ImageRef)) error {
		img, err := load(ctx, in.src, h, plan, in.frames, h.Orientation <= 2 && in.frames == 1)
		if err != nil {
			return err
		}
		defer img.Close()
		watch(img)
		if err := render(img, h, plan, in.frames, PNG, in.o, nil, watch); err != nil {
			return err
		}
		pixels, err := img.ToBytes() // every frame, so every frame is decoded
		if err != nil {
			return err
		}
		first = toNRGBA(pixels, img.Width(), img.Height()/in.frames, img.Bands())
		return nil
	})
	if err != nil {
		return Analysis{}, err
	}
	return analysis(h, first)
}

// analysis is h with the placeholders of img, the source at about the
// placeholders' size.
func analysis(h Header, img *image.NRGBA) (Analysis, error) {
	a := Analysis{Header: h, DominantColor: dominantColor(img)}
	var err error
	if a.BlurHash, err = blurhash.Encode(4, 3, onWhite{img}); err != nil {
		return Analysis{}, fmt.Errorf("blurhash: %w", err)
	}
	return a, nil
}

// Analysis is the analysis of t's source, for an original first seen when
// t is asked of it, worked out at little cost: the header t has read, and
// the placeholders from out, t's output, when it shows the whole source
// (a resize: no crop, padding or flattening), else from the source's
// first frame decoded at the smallest scale its format allows.
func (t *Transform) Analysis(ctx context.Context, out *Encoded) (Analysis, error) {
	whole := t.plan.Crop == (Rect{0, 0, t.h.Width, t.h.Height}) && t.plan.Window == (Rect{0, 0, t.plan.Resized.W, t.plan.Resized.H}) &&
		!t.plan.pads() && (t.out.supportsAlpha() || !t.h.HasAlpha) &&
		!t.plan.orients() && t.o.Trim == nil && t.o.Adjust == (Adjust{}) && t.o.Mark == nil
	if !whole {
		in, err := inspection(t.src, t.h, 1)
		if err != nil {
			return Analysis{}, err
		}
		return in.Run(ctx)
	}
	var small *image.NRGBA
	err := guarded(ctx, func(watch func(*vips.ImageRef)) error {
		img, err := vips.NewThumbnailWithSizeFromBuffer(out.Data, placeholderSize, placeholderSize, vips.InterestingNone, vips.SizeDown)
		if err != nil {
			return err
		}
		defer img.Close()
		watch(img)
		if img.BandFormat() != vips.BandFormatUchar || img.Bands() > 4 {
			return fmt.Errorf("a rendered %s decodes as %d bands of %v", out.Format, img.Bands(), img.BandFormat())
		}
		pixels, err := img.ToBytes()
		if err != nil {
			return err
		}
		small = toNRGBA(pixels, img.Width(), img.Height(), img.Bands())
		return nil
	})
	if err != nil {
		return Analysis{}, err
	}
	return analysis(t.h, small)
}

// toNRGBA wraps the first w×h pixels of an 8-bit buffer as the pipeline
// leaves it (grey, grey and alpha, sRGB or sRGB and alpha: 1 to 4 bands) as
// an image.
func toNRGBA(pix []byte, w, h, bands int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	colour := bands >= 3
	for i := range w * h {
		s := pix[i*bands:]
		d := img.Pix[i*4:]
		d[0], d[1], d[2], d[3] = s[0], s[0], s[0], 255
		if colour {
			d[1], d[2] = s[1], s[2]
		}
		if bands == 2 || bands == 4 {
			d[3] = s[bands-1]
		}
	}
	return img
}

// dominantColor is the mean colour of the most populated cell when the
// colour cube is cut into 16×16×16 cells, ignoring mostly transparent pixels.
func dominantColor(img *image.NRGBA) string {
	var count [4096]int
	var sum [4096][3]int
	for i := 0; i < len(img.Pix); i += 4 {
		p := img.Pix[i : i+4]
		if p[3] < 128 {
			continue
		}
		cell := int(p[0]>>4)<<8 | int(p[1]>>4)<<4 | int(p[2]>>4)
		count[cell]++
		sum[cell][0] += int(p[0])
		sum[cell][1] += int(p[1])
		sum[cell][2] += int(p[2])
	}
	best := -1
	for cell, n := range count {
		if n > 0 && (best < 0 || n > count[best]) {
			best = cell
		}
	}
	if best < 0 {
		return ""
	}
	n := count[best]
	return fmt.Sprintf("#%02x%02x%02x", sum[best][0]/n, sum[best][1]/n, sum[best][2]/n)
}

// onWhite shows an image composited over white: BlurHash has no alpha.
type onWhite struct{ *image.NRGBA }

func (o onWhite) At(x, y int) color.Color {
	c := o.NRGBAAt(x, y)
	a := int(c.A)
	blend := func(v uint8) uint8 { return uint8((int(v)*a + 255*(255-a)) / 255) }
	return color.NRGBA{blend(c.R), blend(c.G), blend(c.B), 255}
}
