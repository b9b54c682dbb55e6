package imaging

import (
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/prism-image/prism"
)

// parseQuery runs ParseOptions on a raw query string.
func parseQuery(t *testing.T, query string) (Options, error) {
	t.Helper()
	q, err := prism.ParseQuery(query)
	if err != nil {
		t.Fatalf("ParseQuery(%q): %v", query, err)
	}
	return ParseOptions(q)
}

// optionsOf is parseQuery for a query that must be valid.
func optionsOf(t *testing.T, query string) Options {
	t.Helper()
	o, err := parseQuery(t, query)
	if err != nil {
		t.Fatalf("ParseOptions(%q): unexpected error %v", query, err)
	}
	return o
}

func px(v float64) Length  { return Length{Value: v, Pixels: true} }
func pct(v float64) Length { return Length{Value: v} }

func TestParseOptionsValid(t *testing.T) {
	tests := []struct {
		query string
		want  Options // compared without the unexported sizing field
	}{
		// w and h
		{"w=300", Options{Mode: ModeFit, Width: 300}},
		{"h=200", Options{Mode: ModeFit, Height: 200}},
		{"w=300&h=200", Options{Mode: ModeFit, Width: 300, Height: 200}},
		{"w=1", Options{Mode: ModeFit, Width: 1}},
		{"w=8192&h=8192", Options{Mode: ModeFit, Width: 8192, Height: 8192}},
		{"w=0300", Options{Mode: ModeFit, Width: 300}},
		{"w=%20300%20", Options{Mode: ModeFit, Width: 300}},
		{"w=300&w=abc", Options{Mode: ModeFit, Width: 300}}, // the first value counts

		// fit
		{"fit=300,200", Options{Mode: ModeFit, Width: 300, Height: 200}},
		{"fit=8192,1", Options{Mode: ModeFit, Width: 8192, Height: 1}},

		// resize, with and without px
		{"resize=300,200", Options{Mode: ModeCover, Width: 300, Height: 200}},
		{"resize=300px,200px", Options{Mode: ModeCover, Width: 300, Height: 200}},
		{"resize=300px,200", Options{Mode: ModeCover, Width: 300, Height: 200}},
		{"resize=300,%20200px", Options{Mode: ModeCover, Width: 300, Height: 200}},

		// lb
		{"lb=400,300", Options{Mode: ModeLetterbox, Width: 400, Height: 300}},

		// crop: pixels, percent, mixed
		{"crop=10px,20px,100px,50px", Options{Crop: &Region{px(10), px(20), px(100), px(50)}}},
		{"crop=0,0,50,50", Options{Crop: &Region{pct(0), pct(0), pct(50), pct(50)}}},
		{"crop=12.5,0,75.25,100", Options{Crop: &Region{pct(12.5), pct(0), pct(75.25), pct(100)}}},
		{"crop=25,25,50px,100", Options{Crop: &Region{pct(25), pct(25), px(50), pct(100)}}},
		{"crop=0px,10,1px,0.5", Options{Crop: &Region{px(0), pct(10), px(1), pct(0.5)}}},
		{"crop=0,0,50,50&w=80", Options{Mode: ModeFit, Width: 80, Crop: &Region{pct(0), pct(0), pct(50), pct(50)}}},
		// Tachyon: crop with both w and h covers w×h exactly
		{"crop=0,0,50,50&w=80&h=60", Options{Mode: ModeCover, Width: 80, Height: 60, Crop: &Region{pct(0), pct(0), pct(50), pct(50)}}},
		{"crop=0,0,50,50&fit=80,60", Options{Mode: ModeFit, Width: 80, Height: 60, Crop: &Region{pct(0), pct(0), pct(50), pct(50)}}},
		{"crop=0,0,50,50&lb=80,60", Options{Mode: ModeLetterbox, Width: 80, Height: 60, Crop: &Region{pct(0), pct(0), pct(50), pct(50)}}},

		// crop_strategy
		{"resize=100,100&crop_strategy=smart", Options{Mode: ModeCover, Width: 100, Height: 100, Strategy: StrategyAttention}},
		{"resize=100,100&crop_strategy=attention", Options{Mode: ModeCover, Width: 100, Height: 100, Strategy: StrategyAttention}},
		{"resize=100,100&crop_strategy=entropy", Options{Mode: ModeCover, Width: 100, Height: 100, Strategy: StrategyEntropy}},

		// gravity: all nine
		{"gravity=north", Options{Gravity: GravityNorth}},
		{"gravity=northeast", Options{Gravity: GravityNorthEast}},
		{"gravity=east", Options{Gravity: GravityEast}},
		{"gravity=southeast", Options{Gravity: GravitySouthEast}},
		{"gravity=south", Options{Gravity: GravitySouth}},
		{"gravity=southwest", Options{Gravity: GravitySouthWest}},
		{"gravity=west", Options{Gravity: GravityWest}},
		{"gravity=northwest", Options{Gravity: GravityNorthWest}},
		{"gravity=center", Options{Gravity: GravityCenter}},
		{"gravity=centre", Options{Gravity: GravityCenter}},
		{"gravity=NorthEast", Options{Gravity: GravityNorthEast}},

		// zoom and dpr
		{"zoom=0.1", Options{Zoom: 0.1}},
		{"zoom=1.5", Options{Zoom: 1.5}},
		{"zoom=5", Options{Zoom: 5}},
		{"dpr=1", Options{DPR: 1}},
		{"dpr=2", Options{DPR: 2}},
		{"dpr=1.5", Options{DPR: 1.5}},
		{"dpr=5", Options{DPR: 5}},

		// quality and q
		{"quality=1", Options{Quality: 1}},
		{"quality=80", Options{Quality: 80}},
		{"q=100", Options{Quality: 100}},
		{"quality=70&q=90", Options{Quality: 70}}, // quality is read first

		// format and fm
		{"format=jpeg", Options{Format: JPEG}},
		{"format=jpg", Options{Format: JPEG}},
		{"fm=jpg", Options{Format: JPEG}},
		{"fm=JPG", Options{Format: JPEG}},
		{"format=png", Options{Format: PNG}},
		{"fm=webp", Options{Format: WebP}},
		{"format=avif", Options{Format: AVIF}},
		{"fm=gif", Options{Format: GIF}},
		{"format=auto", Options{Format: FormatAuto}},
		{"fm=auto", Options{Format: FormatAuto}},

		// auto
		{"auto=format", Options{Format: FormatAuto}},
		{"auto=compress,format", Options{Format: FormatAuto}},
		{"auto=format,compress", Options{Format: FormatAuto}},
		{"auto=compress", Options{}},
		{"auto=compress&w=10", Options{Mode: ModeFit, Width: 10}},

		// webp
		{"webp=1", Options{Format: WebP}},
		{"webp=true", Options{Format: WebP}},
		{"webp=0", Options{}},
		{"webp=false", Options{}},
		{"webp=0&w=10", Options{Mode: ModeFit, Width: 10}},

		// format/fm beat auto=format and webp=1; auto=format beats webp=1
		{"format=png&auto=format", Options{Format: PNG}},
		{"fm=png&auto=format", Options{Format: PNG}},
		{"fm=jpg&webp=1", Options{Format: JPEG}},
		{"format=gif&webp=true&auto=format", Options{Format: GIF}},
		{"auto=format&webp=1", Options{Format: FormatAuto}},
		{"auto=compress&webp=1", Options{Format: WebP}},

		// background and bg
		{"background=ff8000", Options{Background: &Color{255, 128, 0}}},
		{"background=%23FF8000", Options{Background: &Color{255, 128, 0}}},
		{"bg=f80", Options{Background: &Color{255, 136, 0}}},
		{"bg=%23F80", Options{Background: &Color{255, 136, 0}}},
		{"bg=000", Options{Background: &Color{0, 0, 0}}},
		{"bg=#123456", Options{Background: &Color{0x12, 0x34, 0x56}}},

		// Photon's percent sizes
		{"w=50%", Options{Mode: ModeFit, WidthPct: 50}},
		{"w=50%25&h=20%25", Options{Mode: ModeFit, WidthPct: 50, HeightPct: 20}},
		{"h=100%", Options{Mode: ModeFit, HeightPct: 100}},
		{"w=1%", Options{Mode: ModeFit, WidthPct: 1}},
		{"w=12.5%", Options{Mode: ModeFit, WidthPct: 12.5}},

		// trim, ulb, rotate, flip, focal point
		{"trim=auto", Options{Trim: &Trim{Auto: true, Threshold: 10}}},
		{"trim=AUTO&trim_threshold=0", Options{Trim: &Trim{Auto: true}}},
		{"trim=1,2,3,4", Options{Trim: &Trim{Edges: [4]int{1, 2, 3, 4}}}},
		{"trim=0,0,0,0", Options{}},
		{"trim_threshold=40", Options{}}, // a modifier alone changes nothing
		{"ulb=true", Options{Trim: &Trim{Auto: true, Black: true, Threshold: 10}}},
		{"ulb=1&trim_threshold=50", Options{Trim: &Trim{Auto: true, Black: true, Threshold: 50}}},
		{"ulb=false", Options{}},
		{"rot=90", Options{Rotate: 90}},
		{"rotate=270&rot=90", Options{Rotate: 270}},
		{"rot=0", Options{}},
		{"flip=h", Options{Flip: FlipH}},
		{"flip=VH", Options{Flip: FlipHV}},
		{"resize=10,10&fp-x=0.2", Options{Mode: ModeCover, Width: 10, Height: 10, Focus: &Point{0.2, 0.5}}},
		{"resize=10,10&fp-y=1&fp-x=0&crop_strategy=smart", Options{Mode: ModeCover, Width: 10, Height: 10, Focus: &Point{0, 1}}},

		// filters and adjustments
		{"filter=GrayScale", Options{Adjust: Adjust{Filter: FilterGrayscale}}},
		{"filter=blurselective", Options{Adjust: Adjust{Filter: FilterBlurSelective}}},
		{"brightness=-255&contrast=100", Options{Adjust: Adjust{Brightness: -255, Contrast: 100}}},
		{"colorize=255,-10,0", Options{Adjust: Adjust{Colorize: &Tint{255, -10, 0}}}},
		{"colorize=0,0,0", Options{}},
		{"smooth=-7", Options{Adjust: Adjust{Smooth: ptr(-7.0)}}},
		{"smooth=2.5", Options{Adjust: Adjust{Smooth: ptr(2.5)}}},
		{"blur=250&sharp=0", Options{Adjust: Adjust{Blur: 250}}},
		{"sharpen=10&sharp=1", Options{Adjust: Adjust{Sharpen: 10}}},
		{"strip=all&strip=bogus", Options{}},
		{"strip=INFO", Options{}},

		// the watermark and its defaults
		{"mark=logo.png", Options{Mark: &Watermark{Key: "logo.png", VAlign: "bottom", HAlign: "right", Pad: 10, Alpha: 100}}},
		{"mark=a/b%20c.png&mark-w=0.25&mark-align=left,top&mark-pad=0&mark-alpha=40",
			Options{Mark: &Watermark{Key: "a/b c.png", Width: 0.25, VAlign: "top", HAlign: "left", Alpha: 40}}},
		{"mark=m.png&mark-w=120&mark-align=center", Options{Mark: &Watermark{Key: "m.png", Width: 120, VAlign: "bottom", HAlign: "center", Pad: 10, Alpha: 100}}},
		{"mark=m.png&mark-w=1", Options{Mark: &Watermark{Key: "m.png", Width: 1, VAlign: "bottom", HAlign: "right", Pad: 10, Alpha: 100}}},
		{"mark-alpha=50", Options{}},

		// precedence: resize > fit > lb > w/h
		{"resize=100,100&fit=200,200&lb=300,300&w=400&h=400", Options{Mode: ModeCover, Width: 100, Height: 100}},
		{"w=400&lb=300,300&fit=200,200", Options{Mode: ModeFit, Width: 200, Height: 200}},
		{"lb=300,300&w=400&h=500", Options{Mode: ModeLetterbox, Width: 300, Height: 300}},
		{"h=500&resize=100,50", Options{Mode: ModeCover, Width: 100, Height: 50}},
		{"crop=0,0,50,50&w=80&h=60&resize=10,20", Options{Mode: ModeCover, Width: 10, Height: 20, Crop: &Region{pct(0), pct(0), pct(50), pct(50)}}},

		// unknown parameters are ignored
		{"utm_source=newsletter&foo=bar&w=300", Options{Mode: ModeFit, Width: 300}},
		{"W=300", Options{}}, // names are case-sensitive: W is unknown
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got := optionsOf(t, tt.query)
			got.sizing = ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseOptions(%q)\n got %s\nwant %s", tt.query, dumpOptions(got), dumpOptions(tt.want))
			}
		})
	}
}

func dumpOptions(o Options) string {
	var crop, bg string
	if o.Crop != nil {
		crop = o.Crop.String()
	}
	if o.Background != nil {
		bg = o.Background.String()
	}
	return strings.Join([]string{
		"mode=" + [...]string{"none", "fit", "cover", "letterbox"}[o.Mode],
		"box=" + itoa(o.Width) + "x" + itoa(o.Height),
		"crop=" + crop, "strategy=" + string(o.Strategy), "gravity=" + string(o.Gravity),
		"zoom=" + ftoa(o.Zoom), "dpr=" + ftoa(o.DPR), "quality=" + itoa(o.Quality),
		"format=" + string(o.Format), "bg=" + bg, "rest=" + o.Canonical(),
	}, " ")
}

func ptr[T any](v T) *T { return &v }

func itoa(n int) string     { return strconv.Itoa(n) }
func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func TestParseOptionsInvalid(t *testing.T) {
	tests := []struct {
		query string
		param string // the parameter the error must name, as spelled in the URL
	}{
		// an overridden parameter is still checked
		{"resize=100,100&w=abc", "w"},
		{"resize=100,100&fit=0,0", "fit"},
		{"fit=100,100&lb=1", "lb"},
		{"quality=50&q=abc", "q"},
		{"format=png&fm=bmp", "fm"},
		{"fm=png&webp=2", "webp"},
		{"background=fff&bg=nope", "bg"},
		// w and h
		{"w=", "w"},
		{"w=0", "w"},
		{"w=-1", "w"},
		{"w=-0", "w"},
		{"w=%2B5", "w"},
		{"w=8193", "w"},
		{"w=99999999999999999999", "w"},
		{"w=abc", "w"},
		{"w=1.5", "w"},
		{"w=300.0", "w"},
		{"w=NaN", "w"},
		{"w=Inf", "w"},
		{"w=1e3", "w"},
		{"w=0x10", "w"},
		{"w=ff", "w"},
		{"w=300px", "w"},
		{"w=30%200", "w"},
		{"w=300,200", "w"},
		{"h=", "h"},
		{"h=0", "h"},
		{"h=-5", "h"},
		{"h=8193", "h"},
		{"h=abc", "h"},
		{"h=2.5", "h"},
		{"h=NaN", "h"},
		{"h=1e2", "h"},
		{"w=100&h=0", "h"},
		{"w=100&h=", "h"},

		// fit, resize, lb
		{"fit=", "fit"},
		{"fit=100", "fit"},
		{"fit=100,100,100", "fit"},
		{"fit=0,100", "fit"},
		{"fit=100,0", "fit"},
		{"fit=-1,100", "fit"},
		{"fit=8193,100", "fit"},
		{"fit=100,8193", "fit"},
		{"fit=1.5,100", "fit"},
		{"fit=a,b", "fit"},
		{"fit=,", "fit"},
		{"fit=100,", "fit"},
		{"fit=NaN,Inf", "fit"},
		{"fit=1e3,100", "fit"},
		{"fit=100x100", "fit"},
		{"resize=", "resize"},
		{"resize=100", "resize"},
		{"resize=100px", "resize"},
		{"resize=100,100,100", "resize"},
		{"resize=0,100", "resize"},
		{"resize=100,0px", "resize"},
		{"resize=-100,100", "resize"},
		{"resize=8193,100", "resize"},
		{"resize=100,8193px", "resize"},
		{"resize=1.5,100", "resize"},
		{"resize=100pxpx,100", "resize"},
		{"resize=px,100", "resize"},
		{"resize=100%25,100", "resize"},
		{"resize=abc,100", "resize"},
		{"resize=0x10,100", "resize"},
		{"resize=1e2,100", "resize"},
		{"lb=", "lb"},
		{"lb=100", "lb"},
		{"lb=100,100,100", "lb"},
		{"lb=0,100", "lb"},
		{"lb=100,-1", "lb"},
		{"lb=8193,8193", "lb"},
		{"lb=1.5,2.5", "lb"},
		{"lb=abc,def", "lb"},

		// crop
		{"crop=", "crop"},
		{"crop=0,0,50", "crop"},
		{"crop=0,0,50,50,50", "crop"},
		{"crop=0,0,101,50", "crop"},
		{"crop=0,0,50,100.5", "crop"},
		{"crop=101,0,50,50", "crop"},
		{"crop=0,0,0,50", "crop"},
		{"crop=0,0,50,0", "crop"},
		{"crop=0,0,0px,50px", "crop"},
		{"crop=0px,0px,10px,0px", "crop"},
		{"crop=-1,0,50,50", "crop"},
		{"crop=0,-10px,50,50", "crop"},
		{"crop=0,0,abc,50", "crop"},
		{"crop=0,0,50,NaN", "crop"},
		{"crop=0,0,Inf,50", "crop"},
		{"crop=0,0,1e1,50", "crop"},
		{"crop=0,0,0x10,50", "crop"},
		{"crop=0,0,0x1p3,50", "crop"},
		{"crop=0,0,1.5px,50", "crop"},
		{"crop=0,0,50%25,50", "crop"},
		{"crop=,,,", "crop"},
		{"crop=0,0,px,50", "crop"},

		// crop_strategy and gravity
		{"crop_strategy=", "crop_strategy"},
		{"crop_strategy=foo", "crop_strategy"},
		{"crop_strategy=center", "crop_strategy"},
		{"resize=10,10&crop_strategy=1", "crop_strategy"},
		{"gravity=", "gravity"},
		{"gravity=up", "gravity"},
		{"gravity=top", "gravity"},
		{"gravity=north-east", "gravity"},
		{"gravity=1", "gravity"},

		// zoom and dpr
		{"zoom=", "zoom"},
		{"zoom=0", "zoom"},
		{"zoom=0.05", "zoom"},
		{"zoom=0.09999", "zoom"},
		{"zoom=-1", "zoom"},
		{"zoom=5.01", "zoom"},
		{"zoom=6", "zoom"},
		{"zoom=abc", "zoom"},
		{"zoom=NaN", "zoom"},
		{"zoom=nan", "zoom"},
		{"zoom=Inf", "zoom"},
		{"zoom=-Inf", "zoom"},
		{"zoom=Infinity", "zoom"},
		{"zoom=1e0", "zoom"},
		{"zoom=0x1p0", "zoom"},
		{"zoom=1,5", "zoom"},
		{"zoom=2x", "zoom"},
		{"dpr=", "dpr"},
		{"dpr=0", "dpr"},
		{"dpr=0.5", "dpr"},
		{"dpr=0.99", "dpr"},
		{"dpr=-2", "dpr"},
		{"dpr=5.5", "dpr"},
		{"dpr=6", "dpr"},
		{"dpr=abc", "dpr"},
		{"dpr=NaN", "dpr"},
		{"dpr=Inf", "dpr"},
		{"dpr=2e0", "dpr"},
		{"dpr=2x", "dpr"},

		// quality and q
		{"quality=", "quality"},
		{"quality=0", "quality"},
		{"quality=101", "quality"},
		{"quality=-1", "quality"},
		{"quality=%2B50", "quality"},
		{"quality=50.5", "quality"},
		{"quality=abc", "quality"},
		{"quality=NaN", "quality"},
		{"quality=1e2", "quality"},
		{"quality=0x50", "quality"},
		{"q=", "q"},
		{"q=0", "q"},
		{"q=101", "q"},
		{"q=-5", "q"},
		{"q=1.5", "q"},
		{"q=high", "q"},
		{"q=Inf", "q"},

		// format and fm
		{"format=", "format"},
		{"format=bmp", "format"},
		{"format=tiff", "format"},
		{"format=svg", "format"},
		{"format=heic", "format"},
		{"format=jpegg", "format"},
		{"format=1", "format"},
		{"fm=", "fm"},
		{"fm=bmp", "fm"},
		{"fm=jxl", "fm"},
		{"fm=jp2", "fm"},

		// webp
		{"webp=", "webp"},
		{"webp=2", "webp"},
		{"webp=yes", "webp"},
		{"webp=-1", "webp"},

		// background and bg
		{"background=", "background"},
		{"background=zzz", "background"},
		{"background=12345", "background"},
		{"background=1234567", "background"},
		{"background=%23", "background"},
		{"background=red", "background"},
		{"bg=", "bg"},
		{"bg=zzz", "bg"},
		{"bg=12345", "bg"},
		{"bg=ff", "bg"},
		{"bg=%23%23fff", "bg"},
		{"bg=gggggg", "bg"},
		{"bg=0xffff", "bg"},
		{"bg=%2Bfffff", "bg"},
		{"bg=-fffff", "bg"},
		{"bg=ff_fff", "bg"},
		{"bg=rgb(1,2,3)", "bg"},

		// percent sizes
		{"w=0%", "w"},
		{"w=101%", "w"},
		{"w=-5%", "w"},
		{"h=%", "h"},
		{"h=50%%", "h"},
		{"w=50%&h=abc", "h"},

		// trim, ulb, rotate, flip, focal point
		{"trim=", "trim"},
		{"trim=yes", "trim"},
		{"trim=1,2,3", "trim"},
		{"trim=1,2,3,4,5", "trim"},
		{"trim=1,2,-3,4", "trim"},
		{"trim=1.5,0,0,0", "trim"},
		{"trim=100001,0,0,0", "trim"},
		{"trim=auto&trim_threshold=256", "trim_threshold"},
		{"trim=auto&trim_threshold=-1", "trim_threshold"},
		{"trim_threshold=x", "trim_threshold"},
		{"ulb=yes", "ulb"},
		{"rot=45", "rot"},
		{"rot=360", "rot"},
		{"rot=-90", "rot"},
		{"rotate=", "rotate"},
		{"flip=x", "flip"},
		{"flip=", "flip"},
		{"resize=10,10&fp-x=1.1", "fp-x"},
		{"fp-y=-0.1", "fp-y"},
		{"fp-x=NaN", "fp-x"},

		// filters and adjustments
		{"filter=blur", "filter"},
		{"filter=", "filter"},
		{"brightness=256", "brightness"},
		{"brightness=1.5", "brightness"},
		{"contrast=-101", "contrast"},
		{"colorize=1,2", "colorize"},
		{"colorize=1,2,256", "colorize"},
		{"colorize=a,b,c", "colorize"},
		{"smooth=-8", "smooth"},
		{"smooth=101", "smooth"},
		{"smooth=Inf", "smooth"},
		{"blur=0", "blur"},
		{"blur=251", "blur"},
		{"blur=NaN", "blur"},
		{"sharp=11", "sharp"},
		{"sharpen=-1", "sharpen"},
		{"strip=none", "strip"},
		{"strip=", "strip"},

		// the watermark
		{"mark=", "mark"},
		{"mark=m.png&mark-w=0", "mark-w"},
		{"mark=m.png&mark-w=1.5", "mark-w"},
		{"mark=m.png&mark-w=8193", "mark-w"},
		{"mark=m.png&mark-w=1e2", "mark-w"},
		{"mark=m.png&mark-align=top,bottom", "mark-align"},
		{"mark=m.png&mark-align=left,right", "mark-align"},
		{"mark=m.png&mark-align=up", "mark-align"},
		{"mark=m.png&mark-pad=-1", "mark-pad"},
		{"mark=m.png&mark-pad=8193", "mark-pad"},
		{"mark=m.png&mark-alpha=101", "mark-alpha"},
		{"mark-alpha=x", "mark-alpha"},

		// the error names the offending parameter when valid ones surround it
		{"w=300&q=0&utm_source=x", "q"},
		{"resize=100,100&gravity=up", "gravity"},
		{"fm=png&bg=nope", "bg"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			o, err := parseQuery(t, tt.query)
			if err == nil {
				t.Fatalf("ParseOptions(%q) = %s, want a 400 naming %q", tt.query, dumpOptions(o), tt.param)
			}
			var pe *prism.Error
			if !errors.As(err, &pe) {
				t.Fatalf("ParseOptions(%q) error %v (%T) is not a *prism.Error", tt.query, err, err)
			}
			if pe.Status != http.StatusBadRequest || pe.Code != prism.CodeInvalidParam || pe.Param != tt.param {
				t.Errorf("ParseOptions(%q) error = {Status %d, Code %q, Param %q}, want {400, %q, %q}",
					tt.query, pe.Status, pe.Code, pe.Param, prism.CodeInvalidParam, tt.param)
			}
			if pe.Message == "" {
				t.Errorf("ParseOptions(%q): error has no message", tt.query)
			}
			if prism.StatusOf(err) != http.StatusBadRequest {
				t.Errorf("StatusOf = %d, want 400", prism.StatusOf(err))
			}
			if !o.IsZero() {
				t.Errorf("ParseOptions(%q) returned non-zero Options alongside its error", tt.query)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct {
		query, want string
	}{
		{"", ""},
		{"utm_source=x&foo=bar", ""},
		{"w=300", "w=300"},
		{"h=200", "h=200"},
		{"h=200&w=300", "w=300&h=200"},
		{"fit=300,200", "fit=300,200"},
		{"resize=300px,200px", "resize=300,200"},
		{"lb=400,300", "lb=400,300"},
		{"crop=10px,020px,100px,50px", "crop=10px,20px,100px,50px"},
		{"crop=0.0,0,50.50,100", "crop=0,0,50.5,100"},
		{"resize=100,100&crop_strategy=smart", "resize=100,100&crop_strategy=attention"},
		{"resize=100,100&crop_strategy=entropy&gravity=north", "resize=100,100&crop_strategy=entropy"},
		{"resize=100,100&gravity=North", "resize=100,100&gravity=north"},
		{"crop=0,0,50,50&w=80&h=60&gravity=south", "crop=0,0,50,50&w=80&h=60&gravity=south"},
		{"zoom=1.50", "zoom=1.5"},
		{"dpr=2.0", "dpr=2"},
		{"quality=80", "q=80"},
		{"format=jpg", "fm=jpeg"},
		{"webp=1", "fm=webp"},
		{"auto=format", "fm=auto"},
		{"bg=%23FFF", "bg=ffffff"},
		{"background=AbCdEf", "bg=abcdef"},
		{"bg=f00&lb=10,10&q=50&fm=png&dpr=2&zoom=1.5&utm_medium=y", "lb=10,10&zoom=1.5&dpr=2&q=50&fm=png&bg=ff0000"},
		// Photon, imgix and Cloudflare parameters, in the order they apply
		{"w=50%", "w=50%25"},
		{"h=20%&w=10%", "w=10%25&h=20%25"},
		{"blur=5&rot=90", "rot=90&blur=5"},
		{"rot=0&sharp=0&strip=all&w=10", "w=10"},
		{"q=80&mark-alpha=50&mark=a%26b.png&filter=sepia&flip=v&rotate=180&trim=auto&w=30",
			"trim=auto&rot=180&flip=v&w=30&filter=sepia&mark=a%26b.png&mark-align=bottom,right&mark-pad=10&mark-alpha=50&q=80"},
		{"ulb=true&trim_threshold=20", "ulb=true&trim_threshold=20"},
		{"trim=1,2,3,4&trim_threshold=20", "trim=1,2,3,4"},
		{"resize=10,10&fp-y=0.25&gravity=north", "resize=10,10&fp-x=0.5&fp-y=0.25"},
		{"w=10&fp-x=0.3", "w=10"},
		{"sharpen=2.50&smooth=0&colorize=1,0,0&contrast=-5&brightness=7", "brightness=7&contrast=-5&colorize=1,0,0&smooth=0&sharp=2.5"},
		// overridden sizing parameters are dropped
		{"resize=100,100&fit=200,200&lb=300,300&w=400&h=400", "resize=100,100"},
		{"fit=200,200&w=400", "fit=200,200"},
		{"lb=300,300&h=400", "lb=300,300"},
		// parameters without effect are dropped
		{"w=300&zoom=1", "w=300"},
		{"w=300&dpr=1", "w=300"},
		{"resize=10,10&gravity=center", "resize=10,10"},
		{"w=300&gravity=north", "w=300"},
		{"w=300&crop_strategy=smart", "w=300"},
		{"w=300&webp=0", "w=300"},
		{"w=300&auto=compress", "w=300"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if got := optionsOf(t, tt.query).Canonical(); got != tt.want {
				t.Errorf("Canonical(%q) = %q, want %q", tt.query, got, tt.want)
			}
		})
	}
}

func TestCanonicalEquivalent(t *testing.T) {
	groups := [][]string{
		{"w=300&h=200&q=80", "h=200&w=300&q=80", "q=80&h=200&w=300", "quality=80&w=300&h=200", "w=300&h=200&q=80&utm_source=news&foo=bar"},
		{"w=300&fm=jpeg", "w=300&format=jpeg", "w=300&fm=jpg", "w=300&format=JPG"},
		{"w=300&fm=webp", "w=300&webp=1", "w=300&webp=true", "fm=webp&w=300&webp=0"},
		{"w=300&fm=auto", "w=300&format=auto", "w=300&auto=format", "w=300&auto=compress,format"},
		{"lb=100,100&bg=ffffff", "lb=100,100&bg=%23FFF", "lb=100,100&background=fff", "lb=100,100&background=%23ffffff"},
		{"resize=100,100", "resize=100px,100px", "resize=100,100&gravity=center", "resize=100,100&gravity=centre", "resize=100,100&zoom=1&dpr=1"},
		{"resize=100,100&crop_strategy=smart", "resize=100,100&crop_strategy=attention", "resize=100,100&crop_strategy=smart&gravity=east"},
		{"w=300", "w=300&zoom=1", "w=300&dpr=1", "w=300&zoom=1.0&dpr=1.00", "w=0300"},
		{"resize=100,100", "resize=100,100&w=50", "fit=1,1&resize=100,100", "lb=3,3&resize=100,100&h=7"},
		{"crop=0,0,50,50", "crop=0.0,00,50.0,50"},
		{"w=300&zoom=2", "zoom=2.0&w=300"},
		{"rot=90", "rotate=90", "rot=180&rotate=90", "ROT=1&rot=90"},
		{"sharp=3", "sharpen=3", "sharpen=3.0&sharp=9"},
		{"flip=hv", "flip=vh", "flip=HV"},
		{"trim=auto", "trim=auto&trim_threshold=10", "trim=AUTO", "trim=auto&ulb=true"}, // trim wins over ulb
		{"ulb=true", "ulb=1", "ulb=TRUE&trim_threshold=10"},
		{"mark=m.png", "mark=m.png&mark-align=bottom,right&mark-pad=10&mark-alpha=100", "mark=m.png&mark-align=right,bottom"},
		{"resize=10,10&fp-x=0.5", "resize=10,10&fp-y=0.5", "resize=10,10&fp-x=0.5&fp-y=0.5&crop_strategy=smart"},
		{"resize=10,10&fp-x=0", "resize=10,10&fp-x=-0", "resize=10,10&fp-x=0.0"},
		{"smooth=0", "smooth=-0", "smooth=0.00"},
		{"w=10", "w=10&ulb=true&trim=0,0,0,0", "w=10&fp-x=0.3", "w=10&strip=all&rot=0&sharp=0&ulb=false"},
	}
	for _, g := range groups {
		want := optionsOf(t, g[0]).Canonical()
		for _, q := range g[1:] {
			if got := optionsOf(t, q).Canonical(); got != want {
				t.Errorf("Canonical(%q) = %q, want %q as for %q", q, got, want, g[0])
			}
		}
	}
}

func TestCanonicalDistinct(t *testing.T) {
	// Each of these asks for a different image, so each Canonical differs
	// from every other.
	queries := []string{
		"w=300", "w=301", "h=300", "w=300&h=200", "fit=300,199", "resize=300,200", "lb=300,200",
		"resize=200,300", "resize=300,200&gravity=north", "resize=300,200&gravity=south",
		"resize=300,200&crop_strategy=smart", "resize=300,200&crop_strategy=entropy",
		"crop=0,0,50,50", "crop=0px,0px,50px,50px", "crop=0,0,50,50&w=300", "crop=0,0,50,50&w=300&h=200",
		"w=300&zoom=2", "w=300&dpr=2", "w=300&zoom=2&dpr=2", "w=300&q=80", "w=300&q=81",
		"w=300&fm=png", "w=300&fm=webp", "w=300&fm=auto", "w=300&fm=jpeg",
		"lb=300,200&bg=000000", "lb=300,200&bg=ffffff",
		"q=80", "fm=png", "bg=fff", "zoom=2", "dpr=2",
		"w=30%", "w=30%&h=30%", "h=30%", "trim=auto", "ulb=true", "trim=auto&trim_threshold=11", "trim=0,0,0,1",
		"rot=90", "rot=180", "flip=h", "flip=v", "flip=hv", "resize=300,200&fp-x=0.1", "resize=300,200&fp-y=0.1",
		"filter=sepia", "filter=negate", "brightness=1", "contrast=1", "contrast=-1", "colorize=1,0,0", "colorize=0,1,0",
		"smooth=1", "smooth=0", "blur=1", "sharp=1", "mark=a.png", "mark=b.png", "mark=a.png&mark-w=0.5",
		"mark=a.png&mark-w=50", "mark=a.png&mark-align=top", "mark=a.png&mark-pad=0", "mark=a.png&mark-alpha=99",
	}
	seen := map[string]string{}
	for _, q := range queries {
		c := optionsOf(t, q).Canonical()
		if c == "" {
			t.Errorf("Canonical(%q) is empty", q)
		}
		if prev, ok := seen[c]; ok {
			t.Errorf("Canonical(%q) = Canonical(%q) = %q", q, prev, c)
		}
		seen[c] = q
		if strings.Contains(c, "utm") || strings.Contains(c, "foo") {
			t.Errorf("Canonical(%q) = %q carries an unknown parameter", q, c)
		}
	}
}

func TestCanonicalIgnoresUnknown(t *testing.T) {
	for _, q := range []string{"w=300&utm_source=a", "utm_source=a&w=300&foo=bar&utm_campaign=c&ver=123"} {
		c := optionsOf(t, q).Canonical()
		if c != "w=300" {
			t.Errorf("Canonical(%q) = %q, want w=300", q, c)
		}
	}
}

func TestIsZero(t *testing.T) {
	tests := []struct {
		query string
		zero  bool
	}{
		{"", true},
		{"utm_source=newsletter", true},
		{"utm_source=a&foo=bar&ver=3", true},
		{"W=300&Q=80", true}, // names are case-sensitive
		// no-op values of known parameters: nothing to transform
		{"webp=0", true},
		{"webp=false", true},
		{"auto=compress", true},
		{"strip=all", true},
		{"rot=0", true},
		{"sharp=0", true},
		{"ulb=false", true},
		{"trim=0,0,0,0", true},
		{"ulb=true&trim=0,0,0,0", true}, // trim wins, and trims nothing
		{"fp-x=0.3&fp-y=0.1", true},     // no cover crop to place

		{"rot=90", false},
		{"flip=h", false},
		{"trim=auto", false},
		{"ulb=true", false},
		{"filter=grayscale", false},
		{"brightness=1", false},
		{"blur=1", false},
		{"mark=a.png", false},
		{"w=50%25", false},

		{"w=300", false},
		{"h=300", false},
		{"fit=10,10", false},
		{"resize=10,10", false},
		{"lb=10,10", false},
		{"crop=0,0,50,50", false},
		{"crop_strategy=smart", false},
		{"gravity=north", false},
		{"zoom=2", false},
		{"dpr=2", false},
		{"quality=80", false},
		{"q=80", false},
		{"format=png", false},
		{"fm=auto", false},
		{"auto=format", false},
		{"webp=1", false},
		{"background=fff", false},
		{"bg=000", false},
		{"w=300&utm_source=a", false},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if got := optionsOf(t, tt.query).IsZero(); got != tt.zero {
				t.Errorf("IsZero(%q) = %v, want %v", tt.query, got, tt.zero)
			}
		})
	}
	if !(Options{}).IsZero() {
		t.Error("Options{}.IsZero() = false")
	}
}

func TestLengthAndColorStrings(t *testing.T) {
	if got := (Region{px(1), pct(2.5), px(300), pct(100)}).String(); got != "1px,2.5,300px,100" {
		t.Errorf("Region.String() = %q", got)
	}
	if got := (Color{0, 0x0f, 0xf0}).String(); got != "000ff0" {
		t.Errorf("Color.String() = %q", got)
	}
	for _, tt := range []struct {
		l    Length
		side int
		want int
	}{
		{px(10), 320, 10},
		{pct(50), 320, 160},
		{pct(25), 241, 60},   // 60.25
		{pct(12.5), 100, 13}, // 12.5 rounds half away from zero
		{pct(100), 983, 983},
		{pct(0), 983, 0},
	} {
		if got := tt.l.resolve(tt.side); got != tt.want {
			t.Errorf("%v.resolve(%d) = %d, want %d", tt.l, tt.side, got, tt.want)
		}
	}
}
