package imaging

import (
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/prism-image/prism"
)

// MaxDimension bounds every requested width and height, before and after
// zoom and dpr multiply them.
const MaxDimension = 8192

// Mode says how the requested box is filled.
type Mode int

const (
	ModeNone      Mode = iota // no sizing: the crop region (or the source) as it is
	ModeFit                   // fit inside the box, never enlarging
	ModeCover                 // cover the box, then trim to exactly its size
	ModeLetterbox             // fit inside the box, then pad to exactly its size
)

// Gravity anchors a trim when the scaled image overflows the box.
type Gravity string

// The gravities the URL API accepts.
const (
	GravityCenter    Gravity = "center"
	GravityNorth     Gravity = "north"
	GravityNorthEast Gravity = "northeast"
	GravityEast      Gravity = "east"
	GravitySouthEast Gravity = "southeast"
	GravitySouth     Gravity = "south"
	GravitySouthWest Gravity = "southwest"
	GravityWest      Gravity = "west"
	GravityNorthWest Gravity = "northwest"
)

// Strategy picks the trim position from the image content.
type Strategy string

// The content-aware strategies; "smart" in the URL maps to StrategyAttention.
const (
	StrategyAttention Strategy = "attention"
	StrategyEntropy   Strategy = "entropy"
)

// Length is one crop coordinate: pixels, or a percentage of the source side.
type Length struct {
	Value  float64
	Pixels bool
}

func (l Length) resolve(side int) int {
	if l.Pixels {
		return int(l.Value)
	}
	return int(math.Round(l.Value / 100 * float64(side)))
}

func (l Length) String() string {
	s := strconv.FormatFloat(l.Value, 'f', -1, 64)
	if l.Pixels {
		s += "px"
	}
	return s
}

// Region is a crop rectangle of the upright source, once trimmed and
// rotated.
type Region struct{ X, Y, W, H Length }

func (r Region) String() string {
	return r.X.String() + "," + r.Y.String() + "," + r.W.String() + "," + r.H.String()
}

// Color is an opaque sRGB colour.
type Color struct{ R, G, B uint8 }

func (c Color) String() string {
	const hex = "0123456789abcdef"
	b := []byte{hex[c.R>>4], hex[c.R&15], hex[c.G>>4], hex[c.G&15], hex[c.B>>4], hex[c.B&15]}
	return string(b)
}

var (
	white = Color{255, 255, 255}
	black = Color{0, 0, 0}
)

// Options is a parsed, validated transform request. Its zero value asks for
// nothing: the original is served as stored.
type Options struct {
	Mode          Mode
	Width, Height int     // the requested box before zoom and dpr; 0 = unbounded
	sizing        string  // which parameter set the box, for Canonical
	Crop          *Region // applied after trim and rotation, before any sizing
	Strategy      Strategy
	Gravity       Gravity
	Zoom          float64 // 0 means 1
	DPR           float64 // 0 means 1
	Quality       int     // 0 means the format's default
	Format        Format  // "" means the source's web format; FormatAuto negotiates
	Background    *Color  // nil: black for letterbox, white for flattening

	// Photon's w=50%: the box as a percentage of the image being sized,
	// used where Width or Height is 0.
	WidthPct, HeightPct float64
	Trim                *Trim  // before any other step
	Rotate              int    // degrees clockwise, after Trim
	Flip                Flip   // after Rotate
	Focus               *Point // where a cover crop is centred; overrides Gravity and Strategy
	Adjust              Adjust
	Mark                *Watermark
}

// IsZero reports whether o asks for no transform at all.
func (o Options) IsZero() bool { return o == Options{} }

// scale is the factor zoom and dpr apply to the requested box.
func (o Options) scale() float64 {
	s := 1.0
	if o.Zoom > 0 {
		s *= o.Zoom
	}
	if o.DPR > 0 {
		s *= o.DPR
	}
	return s
}

// Canonical is the normalised form of o: the parameters that take effect,
// in a fixed order, with canonical names and values. Two URLs that ask for
// the same image have the same Canonical, so it is the transform's identity
// in ETags and caches.
func (o Options) Canonical() string {
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	o.canonicalEffects(add)
	if o.Crop != nil {
		add("crop", o.Crop.String())
	}
	switch o.sizing {
	case "w":
		switch {
		case o.Width > 0:
			add("w", strconv.Itoa(o.Width))
		case o.WidthPct > 0:
			add("w", num(o.WidthPct)+"%25")
		}
		switch {
		case o.Height > 0:
			add("h", strconv.Itoa(o.Height))
		case o.HeightPct > 0:
			add("h", num(o.HeightPct)+"%25")
		}
	case "resize", "fit", "lb":
		add(o.sizing, strconv.Itoa(o.Width)+","+strconv.Itoa(o.Height))
	}
	if o.Mode == ModeCover {
		switch {
		case o.Focus != nil:
			add("fp-x", num(o.Focus.X))
			add("fp-y", num(o.Focus.Y))
		case o.Strategy != "":
			add("crop_strategy", string(o.Strategy))
		case o.Gravity != "" && o.Gravity != GravityCenter:
			add("gravity", string(o.Gravity))
		}
	}
	if o.Zoom > 0 && o.Zoom != 1 {
		add("zoom", num(o.Zoom))
	}
	if o.DPR > 0 && o.DPR != 1 {
		add("dpr", num(o.DPR))
	}
	o.canonicalAdjust(add)
	if o.Quality > 0 {
		add("q", strconv.Itoa(o.Quality))
	}
	if o.Format != "" {
		add("fm", string(o.Format))
	}
	if o.Background != nil {
		add("bg", o.Background.String())
	}
	return b.String()
}

// sizingModes are the sizing parameters in order of precedence.
var sizingModes = []struct {
	name string
	mode Mode
}{{"resize", ModeCover}, {"fit", ModeFit}, {"lb", ModeLetterbox}}

// ParseOptions reads the Tachyon/Photon parameters, and their imgix-style
// aliases, from a URL query. Unknown parameters are ignored; an invalid value
// of a known one is a 400 *prism.Error naming it, even where another
// parameter overrides it. Where a parameter is repeated, the first value
// counts.
func ParseOptions(q url.Values) (Options, error) {
	var o Options
	p := parser{q: q}

	// Sizing: the first of resize, fit, lb, w/h that is present wins.
	for _, s := range sizingModes {
		if !p.has(s.name) {
			continue
		}
		if w, h := p.pair(s.name); o.sizing == "" {
			o.Mode, o.sizing, o.Width, o.Height = s.mode, s.name, w, h
		}
	}
	var w, h int
	var wPct, hPct float64
	if p.has("w") {
		w, wPct = p.dimension("w")
	}
	if p.has("h") {
		h, hPct = p.dimension("h")
	}
	if o.sizing == "" && (p.has("w") || p.has("h")) {
		o.Mode, o.sizing, o.Width, o.Height = ModeFit, "w", w, h
		o.WidthPct, o.HeightPct = wPct, hPct
	}
	if p.has("crop") {
		o.Crop = p.region("crop")
		// Tachyon: a crop with both w and h covers the box exactly.
		if o.sizing == "w" && (o.Width > 0 || o.WidthPct > 0) && (o.Height > 0 || o.HeightPct > 0) {
			o.Mode = ModeCover
		}
	}
	if p.has("crop_strategy") {
		switch v := strings.ToLower(p.get("crop_strategy")); v {
		case "smart", "attention":
			o.Strategy = StrategyAttention
		case "entropy":
			o.Strategy = StrategyEntropy
		default:
			p.fail("crop_strategy", "must be one of smart, entropy, attention")
		}
	}
	if p.has("gravity") {
		g := Gravity(strings.ToLower(p.get("gravity")))
		switch g {
		case GravityCenter, GravityNorth, GravityNorthEast, GravityEast, GravitySouthEast,
			GravitySouth, GravitySouthWest, GravityWest, GravityNorthWest:
			o.Gravity = g
		case "centre":
			o.Gravity = GravityCenter
		default:
			p.fail("gravity", "must be one of north, northeast, east, southeast, south, southwest, west, northwest, center")
		}
	}
	if p.has("zoom") {
		o.Zoom = p.number("zoom", 0.1, 5)
	}
	if p.has("dpr") {
		o.DPR = p.number("dpr", 1, 5)
	}
	for _, name := range []string{"q", "quality"} { // the last set wins: quality
		if p.has(name) {
			o.Quality = p.integer(name, 1, 100)
		}
	}
	// Format: an explicit format wins over auto=format, which wins over webp.
	if p.has("webp") {
		switch strings.ToLower(p.get("webp")) {
		case "1", "true":
			o.Format = WebP
		case "0", "false":
		default:
			p.fail("webp", "must be 1, true, 0 or false")
		}
	}
	if p.has("auto") && p.autoFormat() {
		o.Format = FormatAuto
	}
	for _, name := range []string{"fm", "format"} {
		if p.has(name) {
			o.Format = p.format(name)
		}
	}
	for _, name := range []string{"bg", "background"} {
		if p.has(name) {
			o.Background = p.color(name)
		}
	}
	p.parseEffects(&o)
	if o.Focus != nil {
		o.Strategy = "" // the focal point decides the crop
	}
	if o.Mode != ModeCover {
		// A focal point means nothing without a cover crop: dropped, so
		// that ?fp-x=0.3 alone is the original, as its canonical form says.
		o.Focus = nil
	}
	if p.err != nil {
		return Options{}, p.err
	}
	return o, nil
}

// parser reads query values, keeping the first error it meets.
type parser struct {
	q   url.Values
	err error
}

func (p *parser) has(name string) bool { _, ok := p.q[name]; return ok }

func (p *parser) get(name string) string { return strings.TrimSpace(p.q.Get(name)) }

func (p *parser) fail(name, format string, args ...any) {
	if p.err == nil {
		p.err = prism.InvalidParam(name, format, args...)
	}
}

// pixels parses a whole number of pixels with an optional "px" suffix.
func pixels(s string) (int, bool) {
	s = strings.TrimSuffix(s, "px")
	if s == "" || len(s) > 9 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// dimension reads w or h: whole pixels, or (Photon) a percentage of the
// image being sized, from 1% to 100%.
func (p *parser) dimension(name string) (int, float64) {
	v := p.get(name)
	if s, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || strings.ContainsAny(s, "eExXpPnN+") || f < 1 || f > 100 {
			p.fail(name, "must be a percentage from 1%% to 100%%, or a whole number of pixels from 1 to %d", MaxDimension)
			return 0, 0
		}
		return 0, f
	}
	n, ok := pixels(v)
	if !ok || strings.HasSuffix(v, "px") || n < 1 || n > MaxDimension {
		p.fail(name, "must be a whole number of pixels from 1 to %d, or a percentage from 1%% to 100%%", MaxDimension)
		return 0, 0
	}
	return n, 0
}

func (p *parser) pair(name string) (int, int) {
	parts := strings.Split(p.get(name), ",")
	if len(parts) == 2 {
		w, okW := pixels(strings.TrimSpace(parts[0]))
		h, okH := pixels(strings.TrimSpace(parts[1]))
		if okW && okH && w >= 1 && h >= 1 && w <= MaxDimension && h <= MaxDimension {
			return w, h
		}
	}
	p.fail(name, "must be W,H: two whole numbers of pixels from 1 to %d", MaxDimension)
	return 0, 0
}

func (p *parser) region(name string) *Region {
	parts := strings.Split(p.get(name), ",")
	if len(parts) != 4 {
		p.fail(name, "must be x,y,w,h: pixels with a px suffix or percentages without")
		return nil
	}
	var l [4]Length
	for i, s := range parts {
		s = strings.TrimSpace(s)
		if n, ok := pixels(s); ok && strings.HasSuffix(s, "px") {
			l[i] = Length{Value: float64(n), Pixels: true}
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || strings.ContainsAny(s, "eExXpP") || math.IsNaN(f) || f < 0 || f > 100 {
			p.fail(name, "must be x,y,w,h: pixels with a px suffix or percentages (0 to 100) without")
			return nil
		}
		l[i] = Length{Value: f}
	}
	if l[2].Value <= 0 || l[3].Value <= 0 {
		p.fail(name, "width and height must be greater than zero")
		return nil
	}
	return &Region{X: l[0], Y: l[1], W: l[2], H: l[3]}
}

func (p *parser) number(name string, lo, hi float64) float64 {
	s := p.get(name)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || strings.ContainsAny(s, "eExXpPnN") || f < lo || f > hi {
		p.fail(name, "must be a number from %g to %g", lo, hi)
		return 0
	}
	return f
}

func (p *parser) integer(name string, lo, hi int) int {
	s := p.get(name)
	n, err := strconv.Atoi(s)
	if err != nil || strings.HasPrefix(s, "+") || n < lo || n > hi {
		p.fail(name, "must be a whole number from %d to %d", lo, hi)
		return 0
	}
	return n
}

func (p *parser) format(name string) Format {
	switch v := strings.ToLower(p.get(name)); v {
	case "jpeg", "jpg":
		return JPEG
	case "png", "webp", "avif", "gif", "auto":
		return Format(v)
	default:
		p.fail(name, "must be one of jpeg, jpg, png, webp, avif, gif, auto")
		return ""
	}
}

// autoFormat reports whether the imgix-style auto list asks for format
// negotiation; its other values (compress, enhance…) are accepted and ignored.
func (p *parser) autoFormat() bool {
	for _, v := range strings.Split(p.get("auto"), ",") {
		if strings.EqualFold(strings.TrimSpace(v), "format") {
			return true
		}
	}
	return false
}

func (p *parser) color(name string) *Color {
	s := strings.TrimPrefix(p.get(name), "#")
	if len(s) == 3 {
		s = string([]byte{s[0], s[0], s[1], s[1], s[2], s[2]})
	}
	if len(s) == 6 {
		if v, err := strconv.ParseUint(s, 16, 32); err == nil {
			return &Color{uint8(v >> 16), uint8(v >> 8), uint8(v)}
		}
	}
	p.fail(name, "must be a hex colour: RGB or RRGGBB, with or without #")
	return nil
}
