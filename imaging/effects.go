package imaging

import (
	"math"
	"net/url"
	"strconv"
	"strings"
)

// The parameters beyond sizing and format: Photon's trim, orientation,
// filters and adjustments, Cloudflare's blur and sharpen, imgix's focal
// point and watermark. They apply in a fixed order (see Plan and render):
// trim, rotate and flip, crop and size, filter, brightness, contrast,
// colorize, smooth, blur, sharpen, watermark, letterbox padding.

// Flip mirrors the image after rotation.
type Flip string

const (
	FlipH  Flip = "h"  // left and right swap
	FlipV  Flip = "v"  // top and bottom swap
	FlipHV Flip = "hv" // both
)

// Trim removes the edges of the upright source before any other step.
type Trim struct {
	// Auto finds a uniform border with libvips' find_trim: against the
	// top-left pixel's colour, or when Black (Photon's ulb) black bars at
	// the top and bottom only.
	Auto, Black bool
	Threshold   int    // find_trim's threshold, 0 to 255
	Edges       [4]int // fixed trim: top, right, bottom, left in pixels
}

// DefaultTrimThreshold is trim_threshold's default.
const DefaultTrimThreshold = 10

func (t Trim) String() string {
	if !t.Auto {
		e := t.Edges
		return strconv.Itoa(e[0]) + "," + strconv.Itoa(e[1]) + "," + strconv.Itoa(e[2]) + "," + strconv.Itoa(e[3])
	}
	return "auto"
}

// Point is a position in an image as fractions of its width and height.
type Point struct{ X, Y float64 }

// Filter is one of Photon's named filters.
type Filter string

// Photon's filters, as GD draws them.
const (
	FilterGrayscale     Filter = "grayscale"
	FilterSepia         Filter = "sepia"
	FilterNegate        Filter = "negate"
	FilterEdgeDetect    Filter = "edgedetect"
	FilterEmboss        Filter = "emboss"
	FilterBlurGaussian  Filter = "blurgaussian"
	FilterBlurSelective Filter = "blurselective"
	FilterMeanRemoval   Filter = "meanremoval"
)

var filters = []Filter{FilterGrayscale, FilterSepia, FilterNegate, FilterEdgeDetect, FilterEmboss,
	FilterBlurGaussian, FilterBlurSelective, FilterMeanRemoval}

// Tint is a value added to each of red, green and blue.
type Tint struct{ R, G, B int }

// Adjust is what is done to the pixels once they are sized, in this order.
type Adjust struct {
	Filter     Filter
	Brightness int      // added to every channel, -255 to 255
	Contrast   int      // Photon's scale, -100 to 100: positive raises it
	Colorize   *Tint    // added to each channel
	Smooth     *float64 // GD's smoothing weight: the centre's weight in a 3×3 mean
	Blur       float64  // Cloudflare's scale: the Gaussian's sigma × 2, in output pixels
	Sharpen    float64  // Cloudflare's scale, 0 to 10
}

// spatial says the adjustments read each pixel's neighbours: a kernel,
// a median, a blur or a sharpening.
func (a Adjust) spatial() bool {
	return a.Blur > 0 || a.Sharpen > 0 || a.Smooth != nil ||
		a.Filter != "" && a.Filter != FilterGrayscale && a.Filter != FilterSepia && a.Filter != FilterNegate
}

// tints says the adjustments give colour to the pixels, so that a grey
// image must be made RGB first.
func (a Adjust) tints() bool { return a.Filter == FilterSepia || a.Colorize != nil }

// Watermark is an original drawn over the output: imgix's mark.
type Watermark struct {
	Key string
	// Width is a fraction of the sized image's width (before letterbox
	// padding) when at most 1, else pixels; 0 keeps the mark's own width.
	// Either way the mark is scaled down to fit inside the padding.
	Width  float64
	VAlign string // top, middle, bottom
	HAlign string // left, center, right
	Pad    int    // pixels from the edges it is aligned to
	Alpha  int    // opacity, 0 to 100
}

// Watermark defaults: bottom right, 10 pixels in, opaque.
const (
	DefaultMarkPad   = 10
	DefaultMarkAlpha = 100
)

// canonicalEffects writes the trim and orientation of o that take effect,
// by add.
func (o Options) canonicalEffects(add func(k, v string)) {
	if o.Trim != nil {
		if o.Trim.Black {
			add("ulb", "true")
		} else {
			add("trim", o.Trim.String())
		}
		if o.Trim.Auto && o.Trim.Threshold != DefaultTrimThreshold {
			add("trim_threshold", strconv.Itoa(o.Trim.Threshold))
		}
	}
	if o.Rotate != 0 {
		add("rot", strconv.Itoa(o.Rotate))
	}
	if o.Flip != "" {
		add("flip", string(o.Flip))
	}
}

// canonicalAdjust writes the adjustments and the watermark that take effect.
func (o Options) canonicalAdjust(add func(k, v string)) {
	a := o.Adjust
	if a.Filter != "" {
		add("filter", string(a.Filter))
	}
	if a.Brightness != 0 {
		add("brightness", strconv.Itoa(a.Brightness))
	}
	if a.Contrast != 0 {
		add("contrast", strconv.Itoa(a.Contrast))
	}
	if a.Colorize != nil {
		add("colorize", strconv.Itoa(a.Colorize.R)+","+strconv.Itoa(a.Colorize.G)+","+strconv.Itoa(a.Colorize.B))
	}
	if a.Smooth != nil {
		add("smooth", num(*a.Smooth))
	}
	if a.Blur > 0 {
		add("blur", num(a.Blur))
	}
	if a.Sharpen > 0 {
		add("sharp", num(a.Sharpen))
	}
	if m := o.Mark; m != nil {
		add("mark", url.QueryEscape(m.Key))
		if m.Width > 0 {
			add("mark-w", num(m.Width))
		}
		add("mark-align", m.VAlign+","+m.HAlign)
		add("mark-pad", strconv.Itoa(m.Pad))
		add("mark-alpha", strconv.Itoa(m.Alpha))
	}
}

// num writes f in its shortest form; -0 is 0.
func num(f float64) string {
	if f == 0 {
		f = 0
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// parseEffects reads the parameters of this file into o.
func (p *parser) parseEffects(o *Options) {
	p.parseTrim(o)
	for _, name := range []string{"rot", "rotate"} { // the long name wins
		if p.has(name) {
			switch v := p.get(name); v {
			case "0", "90", "180", "270":
				o.Rotate, _ = strconv.Atoi(v)
			default:
				p.fail(name, "must be 0, 90, 180 or 270 (degrees clockwise)")
			}
		}
	}
	if p.has("flip") {
		switch v := strings.ToLower(p.get("flip")); v {
		case "h", "v", "hv":
			o.Flip = Flip(v)
		case "vh":
			o.Flip = FlipHV
		default:
			p.fail("flip", "must be h, v or hv")
		}
	}
	if p.has("fp-x") || p.has("fp-y") {
		f := Point{0.5, 0.5}
		if p.has("fp-x") {
			f.X = p.number("fp-x", 0, 1)
		}
		if p.has("fp-y") {
			f.Y = p.number("fp-y", 0, 1)
		}
		o.Focus = &f
	}
	p.parseAdjust(&o.Adjust)
	if p.has("strip") {
		switch strings.ToLower(p.get("strip")) {
		case "all", "info", "color":
			// Prism always strips metadata and converts to sRGB.
		default:
			p.fail("strip", "must be all, info or color")
		}
	}
	o.Mark = p.watermark()
}

func (p *parser) parseTrim(o *Options) {
	threshold := DefaultTrimThreshold
	if p.has("trim_threshold") {
		threshold = p.integer("trim_threshold", 0, 255)
	}
	if p.has("ulb") {
		switch strings.ToLower(p.get("ulb")) {
		case "true", "1":
			o.Trim = &Trim{Auto: true, Black: true, Threshold: threshold}
		case "false", "0":
		default:
			p.fail("ulb", "must be true or false")
		}
	}
	if !p.has("trim") {
		return
	}
	v := strings.ToLower(p.get("trim"))
	if v == "auto" {
		o.Trim = &Trim{Auto: true, Threshold: threshold}
		return
	}
	parts := strings.Split(v, ",")
	var t Trim
	ok := len(parts) == 4
	for i := 0; ok && i < 4; i++ {
		s := strings.TrimSpace(parts[i])
		t.Edges[i], ok = pixels(s)
		ok = ok && t.Edges[i] <= 100_000
	}
	if !ok {
		p.fail("trim", "must be auto, or T,R,B,L: four whole numbers of pixels")
		return
	}
	o.Trim = nil // trim wins over ulb, even a trim of nothing
	if t.Edges != [4]int{} {
		o.Trim = &t
	}
}

func (p *parser) parseAdjust(a *Adjust) {
	if p.has("filter") {
		f := Filter(strings.ToLower(p.get("filter")))
		known := false
		for _, k := range filters {
			known = known || f == k
		}
		if known {
			a.Filter = f
		} else {
			p.fail("filter", "must be one of grayscale, sepia, negate, edgedetect, emboss, blurgaussian, blurselective, meanremoval")
		}
	}
	if p.has("brightness") {
		a.Brightness = p.integer("brightness", -255, 255)
	}
	if p.has("contrast") {
		a.Contrast = p.integer("contrast", -100, 100)
	}
	if p.has("colorize") {
		parts := strings.Split(p.get("colorize"), ",")
		var c [3]int
		ok := len(parts) == 3
		for i := 0; ok && i < 3; i++ {
			n, err := strconv.Atoi(strings.TrimSpace(parts[i]))
			c[i], ok = n, err == nil && n >= -255 && n <= 255
		}
		switch {
		case !ok:
			p.fail("colorize", "must be R,G,B: three whole numbers from -255 to 255")
		case c != [3]int{}:
			a.Colorize = &Tint{c[0], c[1], c[2]}
		}
	}
	if p.has("smooth") {
		// GD divides by the weight plus 8: -8 would divide by zero, and
		// below it the mask turns negative.
		w := p.number("smooth", -7, 100)
		a.Smooth = &w
	}
	if p.has("blur") {
		a.Blur = p.number("blur", 1, 250)
	}
	for _, name := range []string{"sharp", "sharpen"} { // the long name wins
		if p.has(name) {
			a.Sharpen = p.number(name, 0, 10)
		}
	}
}

func (p *parser) watermark() *Watermark {
	m := Watermark{VAlign: "bottom", HAlign: "right", Pad: DefaultMarkPad, Alpha: DefaultMarkAlpha}
	if p.has("mark-w") {
		s := p.get("mark-w")
		f, err := strconv.ParseFloat(s, 64)
		whole := f == math.Trunc(f)
		if err != nil || strings.ContainsAny(s, "eExXpPnN") || f < 0.01 || f > MaxDimension || f > 1 && !whole {
			p.fail("mark-w", "must be a fraction of the output's width from 0.01 to 1, or a whole number of pixels up to %d", MaxDimension)
		}
		m.Width = f
	}
	if p.has("mark-align") {
		var v, h string
		for _, part := range strings.Split(strings.ToLower(p.get("mark-align")), ",") {
			switch part = strings.TrimSpace(part); part {
			case "top", "middle", "bottom":
				if v != "" {
					p.fail("mark-align", "names two vertical positions")
				}
				v = part
			case "left", "center", "right":
				if h != "" {
					p.fail("mark-align", "names two horizontal positions")
				}
				h = part
			default:
				p.fail("mark-align", "must be top, middle or bottom and left, center or right, comma-separated")
			}
		}
		if v != "" {
			m.VAlign = v
		}
		if h != "" {
			m.HAlign = h
		}
	}
	if p.has("mark-pad") {
		m.Pad = p.integer("mark-pad", 0, MaxDimension)
	}
	if p.has("mark-alpha") {
		m.Alpha = p.integer("mark-alpha", 0, 100)
	}
	if !p.has("mark") {
		return nil
	}
	m.Key = p.get("mark")
	// What a key may be is storage's to say: render asks it.
	if m.Key == "" {
		p.fail("mark", "must be the key of an original in storage")
	}
	return &m
}
