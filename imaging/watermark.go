package imaging

import (
	"errors"
	"math"
	"strings"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/prism-image/prism"
)

// markImage is a watermark original, its header read.
type markImage struct {
	src []byte
	h   Header
}

// SetMark gives t the bytes of the watermark its options name, within the
// source limits. A mark that is no image Prism draws is a 400 naming mark;
// one over the limits a 422.
func (t *Transform) SetMark(src []byte) error {
	if t.o.Mark == nil {
		return nil
	}
	h, err := Probe(src)
	if err != nil {
		return prism.InvalidParam("mark", "%s is not an image Prism can read", t.o.Mark.Key)
	}
	if err := t.p.CheckMark(t.o.Mark.Key, h); err != nil {
		return err
	}
	t.mark = &markImage{src: src, h: h}
	return nil
}

// CheckMark refuses, from its header alone (read, or from cached
// metadata), a watermark Prism does not draw (an SVG, a 400) or one over
// the source limits (a 422), each naming mark.
func (p *Processor) CheckMark(key string, h Header) error {
	if h.Format == SVG {
		return prism.InvalidParam("mark", "%s is an SVG; a watermark must be a raster image (PNG, WebP, JPEG, GIF or AVIF)", key)
	}
	if err := p.checkSource(h.Width, h.Height, 1); err != nil {
		e := prism.Fail(prism.CodeTooLarge, "watermark %s: %s", key, prism.AsError(err).Message)
		e.Param = "mark"
		return e
	}
	return nil
}

// markMemory is about what decoding the watermark holds: its first frame,
// decoded whole, and the mark as drawn.
func (t *Transform) markMemory() int64 {
	if t.mark == nil {
		return 0
	}
	return int64(t.mark.h.Width)*int64(t.mark.h.Height)*4 + int64(t.plan.Canvas.W)*int64(t.plan.Canvas.H)*4
}

// drawMark draws the watermark over every frame of img (sized, before any
// letterbox padding): scaled as mark-w says and to fit inside the padding,
// aligned, at its opacity.
func drawMark(img *vips.ImageRef, m Watermark, src *markImage, frames int, watch func(*vips.ImageRef)) error {
	w, h := img.Width(), img.Height()/frames
	room := Size{max(1, w-2*m.Pad), max(1, h-2*m.Pad)}
	width, size := room.W, vips.SizeDown // its own size, or less to fit
	if m.Width > 0 {
		width, size = int(m.Width), vips.SizeBoth
		if m.Width <= 1 {
			width = max(1, int(math.Round(m.Width*float64(w))))
		}
		width = min(width, room.W)
	}
	mark, err := loadMark(src, m, width, room.H, size, watch)
	if err != nil {
		return err
	}
	defer mark.Close()
	x := align(m.HAlign, w, mark.Width(), m.Pad)
	y := align(map[string]string{"top": "left", "middle": "center", "bottom": "right"}[m.VAlign], h, mark.Height(), m.Pad)
	opaque := !img.HasAlpha()
	err = eachFrame(img, frames, func(f *vips.ImageRef) error {
		if err := f.Composite(mark, vips.BlendModeOver, x, y); err != nil {
			return err
		}
		if opaque { // composite adds an alpha band the output does not need
			return f.ExtractBand(0, f.Bands()-1)
		}
		return nil
	})
	return err
}

// loadMark decodes the watermark at the size it is drawn, as 8-bit sRGB
// with alpha at its opacity, whole and at once (watched, so that the
// deadline stops it): a broken one is a 400 naming mark here, not a
// failure of the image it marks at encoding.
func loadMark(src *markImage, m Watermark, width, height int, size vips.Size, watch func(*vips.ImageRef)) (*vips.ImageRef, error) {
	// Truncated or corrupt pixels are an error, as they are for a source.
	img, err := vips.LoadThumbnailFromBuffer(src.src, width, height, vips.InterestingNone, size, vips.NewImportParams())
	if err != nil {
		return nil, badMark(m, err)
	}
	defer img.Close()
	watch(img)
	pix, err := markPixels(img, m)
	if err != nil {
		return nil, badMark(m, err)
	}
	return vips.NewImageFromMemory(pix, img.Width(), img.Height(), 4, vips.BandFormatUchar, vips.InterpretationSRGB)
}

// markPixels renders the decoded watermark as 8-bit sRGB with alpha, at
// the opacity m asks for.
func markPixels(img *vips.ImageRef, m Watermark) ([]byte, error) {
	if err := toSRGB(img); err != nil {
		return nil, err
	}
	if !img.HasAlpha() {
		if err := img.AddAlpha(); err != nil {
			return nil, err
		}
	}
	if m.Alpha < 100 {
		a := float64(m.Alpha) / 100
		if err := img.Linear([]float64{1, 1, 1, a}, []float64{0, 0, 0, 0}); err != nil {
			return nil, err
		}
		if err := toUchar(img); err != nil {
			return nil, err
		}
	}
	return img.ToBytes()
}

// badMark is a watermark that could not be drawn: a 400 naming mark. (A
// deadline that stopped it is a 503 all the same: guarded asks first.)
func badMark(m Watermark, err error) error {
	msg, _, _ := strings.Cut(err.Error(), "\n") // govips appends a stack trace
	return prism.InvalidParam("mark", "%s could not be decoded", m.Key).WithCause(errors.New(msg))
}

// align is where a mark of length n starts on a side of length side: at
// pad from the start (left, top), centred, or at pad from the end.
func align(where string, side, n, pad int) int {
	var at int
	switch where {
	case "left":
		at = pad
	case "center":
		at = (side - n) / 2
	default:
		at = side - n - pad
	}
	return min(max(0, side-n), max(0, at))
}
