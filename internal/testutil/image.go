package testutil

import (
	"bytes"
	"image"
	"image/gif"
	_ "image/jpeg" // register decoders for the cross-check
	_ "image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"
)

// Decoded describes an image a test received, decoded in full.
type Decoded struct {
	Format         string // jpeg, png, webp, avif, gif, or "unknown"
	Width, Height  int    // one frame
	Frames         int
	Bands          int
	HasAlpha       bool
	Interpretation vips.Interpretation
	Fields         []string // metadata fields libvips found (exif-data, icc-profile-data…)
	Image          *vips.ImageRef
}

// HasField reports whether the decoded image carries the metadata field
// (or any field starting with prefix, e.g. "exif-").
func (d Decoded) HasField(prefix string) bool {
	for _, f := range d.Fields {
		if strings.HasPrefix(f, prefix) {
			return true
		}
	}
	return false
}

// Pixel returns the band values at (x, y) of the first frame.
func (d Decoded) Pixel(t testing.TB, x, y int) []float64 {
	t.Helper()
	p, err := d.Image.GetPoint(x, y)
	if err != nil {
		t.Fatalf("reading pixel (%d,%d): %v", x, y, err)
	}
	return p
}

var vipsOnce sync.Once

// StartVips starts libvips for a test binary that decodes images.
func StartVips() {
	vipsOnce.Do(func() {
		vips.LoggingSettings(nil, vips.LogLevelError)
		if err := vips.Startup(&vips.Config{MaxCacheSize: 0, MaxCacheMem: 0, MaxCacheFiles: 0}); err != nil {
			panic(err)
		}
	})
}

var formatNames = map[vips.ImageType]string{
	vips.ImageTypeJPEG: "jpeg", vips.ImageTypePNG: "png", vips.ImageTypeWEBP: "webp",
	vips.ImageTypeAVIF: "avif", vips.ImageTypeGIF: "gif", vips.ImageTypeSVG: "svg",
	vips.ImageTypeTIFF: "tiff", vips.ImageTypeHEIF: "heif",
}

// DecodeImage decodes every pixel of every frame of data and fails the test
// if that is impossible. JPEG, PNG and GIF are also decoded by Go's own
// decoders, so a libvips bug cannot hide behind a libvips check.
func DecodeImage(t testing.TB, data []byte) Decoded {
	t.Helper()
	StartVips()
	format := formatNames[vips.DetermineImageType(data)]
	if format == "" {
		t.Fatalf("response is not an image (%d bytes, starts %q)", len(data), head(data))
	}
	params := vips.NewImportParams()
	params.NumPages.Set(-1) // every frame
	img, err := vips.LoadImageFromReader(bytes.NewReader(data), params)
	if err != nil {
		t.Fatalf("decoding %s: %v", format, err)
	}
	t.Cleanup(img.Close)
	frames := max(1, img.Pages())
	d := Decoded{
		Format: format, Width: img.Width(), Height: img.Height() / frames, Frames: frames,
		Bands: img.Bands(), HasAlpha: img.HasAlpha(), Interpretation: img.Interpretation(),
		Fields: img.ImageFields(), Image: img,
	}
	if img.Height() != d.Height*frames {
		t.Fatalf("%s: height %d is not %d frames of %d", format, img.Height(), frames, d.Height)
	}
	if _, err := img.Average(); err != nil { // forces every pixel through the decoder
		t.Fatalf("decoding %s pixels: %v", format, err)
	}
	crossCheck(t, data, d)
	return d
}

func crossCheck(t testing.TB, data []byte, d Decoded) {
	t.Helper()
	switch d.Format {
	case "gif":
		g, err := gif.DecodeAll(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Go's gif decoder: %v", err)
		}
		if len(g.Image) != d.Frames || g.Config.Width != d.Width || g.Config.Height != d.Height {
			t.Fatalf("Go's gif decoder sees %dx%d with %d frames; libvips %dx%d with %d",
				g.Config.Width, g.Config.Height, len(g.Image), d.Width, d.Height, d.Frames)
		}
	case "jpeg", "png":
		img, _, err := image.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Go's %s decoder: %v", d.Format, err)
		}
		if b := img.Bounds(); b.Dx() != d.Width || b.Dy() != d.Height {
			t.Fatalf("Go's %s decoder sees %dx%d; libvips %dx%d", d.Format, b.Dx(), b.Dy(), d.Width, d.Height)
		}
	}
}

func head(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// Root is the repository root, found from this file's location so tests in
// any package can reach testdata/.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// ReadTestImage returns the bytes of testdata/images/name.
func ReadTestImage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(), "testdata", "images", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// VipsVersion is the version of the libvips the tests run with.
func VipsVersion() string { return vips.Version }
