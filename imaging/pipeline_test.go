package imaging

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/internal/testutil"
)

func TestMain(m *testing.M) {
	RunSVGRasteriserIfChild()
	if err := Startup(0); err != nil {
		panic(err)
	}
	testutil.StartVips() // a no-op start: libvips is already up
	os.Exit(m.Run())
}

func mustParse(t *testing.T, query string) Options {
	t.Helper()
	q, err := prism.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOptions(q)
	if err != nil {
		t.Fatalf("ParseOptions(%q): %v", query, err)
	}
	return o
}

func process(t *testing.T, p *Processor, file, query string, accepts Accepts) (*Encoded, testutil.Decoded) {
	t.Helper()
	v, err := p.Process(t.Context(), testutil.ReadTestImage(t, file), mustParse(t, query), accepts)
	if err != nil {
		t.Fatalf("%s?%s: %v", file, query, err)
	}
	d := testutil.DecodeImage(t, v.Data)
	if d.Format != string(v.Format) || d.Width != v.Width || d.Height != v.Height || d.Frames != v.Frames {
		t.Fatalf("%s?%s: Variant says %s %dx%d×%d, the bytes are %s %dx%d×%d", file, query,
			v.Format, v.Width, v.Height, v.Frames, d.Format, d.Width, d.Height, d.Frames)
	}
	return v, d
}

func TestProcess(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	tests := []struct {
		file, query   string
		accepts       Accepts
		format        string
		width, height int
		frames        int
		alpha         bool
	}{
		// sizing
		{"320x240.jpg", "w=160", Accepts{}, "jpeg", 160, 120, 1, false},
		{"320x240.jpg", "h=60", Accepts{}, "jpeg", 80, 60, 1, false},
		{"320x240.jpg", "w=1000", Accepts{}, "jpeg", 320, 240, 1, false},
		{"320x240.jpg", "fit=100,100", Accepts{}, "jpeg", 100, 75, 1, false},
		{"320x240.jpg", "resize=100,100", Accepts{}, "jpeg", 100, 100, 1, false},
		{"320x240.jpg", "resize=800,600", Accepts{}, "jpeg", 320, 240, 1, false},
		{"320x240.jpg", "resize=1000,200", Accepts{}, "jpeg", 320, 64, 1, false},
		{"320x240.jpg", "resize=100,100&crop_strategy=smart", Accepts{}, "jpeg", 100, 100, 1, false},
		{"320x240.jpg", "resize=100,100&crop_strategy=entropy", Accepts{}, "jpeg", 100, 100, 1, false},
		{"320x240.jpg", "resize=100,50&gravity=south", Accepts{}, "jpeg", 100, 50, 1, false},
		{"320x240.jpg", "lb=400,400", Accepts{}, "jpeg", 400, 400, 1, false},
		{"320x240.jpg", "lb=100,100", Accepts{}, "jpeg", 100, 100, 1, false},
		{"320x240.jpg", "crop=10px,20px,100px,50px", Accepts{}, "jpeg", 100, 50, 1, false},
		{"320x240.jpg", "crop=0,0,50,50", Accepts{}, "jpeg", 160, 120, 1, false},
		{"320x240.jpg", "crop=0,0,50,50&w=80&h=80", Accepts{}, "jpeg", 80, 80, 1, false},
		{"320x240.jpg", "crop=25,25,50px,100&w=25", Accepts{}, "jpeg", 25, 90, 1, false},
		{"320x240.jpg", "w=100&zoom=2", Accepts{}, "jpeg", 200, 150, 1, false},
		{"320x240.jpg", "w=100&dpr=1.5", Accepts{}, "jpeg", 150, 113, 1, false},
		{"pexels-magda-ehlers-5141x3434.jpg", "w=400&quality=80", Accepts{}, "jpeg", 400, 267, 1, false},
		{"2569067123_aca715a2ee_o.jpg", "w=300", Accepts{}, "jpeg", 300, 245, 1, false},
		{"4.webp", "w=100", Accepts{}, "webp", 100, 75, 1, false},
		// formats and negotiation
		{"320x240.jpg", "w=100&fm=webp", Accepts{}, "webp", 100, 75, 1, false},
		{"320x240.jpg", "w=100&webp=1", Accepts{}, "webp", 100, 75, 1, false},
		{"320x240.jpg", "w=100&format=avif", Accepts{}, "avif", 100, 75, 1, false},
		{"320x240.jpg", "w=100&fm=png", Accepts{}, "png", 100, 75, 1, false},
		{"320x240.jpg", "w=100&fm=gif", Accepts{}, "gif", 100, 75, 1, false},
		{"320x240.jpg", "w=100&format=auto", Accepts{AVIF: true, WebP: true}, "avif", 100, 75, 1, false},
		{"320x240.jpg", "w=100&auto=format,compress", Accepts{WebP: true}, "webp", 100, 75, 1, false},
		{"320x240.jpg", "w=100&format=auto", Accepts{}, "jpeg", 100, 75, 1, false},
		{"G31D.TIF", "w=200", Accepts{}, "jpeg", 200, 264, 1, false},
		{"relax.jp2", "w=160", Accepts{}, "jpeg", 160, 120, 1, false},
		{"320x240.heic", "w=160", Accepts{}, "jpeg", 160, 120, 1, false},
		{"320x240.bmp", "w=160", Accepts{}, "jpeg", 160, 120, 1, false},
		{"with-alpha.bmp", "w=128", Accepts{}, "png", 128, 96, 1, true},
		{"320x240.heic", "w=160&fm=webp", Accepts{}, "webp", 160, 120, 1, false},
		{"pitm.avif", "w=400", Accepts{}, "avif", 400, 78, 1, false},
		{"check.svg", "w=50", Accepts{}, "png", 50, 50, 1, true},
		// alpha
		{"with-alpha.png", "w=128", Accepts{}, "png", 128, 96, 1, true},
		{"with-alpha.png", "w=128&fm=webp", Accepts{}, "webp", 128, 96, 1, true},
		{"with-alpha.png", "w=128&fm=avif", Accepts{}, "avif", 128, 96, 1, true},
		{"with-alpha.png", "w=128&fm=jpeg", Accepts{}, "jpeg", 128, 96, 1, false},
		{"5_webp_a.webp", "w=100", Accepts{}, "webp", 100, 100, 1, true},
		{"16-bit-grey-alpha.png", "w=50", Accepts{}, "png", 50, 44, 1, true},
		{"with-alpha.png", "lb=300,300", Accepts{}, "png", 300, 300, 1, true},
		// animation
		// (libvips decodes every GIF with an alpha band)
		{"animated-loop-3.gif", "w=185", Accepts{}, "gif", 185, 143, 10, true},
		{"animated-loop-3.gif", "w=185&fm=webp", Accepts{}, "webp", 185, 143, 10, true},
		{"animated-loop-3.gif", "w=185&format=auto", Accepts{AVIF: true, WebP: true}, "webp", 185, 143, 10, true},
		{"animated-loop-3.gif", "w=185&fm=png", Accepts{}, "png", 185, 143, 1, true},
		{"animated-loop-3.webp", "resize=100,100", Accepts{}, "webp", 100, 100, 10, true},
		{"rotating-squares.webp", "w=40", Accepts{}, "webp", 40, 40, 9, true},
		{"rotating-squares.gif", "lb=100,80", Accepts{}, "gif", 100, 80, 30, true},
		// (its 97 frames are identical: libwebp would merge them, GIF keeps them)
		{"big-height.webp", "w=13&fm=gif", Accepts{}, "gif", 13, 169, 97, true},
	}
	for _, tt := range tests {
		t.Run(tt.file+"?"+tt.query, func(t *testing.T) {
			_, d := process(t, p, tt.file, tt.query, tt.accepts)
			if d.Format != tt.format || d.Width != tt.width || d.Height != tt.height || d.Frames != tt.frames {
				t.Errorf("got %s %dx%d×%d, want %s %dx%d×%d", d.Format, d.Width, d.Height, d.Frames,
					tt.format, tt.width, tt.height, tt.frames)
			}
			if d.HasAlpha != tt.alpha {
				t.Errorf("alpha = %v, want %v", d.HasAlpha, tt.alpha)
			}
			if d.Interpretation != vips.InterpretationSRGB && d.Interpretation != vips.InterpretationBW {
				t.Errorf("colour space %v, want sRGB", d.Interpretation)
			}
		})
	}
}

// meanDiff is the mean absolute difference per band value of two images of
// the same size, sampled on a grid.
func meanDiff(t *testing.T, a, b testutil.Decoded) float64 {
	t.Helper()
	if a.Width != b.Width || a.Height != b.Height {
		t.Fatalf("sizes differ: %dx%d vs %dx%d", a.Width, a.Height, b.Width, b.Height)
	}
	var sum float64
	var n int
	for y := 2; y < a.Height; y += a.Height / 12 {
		for x := 2; x < a.Width; x += a.Width / 12 {
			pa, pb := a.Pixel(t, x, y), b.Pixel(t, x, y)
			for i := range min(len(pa), len(pb), 3) {
				sum += math.Abs(pa[i] - pb[i])
				n++
			}
		}
	}
	return sum / float64(n)
}

func TestOrientation(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	_, upright := process(t, p, "Landscape_1.jpg", "w=300", Accepts{})
	for _, f := range []string{"Landscape_3.jpg", "Landscape_5.jpg", "Landscape_6.jpg", "Landscape_8.jpg"} {
		t.Run(f, func(t *testing.T) {
			_, d := process(t, p, f, "w=300", Accepts{})
			if d.Width != 300 || d.Height != 225 {
				t.Fatalf("got %dx%d, want 300x225", d.Width, d.Height)
			}
			if diff := meanDiff(t, upright, d); diff > 12 {
				t.Errorf("differs from the upright image by %.1f per band: not rotated upright", diff)
			}
		})
	}
	// The corpus lacks orientations 2, 4 and 7 on landscapes: make all eight
	// from the upright picture, storing it as a camera would have.
	for o := 1; o <= 8; o++ {
		t.Run("made-"+strconv.Itoa(o), func(t *testing.T) {
			src := storeWithOrientation(t, testutil.ReadTestImage(t, "Landscape_1.jpg"), o)
			if h, err := Probe(src); err != nil || h.Orientation != o || h.Width != 600 || h.Height != 450 {
				t.Fatalf("made source reads as %+v, %v", h, err)
			}
			v, err := p.Process(t.Context(), src, mustParse(t, "w=300"), Accepts{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := meanDiff(t, upright, testutil.DecodeImage(t, v.Data)); diff > 12 {
				t.Errorf("orientation %d: differs from the upright image by %.1f per band", o, diff)
			}
		})
	}
	// The portraits carry orientations 2 (mirrored) and 6 (rotated) of the
	// same upright picture.
	_, p2 := process(t, p, "Portrait_2.jpg", "w=150", Accepts{})
	_, p6 := process(t, p, "Portrait_6.jpg", "w=150", Accepts{})
	if p2.Width != 150 || p2.Height != 200 || p6.Width != 150 || p6.Height != 200 {
		t.Fatalf("portraits: %dx%d and %dx%d, want 150x200", p2.Width, p2.Height, p6.Width, p6.Height)
	}
	if diff := meanDiff(t, p2, p6); diff > 12 {
		t.Errorf("portraits differ by %.1f per band: one is not upright", diff)
	}
	// And a crop is taken from the upright image, not the stored one.
	_, c1 := process(t, p, "Landscape_1.jpg", "crop=0,0,50,50", Accepts{})
	_, c6 := process(t, p, "Landscape_6.jpg", "crop=0,0,50,50", Accepts{})
	if diff := meanDiff(t, c1, c6); diff > 12 {
		t.Errorf("crop of the rotated source differs by %.1f per band", diff)
	}
}

// storeWithOrientation returns upright as a JPEG whose pixels are stored so
// that EXIF orientation o displays them upright (EXIF 2.3, tag 0x0112).
func storeWithOrientation(t *testing.T, upright []byte, o int) []byte {
	t.Helper()
	img, err := vips.NewImageFromBuffer(upright)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	steps := map[int][]func() error{
		2: {func() error { return img.Flip(vips.DirectionHorizontal) }},
		3: {func() error { return img.Rotate(vips.Angle180) }},
		4: {func() error { return img.Flip(vips.DirectionVertical) }},
		5: {func() error { return img.Rotate(vips.Angle90) }, func() error { return img.Flip(vips.DirectionHorizontal) }},  // transpose
		6: {func() error { return img.Rotate(vips.Angle270) }},                                                             // shown after 90° clockwise
		7: {func() error { return img.Rotate(vips.Angle270) }, func() error { return img.Flip(vips.DirectionHorizontal) }}, // transverse
		8: {func() error { return img.Rotate(vips.Angle90) }},                                                              // shown after 90° anticlockwise
	}
	for _, step := range steps[o] {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if err := img.SetOrientation(o); err != nil {
		t.Fatal(err)
	}
	out, _, err := img.ExportJpeg(&vips.JpegExportParams{Quality: 95})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestColourManagement(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	for _, f := range []string{"Channel_digital_image_CMYK_color.jpg", "p3.png", "prophoto.png", "Flag_of_the_Netherlands-16bit.png", "16-bit-grey-alpha.png"} {
		t.Run(f, func(t *testing.T) {
			h, err := Probe(testutil.ReadTestImage(t, f))
			if err != nil {
				t.Fatal(err)
			}
			_, d := process(t, p, f, "q=90", Accepts{})
			want := vips.InterpretationSRGB
			if h.ColorSpace == "grey16" {
				want = vips.InterpretationBW // grey stays grey, through its profile
			}
			if d.Interpretation != want || d.Image.BandFormat() != vips.BandFormatUchar {
				t.Errorf("source %s came out as %v/%v, want 8-bit %v", h.ColorSpace, d.Interpretation, d.Image.BandFormat(), want)
			}
			if d.HasField("icc-profile-data") {
				t.Errorf("output still carries an ICC profile")
			}
		})
	}
	// CMYK must be converted, not reinterpreted: the Dutch flag's top
	// stripe is red, a CMYK image read as RGB would not be.
	_, flag := process(t, p, "Flag_of_the_Netherlands-16bit.png", "w=90", Accepts{})
	if px := flag.Pixel(t, 45, 5); px[0] < 150 || px[1] > 80 || px[2] > 80 {
		t.Errorf("16-bit flag's red stripe came out as %v", px)
	}
	_, cmyk := process(t, p, "Channel_digital_image_CMYK_color.jpg", "w=100", Accepts{})
	if cmyk.Bands != 3 {
		t.Errorf("CMYK source came out with %d bands, want 3", cmyk.Bands)
	}
}

func TestMetadataStripped(t *testing.T) {
	src := testutil.ReadTestImage(t, "Landscape_6.jpg")
	if in := testutil.DecodeImage(t, src); !in.HasField("exif-") {
		t.Fatal("test source has no EXIF; the test proves nothing")
	}
	p := NewProcessor(DefaultConfig)
	for _, fm := range []string{"jpeg", "webp", "png", "avif"} {
		_, d := process(t, p, "Landscape_6.jpg", "w=100&fm="+fm, Accepts{})
		for _, field := range []string{"exif-", "xmp-data", "iptc-data", "icc-profile-data"} {
			if d.HasField(field) {
				t.Errorf("%s output carries %s", fm, field)
			}
		}
	}
}

func TestAlphaFlatten(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	tests := []struct {
		query string
		want  []float64
	}{
		{"fm=jpeg", []float64{255, 255, 255}},
		{"fm=jpeg&bg=00ff00", []float64{0, 255, 0}},
		{"fm=jpeg&background=%23f00", []float64{255, 0, 0}},
	}
	for _, tt := range tests {
		_, d := process(t, p, "full-transparent.png", tt.query, Accepts{})
		px := d.Pixel(t, 150, 150)
		for i, w := range tt.want {
			if math.Abs(px[i]-w) > 3 {
				t.Errorf("%s: transparent pixel became %v, want %v", tt.query, px, tt.want)
				break
			}
		}
	}
	// Transparency survives to formats that have it.
	_, d := process(t, p, "full-transparent.png", "w=100", Accepts{})
	if px := d.Pixel(t, 50, 50); !d.HasAlpha || px[3] != 0 {
		t.Errorf("PNG output pixel %v: transparency lost", px)
	}
}

func TestLetterboxBackground(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	_, d := process(t, p, "320x240.jpg", "lb=400,400", Accepts{})
	if px := d.Pixel(t, 200, 5); px[0] > 3 || px[1] > 3 || px[2] > 3 {
		t.Errorf("default letterbox bar is %v, want black", px)
	}
	_, d = process(t, p, "320x240.jpg", "lb=400,400&bg=ffffff", Accepts{})
	if px := d.Pixel(t, 200, 5); px[0] < 252 || px[1] < 252 || px[2] < 252 {
		t.Errorf("white letterbox bar is %v", px)
	}
}

func TestQualityAndZoom(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	low, _ := process(t, p, "flowers.jpeg", "w=400&q=20", Accepts{})
	high, _ := process(t, p, "flowers.jpeg", "w=400&q=95", Accepts{})
	if len(low.Data) >= len(high.Data) {
		t.Errorf("q=20 gave %d bytes, q=95 %d: quality not applied", len(low.Data), len(high.Data))
	}
	for _, tt := range []struct {
		zoom float64
		want int
	}{{0, 82}, {1, 82}, {0.5, 82}, {1.5, 70}, {2, 51}, {5, 16}} {
		if got := p.quality(JPEG, Options{Zoom: tt.zoom}); got != tt.want {
			t.Errorf("zoom %g: default quality %d, want %d", tt.zoom, got, tt.want)
		}
	}
	if got := p.quality(JPEG, Options{Zoom: 2, Quality: 90}); got != 90 {
		t.Errorf("explicit quality with zoom: %d, want 90", got)
	}
	if got := p.quality(WebP, Options{DPR: 3}); got != 80 {
		t.Errorf("dpr changed quality: %d", got)
	}
}

func TestAnimationFrameLimit(t *testing.T) {
	cfg := DefaultConfig
	cfg.MaxFrames = 4
	_, d := process(t, NewProcessor(cfg), "rotating-squares.gif", "w=40", Accepts{})
	if d.Frames != 4 {
		t.Errorf("frames = %d, want the limit of 4", d.Frames)
	}
}

func TestShrinkOnLoad(t *testing.T) {
	tests := []struct {
		file, query string
		loadedWidth int // what the decoder produced before resizing
	}{
		{"pexels-magda-ehlers-5141x3434.jpg", "w=400", 642}, // 1/8
		{"pexels-magda-ehlers-5141x3434.jpg", "w=1000", 1285},
		{"pexels-magda-ehlers-5141x3434.jpg", "w=3000", 5141},
		{"4.webp", "w=100", 128},
		{"4.webp", "w=300", 512},
	}
	for _, tt := range tests {
		t.Run(tt.file+"?"+tt.query, func(t *testing.T) {
			src := testutil.ReadTestImage(t, tt.file)
			h, err := Probe(src)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := NewPlan(Size{h.Width, h.Height}, mustParse(t, tt.query))
			if err != nil {
				t.Fatal(err)
			}
			img, err := load(t.Context(), src, h, plan, 1, true)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if img.Width() != tt.loadedWidth {
				t.Errorf("decoded %d wide, want %d", img.Width(), tt.loadedWidth)
			}
		})
	}
}

func TestBadSources(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	tests := []struct {
		file   string
		status int
	}{
		{"truncated.jpg", http.StatusUnsupportedMediaType},
		{"truncated.png", http.StatusUnsupportedMediaType},
		{"corrupt-header.jpg", http.StatusUnsupportedMediaType},
		{"giant-image.jpg", http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		for _, q := range []string{"w=100", "fm=webp", "crop=0,0,10,10&w=5"} {
			_, err := p.Process(t.Context(), testutil.ReadTestImage(t, tt.file), mustParse(t, q), Accepts{})
			var pe *prism.Error
			if !errors.As(err, &pe) || pe.Status != tt.status {
				t.Errorf("%s?%s: err = %v, want status %d", tt.file, q, err, tt.status)
			}
		}
	}
	// A header claiming 7000×7000 over 16×16 of data: a decoder warning,
	// which fails the decode rather than filling the rest with grey.
	lying := testutil.LyingJPEG(t, 7000)
	// Other formats cut in half: their data ends early.
	half := func(name string) []byte { b := testutil.ReadTestImage(t, name); return b[:len(b)/2] }
	for _, src := range [][]byte{nil, []byte("hello"), []byte("%PDF-1.4\n"), lying, half("4.webp"), half("G31D.TIF")} {
		for _, q := range []string{"w=100", "fm=webp", "w=7000&fm=png"} {
			if _, err := p.Process(t.Context(), src, mustParse(t, q), Accepts{}); prism.AsError(err).Code != prism.CodeUndecodable {
				t.Errorf("%.20q?%s: err = %v, want 415 undecodable_image", src, q, err)
			}
		}
	}
	// Frames count towards the pixel limit.
	cfg := DefaultConfig
	cfg.MaxSourcePixels = 370 * 285 * 5
	if _, err := NewProcessor(cfg).Process(t.Context(), testutil.ReadTestImage(t, "animated-loop-3.gif"), mustParse(t, "w=10"), Accepts{}); prism.StatusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("10-frame GIF over a 5-frame pixel budget: err = %v, want 422", err)
	}
}

// TestGreyStaysGrey: a grey source keeps one band (two with alpha) in
// formats that store grey, unless padding or flattening brings in a colour,
// and its pixels are those of libvips' own thumbnail of it.
func TestGreyStaysGrey(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	tests := []struct {
		file, query string
		bands       int
		maxDiff     float64 // mean, from the lossless thumbnail
	}{
		// A scan of text: libvips' thumbnail scales both axes alike, Prism
		// each to whole pixels, which moves edges by a fraction of a pixel.
		{"50020484-00001.png", "w=400", 1, 4},
		{"50020484-00001.png", "w=400&fm=jpeg", 1, 6},
		{"16-bit-grey-alpha.png", "w=50", 2, 1},              // through its grey profile
		{"50020484-00001.png", "lb=500,500&bg=ff0000", 3, 0}, // padded
		{"16-bit-grey-alpha.png", "w=50&fm=jpeg", 3, 0},      // flattened
		{"320x240.jpg", "w=100&fm=png", 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file+"?"+tt.query, func(t *testing.T) {
			_, d := process(t, p, tt.file, tt.query, Accepts{})
			if d.Bands != tt.bands {
				t.Fatalf("%d bands (%v), want %d", d.Bands, d.Interpretation, tt.bands)
			}
			if tt.bands > 2 {
				return
			}
			if d.Interpretation != vips.InterpretationBW || d.Image.BandFormat() != vips.BandFormatUchar {
				t.Errorf("%v, format %v: want 8-bit b-w", d.Interpretation, d.Image.BandFormat())
			}
			ref, err := vips.NewThumbnailWithSizeFromBuffer(testutil.ReadTestImage(t, tt.file), d.Width, d.Height, vips.InterestingNone, vips.SizeDown)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			if ref.BandFormat() != vips.BandFormatUchar {
				if err := ref.ToColorSpace(vips.InterpretationBW); err != nil {
					t.Fatal(err)
				}
			}
			png, _, err := ref.ExportPng(vips.NewPngExportParams())
			if err != nil {
				t.Fatal(err)
			}
			if diff := meanDiff(t, d, testutil.DecodeImage(t, png)); diff > tt.maxDiff {
				t.Errorf("mean difference %.1f from libvips' thumbnail", diff)
			}
		})
	}
}

// TestPaletteKept: a palette source copied without resampling stays a
// palette PNG, with exactly its pixels; resampled, it is written in full.
func TestPaletteKept(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	src, err := vips.LoadImageFromBuffer(testutil.ReadTestImage(t, "with-alpha.png"), nil)
	if err != nil {
		t.Fatal(err)
	}
	palettePNG, _, err := src.ExportPng(&vips.PngExportParams{Palette: true, Quality: 100, Compression: 6})
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		src     []byte
		query   string
		palette bool
	}{
		{"palette PNG, cropped", palettePNG, "crop=10px,20px,100px,80px&fm=png", true},
		{"palette PNG, same size", palettePNG, "w=256", true},
		{"palette PNG, resized", palettePNG, "w=100", false},
		{"palette PNG, padded", palettePNG, "lb=300,300", false},
		{"GIF to PNG", testutil.ReadTestImage(t, "rotating-squares.gif"), "fm=png", true},
		{"RGBA PNG", testutil.ReadTestImage(t, "with-alpha.png"), "crop=10px,20px,100px,80px", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := mustParse(t, tt.query)
			v, err := p.Process(t.Context(), tt.src, o, Accepts{})
			if err != nil {
				t.Fatal(err)
			}
			d := testutil.DecodeImage(t, v.Data)
			if got := d.HasField("palette-bit-depth"); got != tt.palette {
				t.Fatalf("palette = %v, want %v", got, tt.palette)
			}
			if !tt.palette {
				return
			}
			// The same pixels as the source's, wherever they are seen.
			want, err := vips.LoadImageFromBuffer(tt.src, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer want.Close()
			x, y := 0, 0
			if o.Crop != nil {
				x, y = 10, 20
			}
			for py := 0; py < d.Height; py += 7 {
				for px := 0; px < d.Width; px += 7 {
					got, exp := d.Pixel(t, px, py), pixel(t, want, x+px, y+py)
					if len(got) != len(exp) {
						t.Fatalf("%d bands, the source %d", len(got), len(exp))
					}
					if got[len(got)-1] == 0 && exp[len(exp)-1] == 0 {
						continue // transparent: its colour is not seen
					}
					for i := range got {
						if got[i] != exp[i] {
							t.Fatalf("pixel %d,%d is %v, the source's %v", px, py, got, exp)
						}
					}
				}
			}
		})
	}
}

func pixel(t *testing.T, img *vips.ImageRef, x, y int) []float64 {
	t.Helper()
	p, err := img.GetPoint(x, y)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestShrinkOnLoadGeometry: a JPEG shrunk on load puts every feature where
// the source has it, out to its far edge. libvips drops a shrunk JPEG's
// partial last block of pixels; stretching what is left over the whole
// source would move a feature near the right edge by almost half a pixel.
func TestShrinkOnLoadGeometry(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	for _, tt := range []struct {
		width, barX, outW int // source width, a dark bar's first column (16 wide), output width
	}{
		{1029, 960, 100}, // 1/8: 128.6 blocks
		{1029, 960, 200}, // 1/4: 257.25
		{1023, 900, 300}, // 1/2: 511.5
		{1031, 40, 100},  // near the left edge
	} {
		t.Run(fmt.Sprintf("%d→%d bar at %d", tt.width, tt.outW, tt.barX), func(t *testing.T) {
			img, err := vips.Black(tt.width, 64)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if err := img.Linear([]float64{1}, []float64{255}); err != nil {
				t.Fatal(err)
			}
			if err := img.Cast(vips.BandFormatUchar); err != nil {
				t.Fatal(err)
			}
			if err := img.DrawRect(vips.ColorRGBA{}, tt.barX, 0, 16, 64, true); err != nil {
				t.Fatal(err)
			}
			src, _, err := img.ExportJpeg(&vips.JpegExportParams{Quality: 100})
			if err != nil {
				t.Fatal(err)
			}
			v, err := p.Process(t.Context(), src, mustParse(t, fmt.Sprintf("w=%d&fm=png", tt.outW)), Accepts{})
			if err != nil {
				t.Fatal(err)
			}
			d := testutil.DecodeImage(t, v.Data)
			// The bar's centre: the centroid of darkness along a row.
			var mass, moment float64
			for x := range d.Width {
				dark := 255 - d.Pixel(t, x, d.Height/2)[0]
				mass += dark
				moment += dark * (float64(x) + 0.5)
			}
			// libjpeg's scaled decode and libvips' resize place it within
			// a fifth of a pixel; a stretch moves it by up to half.
			want := (float64(tt.barX) + 8) * float64(tt.outW) / float64(tt.width)
			if got := moment / mass; math.Abs(got-want) > 0.25 {
				t.Errorf("the bar's centre is at %.2f, the source puts it at %.2f", got, want)
			}
		})
	}
}
