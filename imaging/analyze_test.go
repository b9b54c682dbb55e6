package imaging

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"

	"github.com/buckket/go-blurhash"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/internal/testutil"
)

func TestAnalyze(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	hex := regexp.MustCompile(`^#[0-9a-f]{6}$`)
	tests := []struct {
		file          string
		format        Format
		width, height int
		frames        int
		orientation   int
		alpha         bool
		colorSpace    string
		transparent   bool // mostly transparent: no dominant colour
	}{
		{"320x240.jpg", JPEG, 320, 240, 1, 1, false, "srgb", false},
		{"Landscape_6.jpg", JPEG, 600, 450, 1, 6, false, "srgb", false},
		{"Portrait_2.jpg", JPEG, 450, 600, 1, 2, false, "srgb", false},
		{"Channel_digital_image_CMYK_color.jpg", JPEG, 500, 333, 1, 1, false, "cmyk", false},
		{"Flag_of_the_Netherlands-16bit.png", PNG, 900, 600, 1, 1, false, "rgb16", false},
		{"16-bit-grey-alpha.png", PNG, 109, 96, 1, 1, true, "grey16", true},
		{"with-alpha.png", PNG, 256, 192, 1, 1, true, "srgb", false},
		{"animated-loop-3.gif", GIF, 370, 285, 10, 1, true, "srgb", false},
		{"rotating-squares.webp", WebP, 80, 80, 9, 1, true, "srgb", false},
		{"pitm.avif", AVIF, 4096, 800, 1, 1, false, "srgb", false},
		{"320x240.heic", HEIC, 320, 240, 1, 1, false, "srgb", false},
		{"G31D.TIF", TIFF, 2464, 3248, 1, 1, false, "b-w", false},
		{"check.svg", SVG, 100, 100, 1, 1, true, "srgb", false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			a, err := p.Analyze(t.Context(), testutil.ReadTestImage(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			h := a.Header
			if h.Format != tt.format || h.Width != tt.width || h.Height != tt.height || h.Frames != tt.frames ||
				h.Orientation != tt.orientation || h.HasAlpha != tt.alpha || h.ColorSpace != tt.colorSpace {
				t.Errorf("header %+v, want %s %dx%d×%d orientation %d alpha %v %s", h,
					tt.format, tt.width, tt.height, tt.frames, tt.orientation, tt.alpha, tt.colorSpace)
			}
			if tt.transparent && a.DominantColor != "" || !tt.transparent && !hex.MatchString(a.DominantColor) {
				t.Errorf("dominant colour %q", a.DominantColor)
			}
			if w, h, err := blurhash.Components(a.BlurHash); err != nil || w != 4 || h != 3 {
				t.Errorf("blurhash %q: %d×%d components, %v", a.BlurHash, w, h, err)
			}
		})
	}
}

func TestDominantColor(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	// The Dutch flag is three equal stripes; red, white or blue must win.
	a, err := p.Analyze(t.Context(), testutil.ReadTestImage(t, "Flag_of_the_Netherlands-16bit.png"))
	if err != nil {
		t.Fatal(err)
	}
	if c := a.DominantColor; c != "#ffffff" && c[1:3] < "a0" && c[5:7] < "60" {
		t.Errorf("flag's dominant colour %s is none of its stripes", c)
	}
	a, err = p.Analyze(t.Context(), testutil.ReadTestImage(t, "full-transparent.png"))
	if err != nil {
		t.Fatal(err)
	}
	if a.DominantColor != "" {
		t.Errorf("a fully transparent image has dominant colour %q", a.DominantColor)
	}
}

func TestAnalyzeRefuses(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	for _, tt := range []struct {
		file   string
		status int
	}{
		{"truncated.jpg", http.StatusUnsupportedMediaType},
		{"truncated.png", http.StatusUnsupportedMediaType},
		{"corrupt-header.jpg", http.StatusUnsupportedMediaType},
		{"giant-image.jpg", http.StatusUnprocessableEntity},
	} {
		if _, err := p.Analyze(t.Context(), testutil.ReadTestImage(t, tt.file)); prism.StatusOf(err) != tt.status {
			t.Errorf("%s: %v, want status %d", tt.file, err, tt.status)
		}
	}
	if _, err := p.Analyze(t.Context(), testutil.LyingJPEG(t, 7000)); prism.AsError(err).Code != prism.CodeUndecodable {
		t.Errorf("a JPEG whose header claims more than its data holds: %v, want 415 undecodable_image", err)
	}
}

// TestTransformAnalysis: what a transform learns of its source, from its
// output when that shows the whole source, else from a small decode, is
// the analysis of the source: the same header, nearly the same dominant
// colour, a BlurHash of the same shape.
func TestTransformAnalysis(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	for _, tt := range []struct{ file, query string }{
		{"pexels-magda-ehlers-5141x3434.jpg", "w=400&quality=80"}, // from the output
		{"pexels-magda-ehlers-5141x3434.jpg", "w=300&fm=avif"},
		{"Landscape_6.jpg", "w=200"},           // oriented
		{"50020484-00001.png", "w=300"},        // grey
		{"with-alpha.png", "w=100&fm=webp"},    // alpha kept
		{"with-alpha.png", "w=100&fm=jpeg"},    // flattened: from the source
		{"320x240.jpg", "crop=0,0,50,50&w=80"}, // cropped: from the source
		{"320x240.jpg", "lb=400,400"},          // padded: from the source
		{"animated-loop-3.gif", "w=100"},       // the first frame
		{"2569067123_aca715a2ee_o.jpg", "resize=300,300&crop_strategy=smart"},
	} {
		t.Run(tt.file+"?"+tt.query, func(t *testing.T) {
			src := testutil.ReadTestImage(t, tt.file)
			want, err := p.Analyze(t.Context(), src)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := p.Prepare(src, mustParse(t, tt.query), Accepts{})
			if err != nil {
				t.Fatal(err)
			}
			out, err := tr.Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			got, err := tr.Analysis(t.Context(), out)
			if err != nil {
				t.Fatal(err)
			}
			if got.Header != want.Header {
				t.Errorf("header %+v, want %+v", got.Header, want.Header)
			}
			if d := colourDistance(t, got.DominantColor, want.DominantColor); d > 24 {
				t.Errorf("dominant colour %s, the source's %s", got.DominantColor, want.DominantColor)
			}
			if w, h, err := blurhash.Components(got.BlurHash); err != nil || w != 4 || h != 3 {
				t.Errorf("blurhash %q: %d×%d components, %v", got.BlurHash, w, h, err)
			}
		})
	}
}

// colourDistance is the largest difference of a channel of two #rrggbb.
func colourDistance(t *testing.T, a, b string) int {
	t.Helper()
	var ca, cb [3]int
	if _, err := fmt.Sscanf(a, "#%02x%02x%02x", &ca[0], &ca[1], &ca[2]); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if _, err := fmt.Sscanf(b, "#%02x%02x%02x", &cb[0], &cb[1], &cb[2]); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	d := 0
	for i := range 3 {
		d = max(d, abs(ca[i]-cb[i]))
	}
	return d
}

// TestPrepareKnown: a transform planned on a known header renders what one
// that probes renders, and refuses a source its header does not describe.
func TestPrepareKnown(t *testing.T) {
	p := NewProcessor(DefaultConfig)
	for _, tt := range []struct {
		file, query string
		lie         func(*Header)
		code        string // the refusal of a lie
	}{
		{"pexels-magda-ehlers-5141x3434.jpg", "w=400", nil, ""},
		{"Landscape_6.jpg", "w=200", nil, ""},
		{"rotating-squares.webp", "w=40", nil, ""},
		{"50020484-00001.png", "w=300", nil, ""},
		{"pexels-magda-ehlers-5141x3434.jpg", "w=400", func(h *Header) { h.Width, h.Height = 800, 600 }, prism.CodeInternal},
		{"320x240.jpg", "w=100", func(h *Header) { h.Width *= 2 }, prism.CodeInternal},
		{"Landscape_6.jpg", "w=200", func(h *Header) { h.Orientation = 1 }, prism.CodeInternal},
		// libvips itself refuses frames that are not there
		{"rotating-squares.gif", "w=40", func(h *Header) { h.Frames = 60 }, prism.CodeUndecodable},
	} {
		t.Run(tt.file+"?"+tt.query, func(t *testing.T) {
			src := testutil.ReadTestImage(t, tt.file)
			h, err := Probe(src)
			if err != nil {
				t.Fatal(err)
			}
			if tt.lie != nil {
				tt.lie(&h)
			}
			tr, err := p.PrepareKnown(src, h, mustParse(t, tt.query), Accepts{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := tr.Run(t.Context())
			if tt.lie != nil {
				if err == nil || prism.AsError(err).Code != tt.code {
					t.Fatalf("a lying header: %v, want %s", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, err := p.Process(t.Context(), src, mustParse(t, tt.query), Accepts{})
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Data) != string(want.Data) {
				t.Errorf("%d bytes, %d when probed", len(got.Data), len(want.Data))
			}
		})
	}
}
