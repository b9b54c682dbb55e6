package imaging

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"math"
	"strconv"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/internal/testutil"
)

// The images the effects are measured on are drawn with Go's own encoders
// (testutil.DrawPNG), so each pixel's value is known exactly.

func rgb(r, g, b uint8) color.NRGBA { return color.NRGBA{r, g, b, 255} }

var (
	red    = rgb(255, 0, 0)
	green  = rgb(0, 255, 0)
	blue   = rgb(0, 0, 255)
	whiteC = rgb(255, 255, 255)
	blackC = rgb(0, 0, 0)
)

// quadrants is 64×48: red top left, green top right, blue bottom left,
// white bottom right.
func quadrants(x, y int) color.NRGBA {
	switch {
	case x < 32 && y < 24:
		return red
	case y < 24:
		return green
	case x < 32:
		return blue
	}
	return whiteC
}

// render runs query on src, with mark as its watermark when given.
func renderBytes(t *testing.T, src []byte, query string, mark []byte) testutil.Decoded {
	t.Helper()
	p := NewProcessor(DefaultConfig)
	tr, err := p.Prepare(src, mustParse(t, query), Accepts{})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if tr.NeedsMark() {
		if err := tr.SetMark(mark); err != nil {
			t.Fatalf("%s: SetMark: %v", query, err)
		}
	}
	v, err := tr.Run(t.Context())
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	d := testutil.DecodeImage(t, v.Data)
	if d.Width != v.Width || d.Height != v.Height || d.Frames != v.Frames {
		t.Fatalf("%s: Encoded says %dx%d×%d, the bytes are %dx%d×%d", query, v.Width, v.Height, v.Frames, d.Width, d.Height, d.Frames)
	}
	return d
}

// near fails unless got is within tol of want in every band.
func near(t *testing.T, what string, got, want [3]float64, tol float64) {
	t.Helper()
	for i := range 3 {
		if math.Abs(got[i]-want[i]) > tol {
			t.Errorf("%s = %v, want %v ± %v", what, got, want, tol)
			return
		}
	}
}

func c3(c color.NRGBA) [3]float64 { return [3]float64{float64(c.R), float64(c.G), float64(c.B)} }

// TestOrientEffects: rot and flip move each quadrant where they should,
// and w, h refer to the rotated image.
func TestOrientEffects(t *testing.T) {
	src := testutil.DrawPNG(t, 64, 48, quadrants)
	tests := []struct {
		query         string
		width, height int
		// the colours at the corners: top left, top right, bottom left, bottom right
		corners [4]color.NRGBA
	}{
		{"fm=png&rot=0&q=90", 64, 48, [4]color.NRGBA{red, green, blue, whiteC}},
		{"fm=png&rot=90", 48, 64, [4]color.NRGBA{blue, red, whiteC, green}},
		{"fm=png&rotate=180", 64, 48, [4]color.NRGBA{whiteC, blue, green, red}},
		{"fm=png&rot=270", 48, 64, [4]color.NRGBA{green, whiteC, red, blue}},
		{"fm=png&flip=h", 64, 48, [4]color.NRGBA{green, red, whiteC, blue}},
		{"fm=png&flip=v", 64, 48, [4]color.NRGBA{blue, whiteC, red, green}},
		{"fm=png&flip=hv", 64, 48, [4]color.NRGBA{whiteC, blue, green, red}},
		// rotation first, then the flip
		{"fm=png&rot=90&flip=h", 48, 64, [4]color.NRGBA{red, blue, green, whiteC}},
		// sizes are of the rotated image
		{"fm=png&rot=90&w=24", 24, 32, [4]color.NRGBA{blue, red, whiteC, green}},
		{"fm=png&rot=90&resize=48,32", 48, 32, [4]color.NRGBA{blue, red, whiteC, green}},
		{"fm=png&rot=270&w=50%", 24, 32, [4]color.NRGBA{green, whiteC, red, blue}},
		// crop is in the rotated frame: its top half is blue and red
		{"fm=png&rot=90&crop=0,0,100,50", 48, 32, [4]color.NRGBA{blue, red, blue, red}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			d := renderBytes(t, src, tt.query, nil)
			if d.Width != tt.width || d.Height != tt.height {
				t.Fatalf("%dx%d, want %dx%d", d.Width, d.Height, tt.width, tt.height)
			}
			r := d.Raster(t)
			w, h := r.Width-1, r.Height-1
			for i, xy := range [4][2]int{{0, 0}, {w, 0}, {0, h}, {w, h}} {
				near(t, "corner "+[]string{"top left", "top right", "bottom left", "bottom right"}[i],
					r.RGB(0, xy[0], xy[1]), c3(tt.corners[i]), 2)
			}
		})
	}
}

// TestPercentSizes: w and h in percent of the image being sized.
func TestPercentSizes(t *testing.T) {
	tests := []struct {
		query         string
		width, height int
	}{
		{"w=50%", 160, 120},
		{"h=25%", 80, 60},
		{"w=100%", 320, 240},
		{"w=1%", 3, 2},
		{"w=50%&h=10%", 32, 24},                  // fits both
		{"w=50%&h=100%&crop=0,0,50,50", 80, 120}, // percent of the crop; fit within it
		{"w=10%&h=25%&crop=0,0,50,50", 16, 30},   // w, h with crop cover the box
		{"rot=90&w=50%", 120, 160},               // of the rotated image
		{"w=50%&h=200", 160, 120},
	}
	src := testutil.ReadTestImage(t, "320x240.jpg")
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			d := renderBytes(t, src, tt.query, nil)
			if d.Width != tt.width || d.Height != tt.height {
				t.Errorf("%dx%d, want %dx%d", d.Width, d.Height, tt.width, tt.height)
			}
		})
	}
}

// TestTrim: a known border is removed exactly.
func TestTrim(t *testing.T) {
	// a white border around a 30×20 block at (12, 8) of two colours, so the
	// output's own layout can be checked too
	bordered := testutil.DrawPNG(t, 60, 40, func(x, y int) color.NRGBA {
		switch {
		case x < 12 || x >= 42 || y < 8 || y >= 28:
			return whiteC
		case x < 27:
			return red
		}
		return blue
	})
	// black bars above and below, a grey picture between
	letterboxed := testutil.DrawPNG(t, 50, 40, func(x, y int) color.NRGBA {
		if y < 6 || y >= 34 {
			return blackC
		}
		return rgb(120, 130, 140)
	})
	// black on all four sides: 6 rows above and below, 5 columns each side
	boxed := testutil.DrawPNG(t, 50, 40, func(x, y int) color.NRGBA {
		if y < 6 || y >= 34 || x < 5 || x >= 45 {
			return blackC
		}
		return rgb(120, 130, 140)
	})
	// a faint border (value 250 on white 255) that the threshold decides
	faint := testutil.DrawPNG(t, 40, 40, func(x, y int) color.NRGBA {
		switch {
		case x < 4 || x >= 36 || y < 4 || y >= 36:
			return whiteC
		case x < 8 || x >= 32 || y < 8 || y >= 32:
			return rgb(250, 250, 250)
		}
		return green
	})
	tests := []struct {
		name, query   string
		src           []byte
		width, height int
		topLeft       color.NRGBA
		topRight      color.NRGBA
	}{
		{"auto", "trim=auto&fm=png", bordered, 30, 20, red, blue},
		{"auto then size", "trim=auto&w=15&fm=png", bordered, 15, 10, red, blue},
		{"auto then rotate", "trim=auto&rot=90&fm=png", bordered, 20, 30, red, red},
		{"fixed", "trim=8,18,12,12&fm=png", bordered, 30, 20, red, blue},
		{"fixed then crop", "trim=8,18,12,12&crop=15px,0px,15px,20px&fm=png", bordered, 15, 20, blue, blue},
		{"ulb", "ulb=true&fm=png", letterboxed, 50, 28, rgb(120, 130, 140), rgb(120, 130, 140)},
		{"auto on black bars", "trim=auto&fm=png", letterboxed, 50, 28, rgb(120, 130, 140), rgb(120, 130, 140)},
		// Photon's ulb takes the bars off the top and bottom, never the sides
		{"ulb keeps the sides", "ulb=true&fm=png", boxed, 50, 28, blackC, blackC},
		{"auto takes all four", "trim=auto&fm=png", boxed, 40, 28, rgb(120, 130, 140), rgb(120, 130, 140)},
		{"trim wins over ulb", "ulb=true&trim=1,0,1,0&fm=png", boxed, 50, 38, blackC, blackC},
		{"faint border cut by the default threshold", "trim=auto&fm=png", faint, 24, 24, green, green},
		{"faint border kept by a low threshold", "trim=auto&trim_threshold=2&fm=png", faint, 32, 32, rgb(250, 250, 250), rgb(250, 250, 250)},
		{"nothing to trim", "trim=auto&fm=png", testutil.DrawPNG(t, 20, 10, testutil.Uniform(red)), 20, 10, red, red},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := renderBytes(t, tt.src, tt.query, nil)
			if d.Width != tt.width || d.Height != tt.height {
				t.Fatalf("%dx%d, want %dx%d", d.Width, d.Height, tt.width, tt.height)
			}
			r := d.Raster(t)
			near(t, "top left", r.RGB(0, 0, 0), c3(tt.topLeft), 2)
			near(t, "top right", r.RGB(0, r.Width-1, 0), c3(tt.topRight), 2)
		})
	}
}

// TestTrimRefused: fixed edges that leave nothing, and a border search in
// an SVG (drawn at the output's scale), are 400s naming the parameter.
func TestTrimRefused(t *testing.T) {
	svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50"><rect width="100" height="50" fill="red"/></svg>`)
	for _, tt := range []struct{ query, param string }{{"trim=auto", "trim"}, {"ulb=true", "ulb"}} {
		_, err := NewProcessor(DefaultConfig).Prepare(svg, mustParse(t, tt.query), Accepts{})
		if pe := asPrismError(err); pe == nil || pe.Status != 400 || pe.Param != tt.param {
			t.Errorf("%s of an SVG: %v, want a 400 naming %s", tt.query, err, tt.param)
		}
	}
	if _, err := NewProcessor(DefaultConfig).Prepare(svg, mustParse(t, "trim=5,10,5,10&w=50"), Accepts{}); err != nil {
		t.Errorf("fixed trim of an SVG: %v", err)
	}

	src := testutil.DrawPNG(t, 20, 10, testutil.Uniform(red))
	_, err := NewProcessor(DefaultConfig).Prepare(src, mustParse(t, "trim=5,10,5,10"), Accepts{})
	if pe := asPrismError(err); pe == nil || pe.Status != 400 || pe.Param != "trim" {
		t.Errorf("err = %v, want a 400 naming trim", err)
	}
}

// TestColourEffects: Photon's filters and adjustments map known colours as
// GD does.
func TestColourEffects(t *testing.T) {
	c := rgb(200, 100, 50)
	grey := 0.299*200 + 0.587*100 + 0.114*50 // 124.2
	tests := []struct {
		query string
		want  [3]float64
	}{
		{"filter=grayscale", [3]float64{grey, grey, grey}},
		{"filter=sepia", [3]float64{grey + 100, grey + 50, grey}},
		{"filter=negate", [3]float64{55, 155, 205}},
		{"brightness=40", [3]float64{240, 140, 90}},
		{"brightness=80", [3]float64{255, 180, 130}}, // clipped
		{"brightness=-60", [3]float64{140, 40, 0}},
		{"colorize=30,-20,10", [3]float64{230, 80, 60}},
		{"colorize=100,0,-100", [3]float64{255, 100, 0}},
		{"filter=grayscale&brightness=10", [3]float64{grey + 10, grey + 10, grey + 10}},
		// the filter first, then brightness, contrast and colorize,
		// whatever the order in the URL
		{"filter=negate&brightness=50", [3]float64{105, 205, 255}},
		{"brightness=50&filter=negate", [3]float64{105, 205, 255}},
		{"filter=emboss&brightness=50", [3]float64{177, 177, 177}},
		{"colorize=10,20,30&filter=edgedetect", [3]float64{137, 147, 157}},
		// a flat area keeps its level through kernels, blurs and sharpening
		// (libvips' integer blur masks once brightened it by 2%)
		{"filter=emboss", [3]float64{127, 127, 127}}, // GD adds 127 here too
		{"filter=blurgaussian&blur=10&sharp=5", [3]float64{200, 100, 50}},
		{"blur=60", [3]float64{200, 100, 50}},            // the shrunk wide blur too
		{"filter=edgedetect", [3]float64{127, 127, 127}}, // GD adds 127
		{"filter=meanremoval", [3]float64{200, 100, 50}},
	}
	src := testutil.DrawPNG(t, 24, 24, testutil.Uniform(c))
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			d := renderBytes(t, src, tt.query+"&fm=png", nil)
			r := d.Raster(t)
			for _, xy := range [][2]int{{0, 0}, {12, 12}, {23, 23}} {
				near(t, "pixel", r.RGB(0, xy[0], xy[1]), tt.want, 1)
			}
		})
	}
}

// TestGrayscaleEverywhere: on a photograph every pixel has R = G = B.
func TestGrayscaleEverywhere(t *testing.T) {
	for _, fm := range []string{"png", "webp", "jpeg"} {
		t.Run(fm, func(t *testing.T) {
			r := renderBytes(t, testutil.ReadTestImage(t, "320x240.jpg"), "w=100&filter=grayscale&fm="+fm, nil).Raster(t)
			if r.Bands == 1 {
				return // stored as grey: one value per pixel
			}
			for y := range r.Height {
				for x := range r.Width {
					// lossy chroma may stray by a step or two
					if p := r.RGB(0, x, y); math.Abs(p[0]-p[1]) > 3 || math.Abs(p[1]-p[2]) > 3 {
						t.Fatalf("(%d,%d) = %v is not grey", x, y, p)
					}
				}
			}
		})
	}
}

// TestMeansAndSpread: brightness and colorize shift the channel means by
// their values; contrast raises or lowers the spread, as in Photon.
func TestMeansAndSpread(t *testing.T) {
	// values 40 to 200, so that a shift of up to 55 never clips
	gradient := testutil.DrawPNG(t, 161, 20, func(x, y int) color.NRGBA {
		v := uint8(40 + x)
		return rgb(v, uint8(240-int(v)), uint8(40+(x+y*8)%161))
	})
	base := renderBytes(t, gradient, "fm=png&q=100", nil).Raster(t)
	tests := []struct {
		query string
		shift [3]float64
	}{
		{"brightness=55", [3]float64{55, 55, 55}},
		{"brightness=-40", [3]float64{-40, -40, -40}},
		{"colorize=10,-30,50", [3]float64{10, -30, 50}},
		{"brightness=10&colorize=0,0,-20", [3]float64{10, 10, -10}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := renderBytes(t, gradient, tt.query+"&fm=png", nil).Raster(t)
			for b := range 3 {
				if got := r.Mean(0, b) - base.Mean(0, b); math.Abs(got-tt.shift[b]) > 0.5 {
					t.Errorf("band %d mean shifts by %.2f, want %v", b, got, tt.shift[b])
				}
			}
		})
	}
	photo := testutil.ReadTestImage(t, "320x240.jpg")
	plain := renderBytes(t, photo, "w=160&fm=png", nil).Raster(t)
	// contrast: GD's formula on each pixel of the plain image, and the
	// spread rising or falling with it
	for _, c := range []int{50, 20, -20, -60} {
		t.Run("contrast="+strconv.Itoa(c), func(t *testing.T) {
			r := renderBytes(t, photo, "w=160&fm=png&contrast="+strconv.Itoa(c), nil).Raster(t)
			f := (100 + float64(c)) / 100
			f *= f
			var diff float64
			for i, v := range plain.Pix {
				diff += math.Abs(float64(r.Pix[i]) - math.Min(255, math.Max(0, math.Round((float64(v)-127.5)*f+127.5))))
			}
			if diff /= float64(len(plain.Pix)); diff > 0.6 {
				t.Errorf("pixels differ from GD's contrast by %.2f on average", diff)
			}
			for b := range 3 {
				got, was := r.Std(0, b), plain.Std(0, b)
				if c > 0 && got <= was || c < 0 && got >= was*0.9 {
					t.Errorf("band %d spread %.1f against %.1f", b, got, was)
				}
			}
		})
	}
}

// TestSharpness: blur and Photon's blurring filters lower the variance of
// the Laplacian, sharpen and meanremoval raise it, more as their values grow.
func TestSharpness(t *testing.T) {
	photo := testutil.ReadTestImage(t, "320x240.jpg")
	measure := func(query string) float64 {
		return renderBytes(t, photo, "w=200&fm=png&"+query, nil).Raster(t).Sharpness(0)
	}
	plain := measure("q=100")
	tests := []struct {
		query string
		lo    float64 // the ratio to the plain image's sharpness is in [lo, hi)
		hi    float64
	}{
		{"blur=1", 0.2, 0.9},
		{"blur=4", 0, 0.1},
		{"blur=40", 0, 0.01},
		{"blur=250", 0, 0.01},
		{"filter=blurgaussian", 0.05, 0.5},
		{"filter=blurselective", 0.05, 0.7},
		{"smooth=1", 0.05, 0.5},
		{"smooth=20", 0.3, 0.95},
		{"sharp=1", 1.1, 3},
		{"sharpen=5", 2, 20},
		{"sharp=10", 3, 50},
		{"filter=meanremoval", 3, 100},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if r := measure(tt.query) / plain; r < tt.lo || r >= tt.hi {
				t.Errorf("sharpness is %.3f × the plain image's, want [%v, %v)", r, tt.lo, tt.hi)
			}
		})
	}
	if a, b := measure("sharp=2"), measure("sharp=8"); a >= b {
		t.Errorf("sharp=8 (%.0f) is no sharper than sharp=2 (%.0f)", b, a)
	}
	if a, b := measure("blur=2"), measure("blur=8"); a <= b {
		t.Errorf("blur=8 (%.0f) is no blurrier than blur=2 (%.0f)", b, a)
	}
}

// TestFocalPoint: the crop window is centred on fp-x, fp-y of the source
// and clamped to the image. Red is 255 × x / 199 and green 255 × y / 99,
// so the output's centre says where in the source it came from.
func TestFocalPoint(t *testing.T) {
	src := testutil.DrawPNG(t, 200, 100, func(x, y int) color.NRGBA {
		return rgb(uint8(255*x/199), uint8(255*y/99), 0)
	})
	tall := testutil.DrawPNG(t, 100, 200, func(x, y int) color.NRGBA {
		return rgb(uint8(255*x/99), uint8(255*y/199), 0)
	})
	tests := []struct {
		query  string
		src    []byte
		centre [2]float64 // in source pixels
	}{
		// resize=50,50 scales 200×100 to 100×50 and keeps a 50-wide window
		{"resize=50,50", src, [2]float64{100, 50}},
		{"resize=50,50&fp-x=0.3", src, [2]float64{60, 50}},
		{"resize=50,50&fp-x=0.6", src, [2]float64{120, 50}},
		{"resize=50,50&fp-x=0", src, [2]float64{50, 50}},  // clamped to the left edge
		{"resize=50,50&fp-x=1", src, [2]float64{150, 50}}, // and to the right
		{"resize=50,50&fp-x=0.3&gravity=east&crop_strategy=smart", src, [2]float64{60, 50}},
		{"resize=50,50&fp-y=0.35", tall, [2]float64{50, 70}},
		{"resize=50,50&fp-y=0.9&fp-x=0.1", tall, [2]float64{50, 150}},
		// w and h with crop: the window inside the crop, around the point
		{"crop=0,0,100,100&w=50&h=50&fp-x=0.25", src, [2]float64{50, 50}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := renderBytes(t, tt.src, tt.query+"&fm=png", nil).Raster(t)
			if r.Width != 50 || r.Height != 50 {
				t.Fatalf("%dx%d, want 50x50", r.Width, r.Height)
			}
			w, h := 199.0, 99.0
			if &tt.src[0] == &tall[0] {
				w, h = 99, 199
			}
			// the mean of the centre 2×2 pixels, in source coordinates
			var x, y float64
			for _, p := range [][2]int{{24, 24}, {25, 24}, {24, 25}, {25, 25}} {
				c := r.RGB(0, p[0], p[1])
				x += c[0] / 255 * w / 4
				y += c[1] / 255 * h / 4
			}
			if math.Abs(x-tt.centre[0]) > 3 || math.Abs(y-tt.centre[1]) > 3 {
				t.Errorf("the centre comes from (%.1f, %.1f) of the source, want %v", x, y, tt.centre)
			}
		})
	}
}

// TestWatermark: the mark's pixels are in the aligned corner at its
// opacity, and nowhere else.
func TestWatermark(t *testing.T) {
	base := testutil.DrawPNG(t, 100, 80, testutil.Uniform(rgb(128, 128, 128)))
	mark := testutil.DrawPNG(t, 20, 10, testutil.Uniform(red))
	// half transparent blue with an opaque white centre row
	alphaMark := testutil.DrawPNG(t, 20, 10, func(x, y int) color.NRGBA {
		if y == 5 {
			return whiteC
		}
		return color.NRGBA{0, 0, 255, 128}
	})
	mix := func(a float64, over, under [3]float64) [3]float64 {
		return [3]float64{over[0]*a + under[0]*(1-a), over[1]*a + under[1]*(1-a), over[2]*a + under[2]*(1-a)}
	}
	g := [3]float64{128, 128, 128}
	tests := []struct {
		query string
		mark  []byte
		box   [4]int // where the mark lands: x, y, w, h
		want  [3]float64
	}{
		{"mark=m.png", mark, [4]int{70, 60, 20, 10}, c3(red)},
		{"mark=m.png&mark-alpha=50", mark, [4]int{70, 60, 20, 10}, mix(0.5, c3(red), g)},
		{"mark=m.png&mark-alpha=0", mark, [4]int{70, 60, 20, 10}, g},
		{"mark=m.png&mark-align=top,left&mark-pad=0", mark, [4]int{0, 0, 20, 10}, c3(red)},
		{"mark=m.png&mark-align=middle,center", mark, [4]int{40, 35, 20, 10}, c3(red)},
		{"mark=m.png&mark-align=bottom,left&mark-pad=5", mark, [4]int{5, 65, 20, 10}, c3(red)},
		{"mark=m.png&mark-w=0.5&mark-align=top", mark, [4]int{40, 10, 50, 25}, c3(red)},
		{"mark=m.png&mark-w=40&mark-pad=0", mark, [4]int{60, 60, 40, 20}, c3(red)},
		// without mark-w a mark keeps its size but fits inside the padding
		{"mark=m.png&w=30&fm=png&mark-pad=5", mark, [4]int{5, 10, 20, 10}, c3(red)},
		{"mark=m.png&mark-alpha=100", alphaMark, [4]int{70, 60, 20, 10}, mix(128.0/255, c3(blue), g)},
		{"mark=m.png&mark-alpha=50", alphaMark, [4]int{70, 60, 20, 10}, mix(64.0/255, c3(blue), g)},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			d := renderBytes(t, base, tt.query+"&fm=png", tt.mark)
			r := d.Raster(t)
			if r.Bands != 3 {
				t.Errorf("%d bands: an opaque image with a mark stays opaque RGB", r.Bands)
			}
			bx, by, bw, bh := tt.box[0], tt.box[1], tt.box[2], tt.box[3]
			if d.Width == 30 { // the sized case: 30×24
				bx, by = 5, 24-5-10
			}
			// inside, away from the resampled edges
			for _, p := range [][2]int{{bx + 1, by + 1}, {bx + bw - 2, by + 1}, {bx + 1, by + bh - 2}, {bx + bw/2, by + bh/2 - 1}} {
				near(t, "inside the mark", r.RGB(0, p[0], p[1]), tt.want, 3)
			}
			// just outside it, on every side that has room
			for _, p := range [][2]int{{bx - 2, by + bh/2}, {bx + bw + 1, by + bh/2}, {bx + bw/2, by - 2}, {bx + bw/2, by + bh + 1}} {
				if p[0] >= 0 && p[1] >= 0 && p[0] < r.Width && p[1] < r.Height {
					near(t, "outside the mark", r.RGB(0, p[0], p[1]), g, 1)
				}
			}
		})
	}
}

// TestWatermarkRefused: what cannot be a watermark is a 400 naming mark.
func TestWatermarkRefused(t *testing.T) {
	base := testutil.DrawPNG(t, 20, 20, testutil.Uniform(red))
	p := NewProcessor(DefaultConfig)
	for name, mark := range map[string][]byte{
		"not an image": []byte("hello"),
		"svg":          []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>`),
		"truncated":    testutil.DrawPNG(t, 20, 20, testutil.Uniform(red))[:30],
	} {
		t.Run(name, func(t *testing.T) {
			tr, err := p.Prepare(base, mustParse(t, "mark=x.png"), Accepts{})
			if err != nil {
				t.Fatal(err)
			}
			err = tr.SetMark(mark)
			if pe := asPrismError(err); pe == nil || pe.Status != 400 || pe.Param != "mark" {
				t.Errorf("err = %v, want a 400 naming mark", err)
			}
		})
	}
	tr, _ := p.Prepare(base, mustParse(t, "mark=x.png"), Accepts{})
	if _, err := tr.Run(t.Context()); err == nil {
		t.Error("a transform ran without the watermark it names")
	}
	// A mark whose header reads but whose pixels are cut short fails when
	// it is drawn: a 400 naming mark, not a 415 for the image.
	noisy := testutil.DrawPNG(t, 120, 80, func(x, y int) color.NRGBA { return color.NRGBA{uint8(x * 7), uint8(y * 13), uint8(x * y), 255} })
	tr, _ = p.Prepare(base, mustParse(t, "mark=x.png&fm=png"), Accepts{})
	if err := tr.SetMark(noisy[:len(noisy)/2]); err != nil {
		t.Fatalf("SetMark of a mark with a sound header: %v", err)
	}
	_, err := tr.Run(t.Context())
	if pe := asPrismError(err); pe == nil || pe.Status != 400 || pe.Param != "mark" {
		t.Errorf("a truncated mark: %v, want a 400 naming mark", err)
	}
}

// animation is three 48×32 frames of uniform colours, each with a black
// 8×8 block in its top-left corner, as a GIF.
func animation(t *testing.T) ([]byte, [3]color.NRGBA) {
	t.Helper()
	colours := [3]color.NRGBA{rgb(200, 40, 40), rgb(40, 200, 40), rgb(40, 40, 200)}
	pal := color.Palette{color.Black, color.White}
	for _, c := range colours {
		pal = append(pal, c)
	}
	g := &gif.GIF{}
	for i := range colours {
		f := image.NewPaletted(image.Rect(0, 0, 48, 32), pal)
		for y := range 32 {
			for x := range 48 {
				if x < 8 && y < 8 {
					f.SetColorIndex(x, y, 0)
				} else {
					f.SetColorIndex(x, y, uint8(2+i))
				}
			}
		}
		g.Image = append(g.Image, f)
		g.Delay = append(g.Delay, 10)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), colours
}

// TestEffectsOnEveryFrame: each operation applies to every frame of an
// animation.
func TestEffectsOnEveryFrame(t *testing.T) {
	src, colours := animation(t)
	mark := testutil.DrawPNG(t, 6, 6, testutil.Uniform(whiteC))
	type probe struct {
		x, y int
		want func(c [3]float64) [3]float64
	}
	same := func(c [3]float64) [3]float64 { return c }
	black := func([3]float64) [3]float64 { return [3]float64{} }
	tests := []struct {
		query         string
		width, height int
		probes        []probe
	}{
		{"rot=90", 32, 48, []probe{{31, 0, black}, {0, 0, same}, {0, 47, same}}},
		{"flip=h", 48, 32, []probe{{47, 0, black}, {0, 0, same}}},
		{"flip=v", 48, 32, []probe{{0, 31, black}, {0, 0, same}}},
		{"trim=8,0,0,0", 48, 24, []probe{{0, 0, same}}},
		{"trim=0,0,0,8&w=20", 20, 16, []probe{{10, 0, same}, {10, 15, same}}},
		{"filter=negate", 48, 32, []probe{{0, 0, func([3]float64) [3]float64 { return [3]float64{255, 255, 255} }},
			{20, 20, func(c [3]float64) [3]float64 { return [3]float64{255 - c[0], 255 - c[1], 255 - c[2]} }}}},
		{"filter=grayscale", 48, 32, []probe{{20, 20, func(c [3]float64) [3]float64 {
			v := 0.299*c[0] + 0.587*c[1] + 0.114*c[2]
			return [3]float64{v, v, v}
		}}}},
		{"brightness=30", 48, 32, []probe{{0, 0, func([3]float64) [3]float64 { return [3]float64{30, 30, 30} }},
			{20, 20, func(c [3]float64) [3]float64 { return [3]float64{c[0] + 30, c[1] + 30, c[2] + 30} }}}},
		// blurred: the block's corner is a mixture, far from both colours
		{"blur=8", 48, 32, []probe{{8, 8, func(c [3]float64) [3]float64 { return [3]float64{c[0] * 3 / 4, c[1] * 3 / 4, c[2] * 3 / 4} }},
			{40, 28, same}}},
		{"mark=m.png&mark-pad=2", 48, 32, []probe{{42, 26, func([3]float64) [3]float64 { return [3]float64{255, 255, 255} }},
			{20, 20, same}}},
		{"w=24&h=50%", 24, 16, []probe{{20, 12, same}}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			d := renderBytes(t, src, tt.query+"&fm=gif", mark)
			if d.Frames != 3 || d.Width != tt.width || d.Height != tt.height {
				t.Fatalf("%dx%d×%d, want %dx%d×3", d.Width, d.Height, d.Frames, tt.width, tt.height)
			}
			r := d.Raster(t)
			for f := range 3 {
				for _, p := range tt.probes {
					// GIF's palette and libvips' blur leave a few steps of error
					tol := 6.0
					if tt.query == "blur=8" && p.x == 8 {
						tol = 30
					}
					near(t, "frame "+string(rune('0'+f)), r.RGB(f, p.x, p.y), p.want(c3(colours[f])), tol)
				}
			}
		})
	}
}

func asPrismError(err error) *prism.Error {
	var pe *prism.Error
	if !errors.As(err, &pe) {
		return nil
	}
	return pe
}

// TestBlurAlpha: blurs work on premultiplied colour, so the colour of
// transparent pixels never bleeds into the visible ones, for a narrow blur,
// a wide one (done shrunk), and on every frame of an animation.
func TestBlurAlpha(t *testing.T) {
	const w, h = 60, 40
	// opaque red on the left, transparent blue on the right
	at := func(x, _ int) color.NRGBA {
		if x < w/2 {
			return red
		}
		return color.NRGBA{0, 0, 255, 0}
	}
	// clean checks that every visible pixel is still red.
	clean := func(t *testing.T, r testutil.Raster) {
		t.Helper()
		edge := 0.0
		for f := range r.Frames {
			for y := range r.Height {
				for x := range r.Width {
					a := r.At(f, x, y, 3)
					if a < 8 {
						continue
					}
					if c := r.RGB(f, x, y); c[0] < 235 || c[2] > 20 {
						t.Fatalf("frame %d (%d, %d): %v at alpha %.0f: transparent blue bled in", f, x, y, c, a)
					}
					if x == w/2 {
						edge = max(edge, a)
					}
				}
			}
		}
		if edge == 0 || edge == 255 {
			t.Errorf("alpha at the edge is %.0f: no blur happened", edge)
		}
	}
	for _, q := range []string{"blur=4", "blur=40", "filter=blurgaussian", "smooth=1"} {
		t.Run(q, func(t *testing.T) {
			clean(t, renderBytes(t, testutil.DrawPNG(t, w, h, at), q+"&fm=png", nil).Raster(t))
		})
		t.Run(q+" on 3 frames", func(t *testing.T) {
			pix := make([]byte, 0, w*h*3*4)
			for range 3 {
				for y := range h {
					for x := range w {
						c := at(x, y)
						pix = append(pix, c.R, c.G, c.B, c.A)
					}
				}
			}
			img, err := vips.NewImageFromMemory(pix, w, h*3, 4, vips.BandFormatUchar, vips.InterpretationSRGB)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			o := mustParse(t, q)
			if err := adjust(img, o.Adjust, 3); err != nil {
				t.Fatal(err)
			}
			out, err := img.ToBytes()
			if err != nil {
				t.Fatal(err)
			}
			if img.Width() != w || img.Height() != 3*h || img.Bands() != 4 || img.BandFormat() != vips.BandFormatUchar {
				t.Fatalf("%dx%d, %d bands of %v", img.Width(), img.Height(), img.Bands(), img.BandFormat())
			}
			clean(t, testutil.Raster{Width: w, Height: h, Bands: 4, Frames: 3, Pix: out})
		})
	}
}

// TestFirstFrameOriented: an animation kept as its first frame alone (a
// still output) rotates and flips like any image: the black block in the
// top-left corner moves where it should.
func TestFirstFrameOriented(t *testing.T) {
	src, colours := animation(t)
	tests := []struct {
		query         string
		width, height int
		block         [2]int // a pixel inside the black block
	}{
		{"rot=90&fm=png", 32, 48, [2]int{28, 3}},
		{"rot=270&fm=png", 32, 48, [2]int{3, 44}},
		{"rot=180&fm=jpg&q=95", 48, 32, [2]int{44, 28}},
		{"flip=v&fm=png", 48, 32, [2]int{3, 28}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			d := renderBytes(t, src, tt.query, nil)
			if d.Width != tt.width || d.Height != tt.height || d.Frames != 1 {
				t.Fatalf("%dx%d×%d, want %dx%d×1", d.Width, d.Height, d.Frames, tt.width, tt.height)
			}
			r := d.Raster(t)
			near(t, "the block", r.RGB(0, tt.block[0], tt.block[1]), [3]float64{0, 0, 0}, 6)
			near(t, "the opposite corner", r.RGB(0, tt.width-1-tt.block[0], tt.height-1-tt.block[1]), c3(colours[0]), 6)
		})
	}
}

// TestPaletteAfterTrim: whether a palette PNG keeps its palette is judged
// on the trimmed plan, so that letterbox padding added after a trim is
// drawn in its exact colour.
func TestPaletteAfterTrim(t *testing.T) {
	pal := color.Palette{color.NRGBA{255, 255, 255, 255}}
	for i := range 255 {
		pal = append(pal, color.NRGBA{uint8(i), uint8(255 - i), uint8(i * 7), 255})
	}
	img := image.NewPaletted(image.Rect(0, 0, 64, 64), pal)
	for y := range 64 {
		for x := range 64 {
			if x >= 8 && x < 56 && y >= 16 && y < 48 { // a 48×32 picture in a white border
				img.SetColorIndex(x, y, uint8((x*3+y*5)%256)) // every entry, white too
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	d := renderBytes(t, b.Bytes(), "lb=64,64&bg=ff00ff&trim=auto&fm=png", nil)
	r := d.Raster(t)
	if d.Width != 64 || d.Height != 64 {
		t.Fatalf("%dx%d, want 64x64", d.Width, d.Height)
	}
	// The trimmed 48×32 picture is padded back to 64×64, centred: where it
	// was. Every pixel is exact, the padding magenta (in no palette entry).
	bad := 0
	for y := range 64 {
		for x := range 64 {
			want := [3]float64{255, 0, 255}
			if x >= 8 && x < 56 && y >= 16 && y < 48 {
				c := pal[img.ColorIndexAt(x, y)].(color.NRGBA)
				want = c3(c)
			}
			if r.RGB(0, x, y) != want {
				bad++
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of 4096 pixels are not the picture's or the padding's exact colour", bad)
	}
}
