package render

import (
	"image/color"
	"slices"
	"strings"
	"testing"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/catalog"
	"github.com/prism-image/prism/internal/testutil"
)

var (
	redMark  = color.NRGBA{255, 0, 0, 255}
	blueMark = color.NRGBA{0, 0, 255, 255}
	grey     = color.NRGBA{128, 128, 128, 255}
)

// TestWatermarkDependency: a watermark is found and read as any original
// is, its ETag is part of the variant's, and replacing or deleting it
// purges every original drawn with it.
func TestWatermarkDependency(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, Config{})
	for key, c := range map[string]color.NRGBA{"a.png": grey, "b.png": grey} {
		if _, _, err := f.Upload(ctx, key, testutil.DrawPNG(t, 100, 80, testutil.Uniform(c)), catalog.Overwrite); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.Upload(ctx, "logo.png", testutil.DrawPNG(t, 20, 10, testutil.Uniform(redMark)), catalog.Overwrite); err != nil {
		t.Fatal(err)
	}
	marked := options(t, "fm=png&mark=logo.png&mark-pad=0")
	// markColour renders key with the mark and reads the mark's corner.
	markColour := func(key string) (string, [3]float64) {
		t.Helper()
		res, err := f.Variant(ctx, VariantRequest{Key: key, Options: marked})
		if err != nil {
			t.Fatal(err)
		}
		r := testutil.DecodeImage(t, res.Data).Raster(t)
		return res.ETag, r.RGB(0, 95, 75)
	}
	etagRed, got := markColour("a.png")
	if got != [3]float64{255, 0, 0} {
		t.Fatalf("mark corner = %v, want red", got)
	}
	markColour("b.png")
	plain, err := f.Variant(ctx, VariantRequest{Key: "a.png", Options: options(t, "fm=png")})
	if err != nil {
		t.Fatal(err)
	}
	if plain.ETag == etagRed {
		t.Error("the marked and unmarked variants share an ETag")
	}
	f.purged.Take()

	// Replacing the mark purges the originals drawn with it, and their
	// variants' ETags change.
	if _, _, err := f.Upload(ctx, "logo.png", testutil.DrawPNG(t, 20, 10, testutil.Uniform(blueMark)), catalog.Overwrite); err != nil {
		t.Fatal(err)
	}
	purged := f.purged.Take()
	slices.Sort(purged)
	if want := []string{"a.png", "b.png", "logo.png"}; !slices.Equal(purged, want) {
		t.Errorf("purged %q after replacing the mark, want %q", purged, want)
	}
	etagBlue, got := markColour("a.png")
	if got != [3]float64{0, 0, 255} || etagBlue == etagRed {
		t.Errorf("after the replace: corner %v, ETag changed %v; want blue, true", got, etagBlue != etagRed)
	}

	// Deleting it purges them again, and the transform is then a 400 that
	// names mark, not a 404 for the image.
	if err := f.Delete(ctx, "logo.png"); err != nil {
		t.Fatal(err)
	}
	if purged := f.purged.Take(); !slices.Contains(purged, "a.png") {
		t.Errorf("purged %q after deleting the mark, want a.png among them", purged)
	}
	_, err = f.Variant(ctx, VariantRequest{Key: "a.png", Options: marked})
	wantParam(t, "deleted mark", err, 400, "mark")
}

// TestWatermarkRefusals: a mark that is not there, not a key, not an
// image or over the limits names mark; the image it marks is not at fault.
func TestWatermarkRefusals(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, Config{MaxSourceBytes: 4096})
	f.drop(t, "a.png", testutil.DrawPNG(t, 40, 30, testutil.Uniform(grey)))
	f.drop(t, "text.png", []byte("hello, not a PNG"))
	f.drop(t, "big.bin", make([]byte, 8192))
	tests := []struct {
		mark   string
		status int
	}{
		{"nope.png", 400},
		{"text.png", 400},
		{"big.bin", 422},
		{"..%2Fsecret.png", 400},
		{strings.Repeat("k", 1025), 400}, // over storage's key length
	}
	for _, tt := range tests {
		t.Run(tt.mark, func(t *testing.T) {
			_, err := f.Variant(ctx, VariantRequest{Key: "a.png", Options: options(t, "mark="+tt.mark)})
			wantParam(t, tt.mark, err, tt.status, "mark")
		})
	}
	// A missing mark stays a 400 once its miss is remembered.
	_, err := f.Variant(ctx, VariantRequest{Key: "a.png", Options: options(t, "mark=nope.png")})
	wantParam(t, "remembered miss", err, 400, "mark")
	// A refused mark recorded no user: changing it purges itself alone.
	f.purged.Take()
	f.Forget(ctx, "text.png")
	if got := f.purged.Take(); !slices.Equal(got, []string{"text.png"}) {
		t.Errorf("forgetting a refused mark purged %q, want text.png alone", got)
	}
}

func wantParam(t *testing.T, what string, err error, status int, param string) {
	t.Helper()
	if pe := prism.AsError(err); err == nil || pe.Status != status || pe.Param != param {
		t.Fatalf("%s: %v, want a %d naming %s", what, err, status, param)
	}
}

// TestWatermarkChangedBehindPrism: a mark replaced in storage without the
// API is read as it now is, and learnt, so that its new ETag reaches the
// variants drawn after; until then nothing drawn with it is cached.
func TestWatermarkChangedBehindPrism(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, Config{})
	if _, _, err := f.Upload(ctx, "a.png", testutil.DrawPNG(t, 100, 80, testutil.Uniform(grey)), catalog.Overwrite); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Upload(ctx, "logo.png", testutil.DrawPNG(t, 20, 10, testutil.Uniform(redMark)), catalog.Overwrite); err != nil {
		t.Fatal(err)
	}
	render := func(query string) Result {
		t.Helper()
		res, err := f.Variant(ctx, VariantRequest{Key: "a.png", Options: options(t, query)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	old := render("fm=png&mark=logo.png&mark-pad=0")
	f.drop(t, "logo.png", testutil.DrawPNG(t, 20, 10, testutil.Uniform(blueMark)))
	q := "fm=png&w=50&mark=logo.png&mark-pad=0"
	first := render(q)
	if got := testutil.DecodeImage(t, first.Data).Raster(t).RGB(0, 45, 35); got != [3]float64{0, 0, 255} {
		t.Fatalf("mark drawn as %v, want the blue now stored", got)
	}
	waitFor(t, "the changed mark to be learnt", func() bool {
		m, found, _ := f.catalog.Lookup(ctx, "logo.png")
		return found == cache.Hit && m.ETag != "" && render(q).ETag != first.ETag
	})
	again := render(q)
	if cached := render(q); cached.Layer != LayerMemory || cached.ETag != again.ETag {
		t.Errorf("after learning: layer %s, ETag %s then %s; want a memory hit of one ETag", cached.Layer, again.ETag, cached.ETag)
	}
	if again.ETag == old.ETag {
		t.Error("a variant kept the ETag of the mark it no longer shows")
	}
}

// TestWatermarkNotRecordedOnFailure: a render that fails, or a mark refused
// from its cached metadata before anything is read, records no user.
func TestWatermarkNotRecordedOnFailure(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, Config{})
	noisy := testutil.DrawPNG(t, 120, 80, func(x, y int) color.NRGBA { return color.NRGBA{uint8(x * 7), uint8(y * 13), uint8(x * y), 255} })
	f.drop(t, "broken.png", noisy[:len(noisy)/2]) // its header reads, its pixels do not
	if _, _, err := f.Upload(ctx, "logo.png", testutil.DrawPNG(t, 20, 10, testutil.Uniform(redMark)), catalog.Overwrite); err != nil {
		t.Fatal(err)
	}
	_, err := f.Variant(ctx, VariantRequest{Key: "broken.png", Options: options(t, "mark=logo.png")})
	wantCode(t, "a broken source", err, prism.CodeUndecodable)
	f.purged.Take()
	f.Forget(ctx, "logo.png")
	if got := f.purged.Take(); !slices.Equal(got, []string{"logo.png"}) {
		t.Errorf("after a failed render, forgetting the mark purged %q, want logo.png alone", got)
	}

	// An SVG mark whose metadata is cached is refused without a read.
	if _, _, err := f.Upload(ctx, "a.png", testutil.DrawPNG(t, 40, 30, testutil.Uniform(grey)), catalog.Overwrite); err != nil {
		t.Fatal(err)
	}
	f.drop(t, "icon.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>`))
	if _, err := f.Metadata(ctx, "icon.svg"); err != nil {
		t.Fatal(err)
	}
	opens := f.reads.opens.Load()
	_, err = f.Variant(ctx, VariantRequest{Key: "a.png", Options: options(t, "mark=icon.svg")})
	wantParam(t, "an SVG mark", err, 400, "mark")
	if n := f.reads.opens.Load() - opens; n != 0 {
		t.Errorf("%d storage reads to refuse a mark its metadata rules out", n)
	}
}
