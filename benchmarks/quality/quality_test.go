package quality

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/internal/testutil"
)

func TestMain(m *testing.M) {
	imaging.RunSVGRasteriserIfChild()
	if err := imaging.Startup(1); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// flowers is the smoke test's source: 1920×1080, small enough to judge in
// a fraction of a second at 300 px.
var flowers = filepath.Join(testutil.Root(), "testdata", "images", "flowers.jpeg")

// needButteraugli fails, never skips: make test installs the judge, and a
// benchmark that silently stops judging is worse than one that fails.
func needButteraugli(t *testing.T) {
	t.Helper()
	if err := checkButteraugli(); err != nil {
		t.Fatal(err)
	}
}

// checkRow checks the figures every measured row must have; a sane
// encode is under 10 from the reference (the deliberately bad one is not).
func checkRow(t *testing.T, r Row, maxDistance float64) {
	t.Helper()
	if r.Bytes <= 0 || r.Time <= 0 || r.Width != r.Case.Width || r.Height <= 0 {
		t.Errorf("%s: %d bytes in %v at %dx%d", r.label(), r.Bytes, r.Time, r.Width, r.Height)
	}
	if math.IsNaN(r.Distance) || math.IsInf(r.Distance, 0) || r.Distance <= 0 || r.Distance >= maxDistance {
		t.Errorf("%s: butteraugli distance %v, want finite, in (0, %v)", r.label(), r.Distance, maxDistance)
	}
}

func TestEffortsSmoke(t *testing.T) {
	needButteraugli(t)
	cases := []Case{{Name: "flowers", Source: flowers, Width: 300, Format: imaging.AVIF, Quality: 60}}
	rows, err := Efforts(t.Context(), cases, imaging.AVIF, []int{1, 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Effort != 1 || rows[1].Effort != 2 {
		t.Fatalf("got %d rows %+v, want efforts 1 and 2", len(rows), rows)
	}
	for _, r := range rows {
		checkRow(t, r, 10)
	}
	if table := EffortTable(rows); !strings.Contains(table, "| effort 1 | effort 2 |") {
		t.Errorf("EffortTable lacks the per-case columns:\n%s", table)
	}
}

func TestMeasureSmoke(t *testing.T) {
	needButteraugli(t)
	cases := []struct {
		Case
		maxDistance float64
	}{
		{Case{Source: flowers, Width: 300, Format: imaging.JPEG, Quality: 80}, 10},
		{Case{Source: flowers, Width: 300, Format: imaging.JPEG, Quality: 5}, math.Inf(1)}, // deliberately bad
		{Case{Source: flowers, Width: 300, Format: imaging.JPEG, Quality: 90}, 10},
		{Case{Source: flowers, Width: 300, Format: imaging.JPEG, Quality: 80, Thumbnail: true}, 10},
	}
	var cs []Case
	for _, c := range cases {
		cs = append(cs, c.Case)
	}
	rows, err := Measure(t.Context(), imaging.DefaultConfig, cs, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(cases) {
		t.Fatalf("got %d rows, want %d", len(rows), len(cases))
	}
	for i, r := range rows {
		checkRow(t, r, cases[i].maxDistance)
	}
	// The judge must see a deliberately bad encode as worse.
	if q5, q90 := rows[1].Distance, rows[2].Distance; q5 <= q90 {
		t.Errorf("butteraugli: quality 5 at %.3f, quality 90 at %.3f; want quality 5 further from the reference", q5, q90)
	}
	table := QualityTable(rows)
	for _, want := range []string{"| flowers.jpeg w=300 | prism | 300×169 | jpeg | 80 |", "| vips thumbnail |"} {
		if !strings.Contains(table, want) {
			t.Errorf("QualityTable lacks %q:\n%s", want, table)
		}
	}
}

func TestArgumentErrors(t *testing.T) {
	avif := Case{Source: flowers, Width: 300, Format: imaging.AVIF}
	for _, tc := range []struct {
		name    string
		cases   []Case
		format  imaging.Format
		efforts []int
		runs    int
	}{
		{"jpeg has no effort", []Case{{Source: flowers, Width: 300, Format: imaging.JPEG}}, imaging.JPEG, []int{0}, 1},
		{"webp effort 7", []Case{{Source: flowers, Width: 300, Format: imaging.WebP}}, imaging.WebP, []int{7}, 1},
		{"avif effort 0", []Case{{Source: flowers, Width: 300, Format: imaging.AVIF}}, imaging.AVIF, []int{0}, 1},
		{"case in another format", []Case{avif}, imaging.WebP, []int{0}, 1},
		{"no runs", []Case{avif}, imaging.AVIF, []int{0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Efforts(t.Context(), tc.cases, tc.format, tc.efforts, tc.runs); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestLanczos3 checks the reference's resampler against libvips' own
// Lanczos3 where libvips does no box pre-shrink (reductions under 4×, in
// float) and on images whose answer is known.
func TestLanczos3(t *testing.T) {
	pix, w, h, err := decodeRGB(testutil.ReadTestImage(t, "flowers.jpeg"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("same size is the identity", func(t *testing.T) {
		if got := lanczos3(pix, w, h, w, h); string(got) != string(pix) {
			t.Error("resampling to the same size changed pixels")
		}
	})

	t.Run("flat stays flat", func(t *testing.T) {
		flat := []byte(strings.Repeat("\x10\x80\xf0", 97*31))
		for _, size := range [][2]int{{13, 5}, {200, 64}, {1, 1}} {
			got := lanczos3(flat, 97, 31, size[0], size[1])
			if want := strings.Repeat("\x10\x80\xf0", size[0]*size[1]); string(got) != want {
				t.Errorf("flat 97x31 to %v changed value", size)
			}
		}
	})

	t.Run("matches libvips under 4x", func(t *testing.T) {
		img, err := vips.LoadImageFromBuffer(testutil.ReadTestImage(t, "flowers.jpeg"), vips.NewImportParams())
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		const ow, oh = 640, 360 // 3×: vips_resize runs reduce alone
		if err := img.Cast(vips.BandFormatFloat); err != nil {
			t.Fatal(err)
		}
		if err := img.ResizeWithVScale(float64(ow)/float64(w), float64(oh)/float64(h), vips.KernelLanczos3); err != nil {
			t.Fatal(err)
		}
		if err := img.Linear1(1, 0.5); err != nil { // cast truncates: round
			t.Fatal(err)
		}
		if err := img.Cast(vips.BandFormatUchar); err != nil {
			t.Fatal(err)
		}
		want, err := img.ToBytes()
		if err != nil {
			t.Fatal(err)
		}
		got := lanczos3(pix, w, h, ow, oh)
		if len(got) != len(want) {
			t.Fatalf("got %d bytes, libvips %d", len(got), len(want))
		}
		var worst, off int
		for i := range got {
			d := int(got[i]) - int(want[i])
			worst = max(worst, d, -d)
			if d != 0 {
				off++
			}
		}
		// libvips quantises the filter's phase to 1/1024 of a pixel.
		if worst > 1 || off > len(got)/100 {
			t.Errorf("differs from libvips by up to %d in %d of %d values", worst, off, len(got))
		}
	})
}

func TestTables(t *testing.T) {
	ms := time.Millisecond
	rows := []Row{
		{Case: Case{Name: "photo", Source: "a.jpg", Width: 400, Format: imaging.WebP, Quality: 80}, Effort: 0, Width: 400, Height: 267, Bytes: 1000, Time: 10 * ms, Distance: 1.5},
		{Case: Case{Name: "photo", Source: "a.jpg", Width: 400, Format: imaging.WebP, Quality: 80}, Effort: 4, Width: 400, Height: 267, Bytes: 900, Time: 20 * ms, Distance: 1.25},
		{Case: Case{Name: "grey", Source: "b.png", Width: 400, Format: imaging.PNG}, Width: 400, Height: 295, Bytes: 5000, Time: 5 * ms, Distance: 0.5},
	}
	for _, tc := range []struct {
		name  string
		table string
		want  []string
	}{
		{"effort", EffortTable(rows[:2]), []string{
			"**WEBP effort** at quality 80, 1 case(s)",
			"| 0 | 1000 | +0.0 % | 10.0 | 1.00× | 1.500 | 1.500 |",
			"| 4 | 900 | -10.0 % | 20.0 | 2.00× | 1.250 | 1.250 |",
			"| photo w=400 | 400×267 | 1000 · 10.0 · 1.500 | 900 · 20.0 · 1.250 |",
		}},
		{"identical efforts flagged", EffortTable(append(rows[:2:2], Row{Case: rows[0].Case, Effort: 6, Width: 400, Height: 267, Bytes: 900, Time: 30 * ms, Distance: 1.25})), []string{
			"Efforts 4 and 6 made outputs of the same size and distance in every case",
		}},
		{"quality", QualityTable(rows), []string{
			"| photo w=400 | prism | 400×267 | webp | 80 | 0 | 1000 | 0.07 | 10.0 | 1.500 |",
			"| grey w=400 | prism | 400×295 | png | lossless | — | 5000 | 0.34 | 5.00 | 0.500 |",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, w := range tc.want {
				if !strings.Contains(tc.table, w) {
					t.Errorf("lacks %q:\n%s", w, tc.table)
				}
			}
		})
	}
}

// TestButteraugliError checks that a refusal carries butteraugli's own
// words.
func TestButteraugliError(t *testing.T) {
	needButteraugli(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	if err := writePNG(a, make([]byte, 8*8*3), 8, 8); err != nil {
		t.Fatal(err)
	}
	if err := writePNG(b, make([]byte, 16*8*3), 16, 8); err != nil {
		t.Fatal(err)
	}
	_, err := runButteraugli(t.Context(), a, b)
	if err == nil || !strings.Contains(err.Error(), "not equal in size") {
		t.Errorf("got %v, want butteraugli's complaint about the sizes", err)
	}
}

// TestJudgeSmoke: bytes made elsewhere are judged as Measure judges its
// own: the same output, the same distance.
func TestJudgeSmoke(t *testing.T) {
	needButteraugli(t)
	c := Case{Name: "flowers", Source: flowers, Width: 300, Format: imaging.JPEG, Quality: 80}
	want, err := Measure(t.Context(), imaging.DefaultConfig, []Case{c}, 1)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(flowers)
	if err != nil {
		t.Fatal(err)
	}
	out, _, _, err := run(t.Context(), imaging.NewProcessor(imaging.DefaultConfig), src, want[0].Case)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Judge(t.Context(), "elsewhere", []Case{c}, [][]byte{out})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Server != "elsewhere" || got[0].Bytes != want[0].Bytes || got[0].Width != 300 ||
		got[0].Distance != want[0].Distance || got[0].Time != 0 {
		t.Errorf("judged %+v, measured %+v", got, want)
	}
	if !strings.Contains(QualityTable(got), "| elsewhere (HTTP) |") {
		t.Errorf("the table does not name the server:\n%s", QualityTable(got))
	}
	if _, err := Judge(t.Context(), "elsewhere", []Case{c}, [][]byte{[]byte("not an image")}); err == nil {
		t.Error("judged bytes that are no image")
	}
}
