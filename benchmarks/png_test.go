package benchmarks

import (
	"fmt"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/prism-image/prism/internal/testutil"
)

// BenchmarkPNGSave is how imaging chose its PNG settings: libpng's filter
// and zlib's level against bytes (bytes/op) and time, on a scan of text
// (the grey PNG), a photo and a small graphic with alpha, each first made
// 500 px wide by libvips' thumbnail path and held in memory.
//
//	go test -run '^$' -bench PNGSave ./benchmarks
func BenchmarkPNGSave(b *testing.B) {
	filters := []struct {
		name   string
		filter vips.PngFilter
	}{{"none", vips.PngFilterNone}, {"sub", vips.PngFilterSub}, {"paeth", vips.PngFilterPaeth}, {"all", vips.PngFilterAll}}
	for _, source := range []string{"50020484-00001.png", "2569067123_aca715a2ee_o.jpg", "with-alpha.png"} {
		img := inMemory(b, testutil.ReadTestImage(b, source), 500)
		for _, f := range filters {
			for _, level := range []int{1, 2, 4, 6, 9} {
				b.Run(fmt.Sprintf("%s/%s/%d", source, f.name, level), func(b *testing.B) {
					var out []byte
					for b.Loop() {
						var err error
						out, _, err = img.ExportPng(&vips.PngExportParams{StripMetadata: true, Compression: level, Filter: f.filter})
						if err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(len(out)), "bytes/op")
				})
			}
		}
		img.Close()
	}
}

// inMemory is src made width wide by libvips' thumbnail path, decoded into
// memory so that it can be saved again and again.
func inMemory(b *testing.B, src []byte, width int) *vips.ImageRef {
	b.Helper()
	t, err := vips.NewThumbnailWithSizeFromBuffer(src, width, 10_000_000, vips.InterestingNone, vips.SizeDown)
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	px, err := t.ToBytes()
	if err != nil {
		b.Fatal(err)
	}
	img, err := vips.NewImageFromMemory(px, t.Width(), t.Height(), t.Bands(), vips.BandFormatUchar, t.Interpretation())
	if err != nil {
		b.Fatal(err)
	}
	return img
}
