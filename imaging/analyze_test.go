package imaging

import (
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
