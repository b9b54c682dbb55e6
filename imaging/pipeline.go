// Package imaging turns an original image into a variant with libvips: it
// parses transform options, plans the geometry, bounds its cost, decodes
// with shrink-on-load, orients, converts to sRGB, resizes, crops, pads and
// encodes, and stops libvips when the caller's context ends. It knows
// nothing of HTTP or of where originals are stored.
package imaging

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/prism-image/prism"
)

// Config bounds and tunes the pipeline.
type Config struct {
	MaxSourcePixels int64 // width × height × frames decoded
	MaxOutputPixels int64 // width × height × frames encoded
	// MaxSVGPixels bounds what an SVG is drawn at. librsvg draws libvips'
	// 2000-pixel tiles one call at a time, and a filter (a blur) is worked
	// out over its whole region for every tile, so an SVG costs far more
	// per pixel than any raster source, and no call can be interrupted.
	MaxSVGPixels int64
	MaxFrames    int // frames kept in animated output
	Quality      Quality
	Effort       Effort
}

// Quality holds the default encoder quality per lossy format.
type Quality struct{ JPEG, WebP, AVIF int }

// Effort is how hard the AVIF (1–9) and WebP (0–6) encoders search for a
// smaller file at the same quality: CPU time against bytes. (govips passes
// no AVIF effort of 0 to libvips, which then uses its default, 4.)
type Effort struct{ AVIF, WebP int }

// DefaultConfig is the configuration the service ships with.
var DefaultConfig = Config{
	MaxSourcePixels: 50_000_000,
	MaxOutputPixels: 50_000_000,
	MaxSVGPixels:    4_000_000,
	MaxFrames:       100,
	Quality:         Quality{JPEG: 82, WebP: 80, AVIF: 60},
	Effort:          Effort{AVIF: 2, WebP: 5},
}

// Encoded is an encoded output image.
type Encoded struct {
	Data          []byte
	Format        Format
	Width, Height int // one frame
	Frames        int
	// Decode, Process and Encode are the time spent opening the source,
	// setting the operations up (computing pixels only for those that need
	// the whole image), and encoding. libvips pulls pixels through the
	// pipeline as the encoder asks for them, so Encode holds most of the
	// decoding and resizing too.
	Decode, Process, Encode time.Duration
}

// Processor runs transforms. It is safe for concurrent use.
type Processor struct{ cfg Config }

// NewProcessor returns a Processor with cfg.
func NewProcessor(cfg Config) *Processor { return &Processor{cfg: cfg} }

// Process transforms src as o asks: Prepare, then Run.
func (p *Processor) Process(ctx context.Context, src []byte, o Options, accepts Accepts) (*Encoded, error) {
	t, err := p.Prepare(src, o, accepts)
	if err != nil {
		return nil, err
	}
	return t.Run(ctx)
}

// Transform is a transform planned and bounded, not yet run: what it will
// cost is known before any pixel is decoded.
type Transform struct {
	p      *Processor
	src    []byte
	h      Header
	o      Options
	plan   Plan
	frames int // kept in the output
	out    Format
	mark   *markImage // set by SetMark
}

// Prepare reads src's header and plans o on it within the limits. accepts
// matters only when o.Format is FormatAuto. Errors are *prism.Error: 415
// for sources that are not images, 422 for sources or outputs over the
// limits, 400 for impossible geometry.
func (p *Processor) Prepare(src []byte, o Options, accepts Accepts) (*Transform, error) {
	h, err := Probe(src)
	if err != nil {
		return nil, err
	}
	return p.PrepareKnown(src, h, o, accepts)
}

// PrepareKnown is Prepare for a source whose header is already known, from
// its cached metadata: src is not probed again. Decoding checks that the
// source agrees with h.
func (p *Processor) PrepareKnown(src []byte, h Header, o Options, accepts Accepts) (*Transform, error) {
	t, err := p.plan(h, o, accepts)
	if err != nil {
		return nil, err
	}
	t.src = src
	return t, nil
}

// Check refuses, from what a source's header says (known without its
// bytes, from cached metadata), a transform that Prepare would refuse: 422
// over the limits, 400 for impossible geometry.
func (p *Processor) Check(h Header, o Options, accepts Accepts) error {
	_, err := p.plan(h, o, accepts)
	return err
}

// plan plans o on a source with header h, within the limits.
func (p *Processor) plan(h Header, o Options, accepts Accepts) (*Transform, error) {
	if t := o.Trim; t != nil && t.Auto && h.Format == SVG {
		// An SVG is drawn at the size the output needs, so a border
		// found in its pixels is not found in the source's.
		name := map[bool]string{false: "trim", true: "ulb"}[t.Black]
		return nil, prism.InvalidParam(name, "finds a border in a raster image; an SVG's edges are its viewBox")
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
	if err := p.checkCost(h, plan, frames); err != nil {
		return nil, err
	}
	return &Transform{p: p, h: h, o: o, plan: plan, frames: frames, out: out}, nil
}

// Memory is about the most memory libvips will hold while t runs.
func (t *Transform) Memory() int64 {
	m := decodeMemory(t.h, t.plan, t.frames) + int64(t.plan.Canvas.W)*int64(t.plan.Canvas.H)*int64(t.frames)*encodeBytesPerPixel[t.out]
	if t.plan.AutoTrim { // the source decoded whole, and a copy of it searched
		m += int64(t.h.Width) * int64(t.h.Height) * int64(t.frames) * 8
	}
	return m + t.markMemory()
}

// NeedsMark says t's options name a watermark, which SetMark must be given
// before Run.
func (t *Transform) NeedsMark() bool { return t.o.Mark != nil && t.mark == nil }

// Run decodes, transforms and encodes. When ctx ends libvips stops
// working on it, and it is a 503; a source that fails to decode is a 415.
func (t *Transform) Run(ctx context.Context) (*Encoded, error) {
	var enc *Encoded
	err := guarded(ctx, func(watch func(*vips.ImageRef)) error {
		start := time.Now()
		if t.NeedsMark() {
			return prism.Fail(prism.CodeInternal, "the watermark was not given")
		}
		img, err := load(ctx, t.src, t.h, t.plan, t.frames, t.sequential())
		if err != nil {
			return err
		}
		defer img.Close()
		watch(img)
		loaded := time.Now()
		plan := t.plan
		if plan.AutoTrim {
			if plan, err = t.trimmed(img); err != nil {
				return err
			}
		}
		if err := render(img, t.h, plan, t.frames, t.out, t.o, t.mark, watch); err != nil {
			return err
		}
		planned := time.Now()
		data, err := t.p.save(img, t.out, t.p.quality(t.out, t.o), t.keepsPalette(img, plan))
		if err != nil {
			return err
		}
		enc = &Encoded{
			Data: data, Format: t.out, Width: img.Width(), Height: img.Height() / t.frames, Frames: t.frames,
			Decode: loaded.Sub(start), Process: planned.Sub(loaded), Encode: time.Since(planned),
		}
		return nil
	})
	return enc, err
}

// keepsPalette says the PNG output of t can be written with the palette of
// its source (a palette PNG or a GIF) without changing a pixel: the plan
// run (trimmed, when trim=auto found a border) copies pixels without
// resampling them and adds no background colour, so
// the output's colours are the source palette's, 256 at most.
func (t *Transform) keepsPalette(img *vips.ImageRef, plan Plan) bool {
	if t.out != PNG || plan.Resized != (Size{plan.Crop.W, plan.Crop.H}) || plan.pads() ||
		t.o.Adjust != (Adjust{}) || t.o.Mark != nil {
		return false
	}
	return t.h.Format == GIF || t.h.Format == PNG && slices.Contains(img.ImageFields(), "palette-bit-depth")
}

func (p *Processor) checkSource(width, height, frames int) error {
	if px := int64(width) * int64(height) * int64(frames); px > p.cfg.MaxSourcePixels {
		return prism.Fail(prism.CodeTooLarge,
			"source is %dx%d with %d frame(s): %d pixels, over the limit of %d", width, height, frames, px, p.cfg.MaxSourcePixels)
	}
	return nil
}

// checkCost bounds what plan will decode and encode, before either starts:
// the source's pixels (an SVG's as drawn for this plan), and the output's
// pixels over every frame kept.
func (p *Processor) checkCost(h Header, plan Plan, frames int) error {
	if h.Format == SVG {
		s := svgScale(plan)
		w, ht := max(1, int(math.Ceil(float64(h.Width)*s))), max(1, int(math.Ceil(float64(h.Height)*s)))
		if px := int64(w) * int64(ht); px > min(p.cfg.MaxSVGPixels, p.cfg.MaxSourcePixels) {
			return prism.Fail(prism.CodeTooLarge,
				"this SVG would be drawn at %dx%d: %d pixels, over the limit of %d for SVGs; ask for a smaller size (w, h)",
				w, ht, px, min(p.cfg.MaxSVGPixels, p.cfg.MaxSourcePixels))
		}
	} else if err := p.checkSource(h.Width, h.Height, h.Frames); err != nil {
		return err
	}
	if px := int64(plan.Canvas.W) * int64(plan.Canvas.H) * int64(frames); px > p.cfg.MaxOutputPixels {
		return prism.Fail(prism.CodeOutputTooLarge,
			"output would be %dx%d with %d frame(s): %d pixels, over the limit of %d",
			plan.Canvas.W, plan.Canvas.H, frames, px, p.cfg.MaxOutputPixels)
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

// sequential says every step of t reads the source in order, so that it
// can be streamed: no rotation (by EXIF or asked for), content-aware crop,
// trim search, animation, spatial adjustment or watermark.
func (t *Transform) sequential() bool {
	return t.h.Orientation <= 2 && t.plan.Strategy == "" && t.frames == 1 &&
		!t.plan.orients() && !t.plan.AutoTrim && !t.o.Adjust.spatial() && t.o.Mark == nil
}

// trimmed is t's plan on the part of img, the source decoded whole, that
// trim=auto keeps, within the limits.
func (t *Transform) trimmed(img *vips.ImageRef) (Plan, error) {
	box, err := findTrim(img, *t.o.Trim, t.frames)
	if err != nil {
		return Plan{}, err
	}
	plan, err := planOn(box, t.o)
	if err != nil {
		return Plan{}, err
	}
	return plan, t.p.checkCost(t.h, plan, t.frames)
}

// load decodes src with shrink-on-load: JPEG decodes at 1/2, 1/4 or 1/8 and
// WebP at any scale, whichever keeps at least the pixels the plan needs.
// Access is sequential (streamed, low memory) when sequential says the
// steps after read pixels in order.
func load(ctx context.Context, src []byte, h Header, plan Plan, frames int, sequential bool) (*vips.ImageRef, error) {
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
	if sequential {
		params.Access.Set(vips.AccessSequential)
	}
	var img *vips.ImageRef
	var err error
	if h.Format == SVG {
		// Drawn at the scale the output needs, never at its declared
		// size (librsvg's cost, filters above all, grows with the pixels),
		// and in a child process that the deadline kills.
		var png []byte
		if png, err = rasteriseSVG(ctx, src, svgDensity(plan)); err == nil {
			img, err = decode(png, PNG, params)
		}
	} else {
		img, err = decode(src, h.Format, params)
	}
	if err != nil {
		return nil, err
	}
	if !agrees(img, h, shrinkFactor(plan), frames) {
		img.Close()
		return nil, prism.Fail(prism.CodeInternal, "the source is not what its cached metadata says: %dx%d %s", h.Width, h.Height, h.Format)
	}
	if frames == 1 && h.Orientation > 1 {
		if err := img.AutoRotate(); err != nil {
			img.Close()
			return nil, err
		}
	}
	return img, nil
}

// agrees reports whether img, as decoded (before orientation, shrunk by
// shrink if the loader shrinks), has the size header h says: the header
// may come from cached metadata rather than from the bytes at hand.
func agrees(img *vips.ImageRef, h Header, shrink, frames int) bool {
	if h.Format == SVG {
		return true // drawn at the size the plan needs
	}
	w, ht := h.Width, h.Height
	if h.Orientation >= 5 {
		w, ht = ht, w
	}
	if h.Format != JPEG && h.Format != WebP {
		shrink = 1
	}
	if img.Height()%frames != 0 {
		return false
	}
	// libvips 8.14 does not scale an animated WebP.
	for _, s := range []int{shrink, 1} {
		if abs(img.Width()*s-w) <= s && abs(img.Height()/frames*s-ht) <= s {
			return true
		}
	}
	return false
}

func abs(n int) int { return max(n, -n) }

// shrinkFactor is the largest power of two, up to 8, by which the source can
// be shrunk while still holding the resolution the plan resizes to.
func shrinkFactor(plan Plan) int {
	if plan.AutoTrim {
		return 1 // the trim is found at full size: what it keeps is not known yet
	}
	s := math.Max(float64(plan.Resized.W)/float64(plan.Crop.W), float64(plan.Resized.H)/float64(plan.Crop.H))
	shrink := 1
	for shrink < 8 && float64(shrink*2)*s <= 1 {
		shrink *= 2
	}
	return shrink
}

// svgDPI is the density at which an SVG is drawn at its declared size.
const svgDPI = 72

// svgDensity is the density an SVG is drawn at for plan: the least whole
// DPI (libvips takes no fraction) that holds the resize, which is at most
// the declared size since Prism never enlarges.
func svgDensity(plan Plan) int {
	s := math.Max(float64(plan.Resized.W)/float64(plan.Crop.W), float64(plan.Resized.H)/float64(plan.Crop.H))
	return min(svgDPI, max(1, int(math.Ceil(svgDPI*s-1e-9))))
}

// svgScale is the scale svgDensity draws at.
func svgScale(plan Plan) float64 { return float64(svgDensity(plan)) / svgDPI }

// render applies the plan to the decoded (and maybe shrunk) image, then
// the adjustments and the watermark (mark, when o names one). watch is
// given every image decoded on the way, so that the deadline stops it.
func render(img *vips.ImageRef, h Header, plan Plan, frames int, out Format, o Options, mark *markImage, watch func(*vips.ImageRef)) error {
	// The loader may have shrunk the image: map the plan's source
	// coordinates onto what was actually decoded.
	fx := float64(img.Width()) / float64(h.Width)
	fy := float64(img.Height()/frames) / float64(h.Height)
	if shrink := shrinkFactor(plan); h.Format == JPEG && shrink > 1 {
		// libvips keeps whole blocks of a shrunk JPEG: decoded pixel i is
		// source pixels [i·shrink, (i+1)·shrink), and a partial last block
		// is dropped. Stretching what was decoded over the whole source
		// would shift the output by up to half a pixel at its far edges.
		fx, fy = 1/float64(shrink), 1/float64(shrink)
	}
	src, resized := plan.SourceCrop(), plan.SourceResized()
	crop := Rect{
		X: int(math.Round(float64(src.X) * fx)),
		Y: int(math.Round(float64(src.Y) * fy)),
	}
	crop.W = min(img.Width()-crop.X, max(1, int(math.Round(float64(src.W)*fx))))
	crop.H = min(img.Height()/frames-crop.Y, max(1, int(math.Round(float64(src.H)*fy))))
	var err error
	if crop != (Rect{0, 0, img.Width(), img.Height() / frames}) {
		if err := img.ExtractArea(crop.X, crop.Y, crop.W, crop.H); err != nil {
			return err
		}
	}
	// Scaled from the crop's true extent, which a dropped partial block
	// may leave a fraction of a pixel short: then the output is made whole
	// by repeating its edge, never more than one pixel.
	hs := float64(resized.W) / (float64(src.W) * fx)
	vs := float64(resized.H) / (float64(src.H) * fy)
	if crop.W != resized.W || crop.H != resized.H {
		// Frame by frame: resizing the strip would blend the edge rows of
		// each frame with the next one's.
		if err := eachFrame(img, frames, func(f *vips.ImageRef) error {
			return f.ResizeWithVScale(hs, vs, vips.KernelLanczos3)
		}); err != nil {
			return err
		}
	}
	if img.Width() != resized.W || img.Height()/frames != resized.H {
		// (Embed works on each frame of an animation.)
		if err := img.Embed(0, 0, resized.W, resized.H, vips.ExtendCopy); err != nil {
			return err
		}
	}
	if err := orient(img, plan, frames); err != nil {
		return err
	}
	padded := plan.pads()
	flattened := !out.supportsAlpha() && img.HasAlpha()
	if isGrey(img) && out.keepsGrey() && !padded && !flattened && !o.Adjust.tints() && mark == nil {
		// One band (two with alpha) rather than three the same: a grey
		// PNG's bytes fall by a third, and every step after is cheaper.
		err = toGrey(img)
	} else {
		err = toSRGB(img)
	}
	if err != nil {
		return err
	}
	if err := keepWindow(img, plan, frames); err != nil {
		return err
	}
	if err := adjust(img, o.Adjust, frames); err != nil {
		return err
	}
	if mark != nil {
		if err := drawMark(img, *o.Mark, mark, frames, watch); err != nil {
			return err
		}
	}
	if padded {
		if err := pad(img, plan, background(o, black)); err != nil {
			return err
		}
	}
	if flattened {
		bg := background(o, white)
		return img.Flatten(&vips.Color{R: bg.R, G: bg.G, B: bg.B})
	}
	return nil
}

// keepWindow keeps the plan's window of the resized image.
func keepWindow(img *vips.ImageRef, plan Plan, frames int) error {
	w, h := img.Width(), img.Height()/frames
	t := plan.Window
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
// has one other than sRGB's (P3, ProPhoto, CMYK…), through libvips' built-in CMYK profile for
// untagged CMYK, and by plain colourspace conversion otherwise (grey, 16-bit).
func toSRGB(img *vips.ImageRef) error {
	cmyk := img.Interpretation() == vips.InterpretationCMYK
	if img.HasICCProfile() && !isSRGB(img.GetICCProfile()) || cmyk {
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

// isGrey reports whether img is greyscale: one band, or two with alpha.
func isGrey(img *vips.ImageRef) bool {
	switch img.Interpretation() {
	case vips.InterpretationBW, vips.InterpretationGrey16:
		return img.Bands() <= 2
	}
	return false
}

// toGrey converts a grey img to 8 bits a band, through sRGB when it has a
// profile, whose tone curve must be applied.
func toGrey(img *vips.ImageRef) error {
	if img.HasICCProfile() {
		if err := toSRGB(img); err != nil {
			return err
		}
	}
	if img.Interpretation() != vips.InterpretationBW {
		if err := img.ToColorSpace(vips.InterpretationBW); err != nil {
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

// Save encodes img as f at quality (lossy formats), with no metadata, as
// every output is saved: the pipeline's last step, exported so that
// benchmarks measure libvips with exactly the same save parameters.
func (p *Processor) Save(img *vips.ImageRef, f Format, quality int) ([]byte, error) {
	return p.save(img, f, quality, false)
}

// pngCompression and pngFilter trade PNG bytes against time: zlib level 4
// with libpng's adaptive filter choice is within 1% of level 6's bytes for
// photos at 40% of its time, and within 8% of the best (no filter) for
// scans of text. benchmarks/README.md has the measurements.
const (
	pngCompression = 4
	pngFilter      = vips.PngFilterAll
)

// save is Save, with palette set when img's colours are a palette's: a PNG
// is then written with that palette, exactly (libimagequant at full
// quality keeps 256 colours or fewer as they are).
func (p *Processor) save(img *vips.ImageRef, f Format, quality int, palette bool) ([]byte, error) {
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
		params := &vips.PngExportParams{StripMetadata: true, Compression: pngCompression, Filter: pngFilter}
		if palette {
			params.Palette, params.Quality = true, 100
		}
		data, _, err = img.ExportPng(params)
	case WebP:
		data, _, err = img.ExportWebp(&vips.WebpExportParams{StripMetadata: true, Quality: quality, ReductionEffort: p.cfg.Effort.WebP})
		data = stripWebPMetadata(data)
	case AVIF:
		data, _, err = img.ExportAvif(&vips.AvifExportParams{StripMetadata: true, Quality: quality, Bitdepth: 8, Effort: p.cfg.Effort.AVIF})
	case GIF:
		data, _, err = img.ExportGIF(&vips.GifExportParams{StripMetadata: true, Effort: 7, Bitdepth: 8})
	default:
		return nil, prism.Fail(prism.CodeInternal, "no encoder for %s", f)
	}
	return data, err
}

// undecodable wraps a libvips failure: once the header has been read, a
// failure while pulling pixels means the file is broken or truncated.
func undecodable(err error) error {
	var pe *prism.Error
	if errors.As(err, &pe) {
		return err
	}
	// govips appends a Go stack trace to libvips' message: keep the message.
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return prism.Fail(prism.CodeUndecodable, "source image could not be decoded").WithCause(errors.New(msg))
}
