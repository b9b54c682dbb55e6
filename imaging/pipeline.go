// Package imaging turns an original image into a variant with libvips: it
// parses transform options, plans the geometry, decodes with shrink-on-load,
// orients, converts to sRGB, resizes, crops, pads and encodes. It knows
// nothing of HTTP or of where originals are stored.
package imaging

import (
	"errors"
	"math"
	"net/http"
	"strings"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/prism-image/prism"
)

// Config bounds and tunes the pipeline.
type Config struct {
	MaxSourcePixels int64 // width × height × frames
	MaxFrames       int   // frames kept in animated output
	Quality         Quality
}

// Quality holds the default encoder quality per lossy format.
type Quality struct{ JPEG, WebP, AVIF int }

// DefaultConfig is the configuration the service ships with.
var DefaultConfig = Config{
	MaxSourcePixels: 50_000_000,
	MaxFrames:       100,
	Quality:         Quality{JPEG: 82, WebP: 80, AVIF: 60},
}

// Variant is an encoded output image.
type Variant struct {
	Data          []byte
	Format        Format
	Width, Height int // one frame
	Frames        int
}

// Processor runs transforms. It is safe for concurrent use.
type Processor struct{ cfg Config }

// NewProcessor returns a Processor with cfg.
func NewProcessor(cfg Config) *Processor { return &Processor{cfg: cfg} }

// Process transforms src as o asks. accepts matters only when o.Format is
// FormatAuto. Errors are *prism.Error: 415 for undecodable sources, 422 for
// sources over the limits, 400 for impossible geometry.
func (p *Processor) Process(src []byte, o Options, accepts Accepts) (*Variant, error) {
	h, err := Probe(src)
	if err != nil {
		return nil, err
	}
	if err := p.CheckSize(h.Width, h.Height, h.Frames); err != nil {
		return nil, err
	}
	out := outputFormat(o.Format, accepts, h.Format, h.HasAlpha, h.Frames > 1)
	frames := 1
	if h.Frames > 1 && out.animates() {
		frames = min(h.Frames, p.cfg.MaxFrames)
	}
	plan, err := NewPlan(Size{h.Width, h.Height}, o)
	if err != nil {
		return nil, err
	}

	img, err := load(src, h, plan, frames)
	if err != nil {
		return nil, undecodable(err)
	}
	defer img.Close()
	if err := render(img, h, plan, frames, out, o); err != nil {
		return nil, undecodable(err)
	}
	data, err := encode(img, out, p.quality(out, o))
	if err != nil {
		return nil, undecodable(err)
	}
	return &Variant{Data: data, Format: out, Width: img.Width(), Height: img.Height() / frames, Frames: frames}, nil
}

// CheckSize refuses (422) a source whose pixels, over every frame, exceed
// the limit. Callers that know a source's size without its bytes (from
// cached metadata) check before downloading it.
func (p *Processor) CheckSize(width, height, frames int) error {
	if px := int64(width) * int64(height) * int64(frames); px > p.cfg.MaxSourcePixels {
		return prism.Errorf(http.StatusUnprocessableEntity, prism.CodeTooLarge,
			"source is %dx%d with %d frame(s): %d pixels, over the limit of %d", width, height, frames, px, p.cfg.MaxSourcePixels)
	}
	return nil
}

// quality is the explicit quality, or the format's default lowered by zoom
// as Tachyon does (a zoomed image has more pixels to hide artefacts in).
func (p *Processor) quality(f Format, o Options) int {
	if o.Quality > 0 {
		return o.Quality
	}
	q := map[Format]int{JPEG: p.cfg.Quality.JPEG, WebP: p.cfg.Quality.WebP, AVIF: p.cfg.Quality.AVIF}[f]
	if o.Zoom > 1 && q > 0 {
		d, z := float64(q), o.Zoom
		v := math.Round(d - math.Log(z)/math.Log(d/z)*(d*z))
		q = int(math.Max(math.Round(d/z), math.Min(v, d)))
	}
	return q
}

// load decodes src with shrink-on-load: JPEG decodes at 1/2, 1/4 or 1/8 and
// WebP at any scale, whichever keeps at least the pixels the plan needs.
// Access is sequential (streamed, low memory) unless a step needs to read
// pixels out of order: rotation, content-aware crops or animations.
func load(src []byte, h Header, plan Plan, frames int) (*vips.ImageRef, error) {
	params := vips.NewImportParams() // FailOnError: truncated input is an error
	if shrink := shrinkFactor(plan); shrink > 1 {
		switch h.Format {
		case JPEG:
			params.JpegShrinkFactor.Set(shrink)
		case WebP:
			params.WebpScaleFactor.Set(1 / float64(shrink))
		}
	}
	if frames > 1 {
		params.NumPages.Set(frames)
	}
	if h.Orientation <= 2 && plan.Strategy == "" && frames == 1 {
		params.Access.Set(vips.AccessSequential)
	}
	img, err := decode(src, h.Format, params)
	if err != nil {
		return nil, err
	}
	if frames == 1 && h.Orientation > 1 {
		if err := img.AutoRotate(); err != nil {
			img.Close()
			return nil, err
		}
	}
	return img, nil
}

// shrinkFactor is the largest power of two, up to 8, by which the source can
// be shrunk while still holding the resolution the plan resizes to.
func shrinkFactor(plan Plan) int {
	s := math.Max(float64(plan.Resized.W)/float64(plan.Crop.W), float64(plan.Resized.H)/float64(plan.Crop.H))
	shrink := 1
	for shrink < 8 && float64(shrink*2)*s <= 1 {
		shrink *= 2
	}
	return shrink
}

// render applies the plan to the decoded (and maybe shrunk) image.
func render(img *vips.ImageRef, h Header, plan Plan, frames int, out Format, o Options) error {
	// The loader may have shrunk the image: map the plan's source
	// coordinates onto what was actually decoded.
	fx := float64(img.Width()) / float64(h.Width)
	fy := float64(img.Height()/frames) / float64(h.Height)
	crop := Rect{
		X: int(math.Round(float64(plan.Crop.X) * fx)),
		Y: int(math.Round(float64(plan.Crop.Y) * fy)),
	}
	crop.W = min(img.Width()-crop.X, max(1, int(math.Round(float64(plan.Crop.W)*fx))))
	crop.H = min(img.Height()/frames-crop.Y, max(1, int(math.Round(float64(plan.Crop.H)*fy))))
	if crop != (Rect{0, 0, img.Width(), img.Height() / frames}) {
		if err := img.ExtractArea(crop.X, crop.Y, crop.W, crop.H); err != nil {
			return err
		}
	}
	if crop.W != plan.Resized.W || crop.H != plan.Resized.H {
		hs := float64(plan.Resized.W) / float64(crop.W)
		vs := float64(plan.Resized.H) / float64(crop.H)
		if err := img.ResizeWithVScale(hs, vs, vips.KernelLanczos3); err != nil {
			return err
		}
	}
	if err := toSRGB(img); err != nil {
		return err
	}
	if err := trim(img, plan, frames); err != nil {
		return err
	}
	if plan.Canvas.W != plan.Trim.W || plan.Canvas.H != plan.Trim.H {
		if err := pad(img, plan, background(o, black)); err != nil {
			return err
		}
	}
	if !out.supportsAlpha() && img.HasAlpha() {
		bg := background(o, white)
		return img.Flatten(&vips.Color{R: bg.R, G: bg.G, B: bg.B})
	}
	return nil
}

func trim(img *vips.ImageRef, plan Plan, frames int) error {
	w, h := img.Width(), img.Height()/frames
	t := plan.Trim
	t.W, t.H = min(t.W, w), min(t.H, h)
	t.X, t.Y = min(t.X, w-t.W), min(t.Y, h-t.H)
	if t == (Rect{0, 0, w, h}) {
		return nil
	}
	if plan.Strategy != "" && frames == 1 {
		interesting := vips.InterestingAttention
		if plan.Strategy == StrategyEntropy {
			interesting = vips.InterestingEntropy
		}
		return img.SmartCrop(t.W, t.H, interesting)
	}
	return img.ExtractArea(t.X, t.Y, t.W, t.H)
}

func pad(img *vips.ImageRef, plan Plan, bg Color) error {
	if img.HasAlpha() {
		return img.EmbedBackgroundRGBA(plan.Offset.W, plan.Offset.H, plan.Canvas.W, plan.Canvas.H,
			&vips.ColorRGBA{R: bg.R, G: bg.G, B: bg.B, A: 255})
	}
	return img.EmbedBackground(plan.Offset.W, plan.Offset.H, plan.Canvas.W, plan.Canvas.H,
		&vips.Color{R: bg.R, G: bg.G, B: bg.B})
}

func background(o Options, def Color) Color {
	if o.Background != nil {
		return *o.Background
	}
	return def
}

// toSRGB converts img to 8-bit sRGB: through its embedded ICC profile when it
// has one (P3, ProPhoto, CMYK…), through libvips' built-in CMYK profile for
// untagged CMYK, and by plain colourspace conversion otherwise (grey, 16-bit).
func toSRGB(img *vips.ImageRef) error {
	cmyk := img.Interpretation() == vips.InterpretationCMYK
	if img.HasICCProfile() || cmyk {
		fallback := srgbProfile
		if cmyk {
			fallback = "cmyk"
		}
		if err := img.TransformICCProfileWithFallback(srgbProfile, fallback); err != nil {
			return err
		}
	}
	if img.Interpretation() != vips.InterpretationSRGB || img.BandFormat() != vips.BandFormatUchar {
		if err := img.ToColorSpace(vips.InterpretationSRGB); err != nil {
			return err
		}
	}
	if img.BandFormat() != vips.BandFormatUchar {
		return img.Cast(vips.BandFormatUchar)
	}
	return nil
}

// strip drops EXIF (GPS included), XMP, IPTC and the ICC profile (pixels are
// sRGB by now), keeping what animation needs.
func strip(img *vips.ImageRef) error {
	if err := img.RemoveMetadata(); err != nil {
		return err
	}
	if img.HasICCProfile() {
		if err := img.RemoveICCProfile(); err != nil {
			return err
		}
	}
	return img.RemoveOrientation()
}

// encode writes img as f, with no metadata.
func encode(img *vips.ImageRef, f Format, quality int) ([]byte, error) {
	if err := strip(img); err != nil {
		return nil, err
	}
	var (
		data []byte
		err  error
	)
	switch f {
	case JPEG:
		data, _, err = img.ExportJpeg(&vips.JpegExportParams{StripMetadata: true, Quality: quality, OptimizeCoding: true})
	case PNG:
		data, _, err = img.ExportPng(&vips.PngExportParams{StripMetadata: true, Compression: 6, Filter: vips.PngFilterNone})
	case WebP:
		data, _, err = img.ExportWebp(&vips.WebpExportParams{StripMetadata: true, Quality: quality, ReductionEffort: 4})
		data = stripWebPMetadata(data)
	case AVIF:
		data, _, err = img.ExportAvif(&vips.AvifExportParams{StripMetadata: true, Quality: quality, Bitdepth: 8, Effort: 2})
	case GIF:
		data, _, err = img.ExportGIF(&vips.GifExportParams{StripMetadata: true, Effort: 7, Bitdepth: 8})
	default:
		return nil, prism.Errorf(http.StatusInternalServerError, prism.CodeInternal, "no encoder for %s", f)
	}
	return data, err
}

// undecodable wraps a libvips failure: once the header has been read, a
// failure while pulling pixels means the file is broken or truncated.
func undecodable(err error) error {
	if _, ok := err.(*prism.Error); ok {
		return err
	}
	// govips appends a Go stack trace to libvips' message: keep the message.
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return prism.Wrap(errors.New(msg), http.StatusUnsupportedMediaType, prism.CodeUndecodable, "source image could not be decoded")
}
