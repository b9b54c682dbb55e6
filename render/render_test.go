package render

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/catalog"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/internal/testutil"
	"github.com/prism-image/prism/storage"
)

func TestMain(m *testing.M) {
	imaging.RunSVGRasteriserIfChild()
	if err := imaging.Startup(1); err != nil {
		panic(err)
	}
	testutil.StartVips() // a no-op start: libvips is already up
	os.Exit(m.Run())
}

// fixture is a Renderer over real stores in temporary folders.
type fixture struct {
	*Renderer
	store   *storage.File
	reads   *countingStore // the originals, as the catalog reads them
	derived *cache.Derived
	catalog *catalog.Catalog
	purged  *testutil.Invalidations // every key the catalog invalidated
}

// countingStore counts what is asked of the originals' storage.
type countingStore struct {
	storage.Storage
	opens, stats atomic.Int64
}

func (c *countingStore) Open(ctx context.Context, key string) (storage.Object, error) {
	c.opens.Add(1)
	return c.Storage.Open(ctx, key)
}

func (c *countingStore) Stat(ctx context.Context, key string) (storage.Info, error) {
	c.stats.Add(1)
	return c.Storage.Stat(ctx, key)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	store, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dstore, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	derived := cache.NewDerived(dstore, nil, quiet, nil)
	// Its queued writes end before its folder is removed (cleanups run in
	// reverse) and after the renderer stops (registered in newFixtureOn).
	t.Cleanup(derived.Close)
	return newFixtureOn(t, cfg, store, derived)
}

// newFixtureOn is a fixture over given stores: a second process, say,
// sharing the first one's originals and derived store.
func newFixtureOn(t *testing.T, cfg Config, store *storage.File, derived *cache.Derived) *fixture {
	t.Helper()
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	if cfg.Queue == 0 {
		cfg.Queue = 16
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxSourceBytes == 0 {
		cfg.MaxSourceBytes = 50 << 20
	}
	if cfg.MemoryBudget == 0 {
		cfg.MemoryBudget = 512 << 20
	}
	variants := cache.NewVariants(64<<20, nil)
	reads := &countingStore{Storage: store}
	purged := &testutil.Invalidations{}
	cat := catalog.New(reads, cache.NewMemory(1000, cache.Options{}),
		catalog.Config{StorageTimeout: 5 * time.Second, FailureTTL: time.Minute, Marks: cache.NewMarkMemory(0)},
		variants, derived, purged)
	r := New(cfg, cat, imaging.NewProcessor(imaging.DefaultConfig), variants, derived, quiet)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r.Close(ctx)
		cat.Close()
	})
	return &fixture{Renderer: r, store: store, reads: reads, derived: derived, catalog: cat, purged: purged}
}

// drop stores data at key behind Prism's back, as a direct S3 upload does.
func (f *fixture) drop(t *testing.T, key string, data []byte) storage.Info {
	t.Helper()
	info, err := f.store.Put(t.Context(), key, data, storage.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func options(t *testing.T, query string) imaging.Options {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	o, err := imaging.ParseOptions(q)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if err == nil || prism.AsError(err).Code != code {
		t.Fatalf("%s: %v, want code %s", what, err, code)
	}
}

// Each cache layer answers before the next is asked, and says so.
func TestCacheLayers(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, Config{})
	if _, _, err := f.Upload(ctx, "a/cat.jpg", testutil.ReadTestImage(t, "concert.jpg"), catalog.Overwrite); err != nil {
		t.Fatal(err)
	}
	req := VariantRequest{Key: "a/cat.jpg", Options: options(t, "w=100&fm=webp")}
	var etag string
	steps := []struct {
		name   string
		r      *fixture
		fresh  bool
		layer  Layer
		worked int64 // work admitted by this step
	}{
		{"rendered", f, false, LayerMiss, 1},
		{"from memory", f, false, LayerMemory, 0},
		{"known to the client", f, true, LayerMetadata, 0},
		// A second process sharing the stores: its memory is empty, the
		// derived store holds the variant (its write is asynchronous).
		{"from the derived store", newFixtureOn(t, Config{}, f.store, f.derived), false, LayerDerived, 0},
	}
	for _, step := range steps {
		if step.layer == LayerDerived {
			waitFor(t, "the derived store's write", func() bool {
				_, ok := f.derived.Get(ctx, cache.VariantKey{Source: "a/cat.jpg", ID: etag})
				return ok
			})
			// The other process knows the original through its own
			// catalog: the upload went through the first.
			if _, err := step.r.Metadata(ctx, "a/cat.jpg"); err != nil {
				t.Fatal(err)
			}
		}
		before := step.r.worked.Load()
		req.Fresh = func(e string) bool { return step.fresh && e == etag }
		res, err := step.r.Variant(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if res.Layer != step.layer || step.r.worked.Load()-before != step.worked {
			t.Errorf("%s: layer %s after %d pieces of work, want %s after %d", step.name, res.Layer, step.r.worked.Load()-before, step.layer, step.worked)
		}
		if etag == "" {
			etag = res.ETag
		}
		if res.ETag != etag || res.VariantKey != (cache.VariantKey{Source: "a/cat.jpg", ID: etag}) {
			t.Errorf("%s: ETag %s, key %v; want %s", step.name, res.ETag, res.VariantKey, etag)
		}
		if step.fresh {
			if !res.NotModified || res.Data != nil {
				t.Errorf("%s: not a 304: %+v", step.name, res)
			}
			continue
		}
		d := testutil.DecodeImage(t, res.Data)
		if d.Format != "webp" || d.Width != 100 || d.Height != 67 || res.ContentType != "image/webp" {
			t.Errorf("%s: %s %dx%d (%s)", step.name, d.Format, d.Width, d.Height, res.ContentType)
		}
	}
}

// An original that reached storage without the API is learnt by its first
// render, which reads it once: storage is asked its identity before (to
// name the variant) and after (so that a replace that landed meanwhile is
// not described by stale metadata), and it is known from then on. A
// missing key is remembered as missing.
func TestUnknownAndMissingOriginals(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, Config{})
	for _, c := range []struct{ key, file, query, format string }{
		{"dropped.gif", "animated-loop-3.gif", "w=100", "gif"},
		{"dropped.jpg", "2569067123_aca715a2ee_o.jpg", "w=300&fm=webp", "webp"},        // placeholders from the output
		{"cropped.jpg", "2569067123_aca715a2ee_o.jpg", "crop=0,0,50,50&w=300", "jpeg"}, // from the source
	} {
		src := testutil.ReadTestImage(t, c.file)
		info := f.drop(t, c.key, src)
		opens, stats := f.reads.opens.Load(), f.reads.stats.Load()
		res, err := f.Variant(ctx, VariantRequest{Key: c.key, Options: options(t, c.query)})
		if err != nil || res.Layer != LayerMiss {
			t.Fatalf("%s: first use: %v %v", c.key, res.Layer, err)
		}
		if d := testutil.DecodeImage(t, res.Data); d.Format != c.format {
			t.Errorf("%s: variant is %s", c.key, d.Format)
		}
		m, found, _ := f.catalog.Lookup(ctx, c.key)
		want, err := f.proc.Analyze(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		if found != cache.Hit || m.ETag != info.ETag || m.Width != want.Width || m.Height != want.Height ||
			m.Frames != want.Frames || m.Format != string(want.Format) || m.BlurHash == "" || m.DominantColor == "" {
			t.Errorf("%s: metadata after the first render: %v %+v", c.key, found, m)
		}
		if o, s := f.reads.opens.Load()-opens, f.reads.stats.Load()-stats; o != 1 || s != 2 {
			t.Errorf("%s: storage opened %d times and asked %d times, want 1 and 2", c.key, o, s)
		}
	}

	for i, want := range []Layer{"", LayerMissing} {
		res, err := f.Variant(ctx, VariantRequest{Key: "none.jpg", Options: options(t, "w=100")})
		wantCode(t, "missing key", err, prism.CodeNotFound)
		if res.Layer != want {
			t.Errorf("request %d for a missing key: layer %q, want %q", i, res.Layer, want)
		}
	}
	st, err := f.Original(ctx, "none.jpg", nil)
	wantCode(t, "missing original", err, prism.CodeNotFound)
	if st.Layer != LayerMissing {
		t.Errorf("original of a missing key: layer %q", st.Layer)
	}
}

// An original is served as what its bytes are, whatever its key says: a
// file that is both SVG and JavaScript stored as .js is an SVG (sandboxed),
// and bytes that are no image Prism reads are a download.
func TestOriginal(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, Config{})
	jpeg := testutil.ReadTestImage(t, "concert.jpg")
	tests := []struct {
		key         string
		data        []byte
		contentType string
		scriptable  bool
		download    bool
	}{
		{"a/check.svg", testutil.ReadTestImage(t, "check.svg"), "image/svg+xml", true, false},
		{"gadget/poly.js", testutil.PolyglotSVG(), "image/svg+xml", true, false},
		{"photo.png", jpeg, "image/jpeg", false, false},
		{"photo", jpeg, "image/jpeg", false, false},
		{"notes.txt", []byte("hello"), "application/octet-stream", true, true},
		{"page.html", []byte("<html><body><svg></svg><script>alert(1)</script></body></html>"), "application/octet-stream", true, true},
		{"empty.jpg", nil, "application/octet-stream", true, true},
	}
	for _, tt := range tests {
		info := f.drop(t, tt.key, tt.data)
		st, err := f.Original(ctx, tt.key, func(string) bool { return false })
		if err != nil {
			t.Fatalf("%s: %v", tt.key, err)
		}
		data, _ := io.ReadAll(st.Object)
		st.Object.Close()
		if st.Layer != LayerOriginal || st.ContentType != tt.contentType || st.Scriptable != tt.scriptable || st.Download != tt.download ||
			st.ETag != info.ETag || string(data) != string(tt.data) {
			t.Errorf("%s: %+v, %d bytes", tt.key, st, len(data))
		}
	}

	m, _, err := f.Upload(ctx, "b/check.svg", testutil.ReadTestImage(t, "check.svg"), catalog.Overwrite)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Original(ctx, "b/check.svg", func(e string) bool { return e == m.ETag })
	if err != nil || !st.NotModified || st.Object != nil || st.Layer != LayerMetadata {
		t.Errorf("a revalidation: %+v %v", st, err)
	}
}

// Identical work runs once, under a context of its own: a caller that
// gives up does not fail the others.
func TestMerging(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, Config{})
	if _, _, err := f.Upload(ctx, "photo.jpg", testutil.ReadTestImage(t, "2569067123_aca715a2ee_o.jpg"), catalog.Overwrite); err != nil {
		t.Fatal(err)
	}
	before := f.worked.Load()
	req := VariantRequest{Key: "photo.jpg", Options: options(t, "w=1200&fm=avif")}

	// The first caller leaves almost at once: whether or not it is the
	// one that started the work, the others must not fail with it.
	impatient, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	first := make(chan error, 1)
	go func() { _, err := f.Variant(impatient, req); first <- err }()
	time.Sleep(5 * time.Millisecond)

	var wg sync.WaitGroup
	results := make([]Result, 6)
	errs := make([]error, 6)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = f.Variant(ctx, req) })
	}
	wg.Wait()
	wantCode(t, "the caller that left", <-first, prism.CodeUnavailable)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if results[i].ETag != results[0].ETag || len(results[i].Data) != len(results[0].Data) {
			t.Errorf("caller %d got another variant", i)
		}
	}
	if d := testutil.DecodeImage(t, results[0].Data); d.Format != "avif" || d.Width != 1200 {
		t.Errorf("variant: %s %dx%d", d.Format, d.Width, d.Height)
	}
	if n := f.worked.Load() - before; n != 1 {
		t.Errorf("%d pieces of work for 7 identical requests, want 1", n)
	}

	// Four metadata requests for an unknown original: one analysis.
	f.drop(t, "bomb.gif", testutil.BombGIF(t, 3000))
	before = f.worked.Load()
	metas := make([]prism.Metadata, 4)
	for i := range metas {
		wg.Go(func() { metas[i], errs[i] = f.Metadata(ctx, "bomb.gif") })
	}
	wg.Wait()
	for i := range metas {
		if errs[i] != nil || metas[i].Width != 3000 || metas[i].Format != "gif" {
			t.Errorf("metadata %d: %+v %v", i, metas[i], errs[i])
		}
	}
	if n := f.worked.Load() - before; n != 1 {
		t.Errorf("%d analyses for 4 identical requests, want 1", n)
	}
}

// The gate runs at most Workers pieces of work, queues at most Queue, and
// refuses the rest at once.
func TestGate(t *testing.T) {
	g := newGate(1, 1, 1<<30)
	release := make(chan struct{})
	running := make(chan struct{})
	done := make(chan error, 2)
	go func() { done <- g.do(context.Background(), func() { close(running); <-release }) }()
	<-running
	go func() { done <- g.do(context.Background(), func() {}) }() // queued
	waitFor(t, "the second to queue", func() bool { return g.inside.Load() == 2 })

	start := time.Now()
	wantCode(t, "over the queue", g.do(context.Background(), func() { t.Error("ran over the queue") }), prism.CodeBusy)
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("a full queue took %v to refuse", took)
	}

	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if !g.idle() {
		t.Error("not idle after the work")
	}

	// A wait that outlives its context is a 503.
	g = newGate(1, 4, 1<<30)
	block, taken := make(chan struct{}), make(chan struct{})
	go func() { _ = g.do(context.Background(), func() { close(taken); <-block }) }()
	<-taken
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	wantCode(t, "a wait past the deadline", g.do(ctx, func() { t.Error("ran after its deadline") }), prism.CodeUnavailable)
	close(block)
}

// Work reserves its memory from the budget: what does not fit waits, and
// work over the whole budget runs alone.
func TestMemoryBudget(t *testing.T) {
	g := newGate(4, 4, 100)
	held, err := g.reserve(t.Context(), 80)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 2)
	go func() { r, _ := g.reserve(context.Background(), 50); got <- r }()
	go func() { r, _ := g.reserve(context.Background(), 1000); got <- r }() // the whole budget
	select {
	case <-got:
		t.Fatal("a reservation beyond the budget went through")
	case <-time.After(50 * time.Millisecond):
	}
	held()
	first := <-got
	select {
	case <-got:
		t.Fatal("two reservations that do not fit together both went through")
	case <-time.After(50 * time.Millisecond):
	}
	first()
	(<-got)()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	all, _ := g.reserve(t.Context(), 100)
	_, err = g.reserve(ctx, 1)
	wantCode(t, "a reservation past its deadline", err, prism.CodeUnavailable)
	all()
}

// Work bounded before it starts: outputs over the pixel limit, and SVGs
// drawn at the size the output needs. Known originals (uploaded) are
// refused from their metadata, before any work; others from their header.
// A refusal that depends on the options (an SVG drawn too large) is not
// remembered as the original's failure.
func TestBounds(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, Config{})
	files := map[string][]byte{
		"dot.png":    testutil.TinyPNG(t),
		"frames.gif": testutil.TinyFramesGIF(t, 100),
		"blur.svg":   testutil.BlurSVG(7000, 2),
	}
	for name, data := range files {
		f.drop(t, "dropped/"+name, data)
		if _, _, err := f.Upload(ctx, "known/"+name, data, catalog.Overwrite); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		key, query    string
		code          string // "" for success
		width, height int
	}{
		{"dot.png", "lb=8192,8192&fm=avif", prism.CodeOutputTooLarge, 0, 0},
		{"dot.png", "lb=8192,8192&fm=gif", prism.CodeOutputTooLarge, 0, 0},
		{"dot.png", "lb=8192,8192&fm=webp", prism.CodeOutputTooLarge, 0, 0},
		{"dot.png", "lb=8192,8192&fm=jpeg", prism.CodeOutputTooLarge, 0, 0},
		{"dot.png", "lb=8192,8192&fm=png", prism.CodeOutputTooLarge, 0, 0},
		{"dot.png", "lb=300,200&fm=png", "", 300, 200},
		{"frames.gif", "lb=2048,2048", prism.CodeOutputTooLarge, 0, 0},
		{"frames.gif", "lb=8192,8192&fm=webp", prism.CodeOutputTooLarge, 0, 0},
		{"frames.gif", "lb=100,100", "", 100, 100},
		{"blur.svg", "fm=png", prism.CodeTooLarge, 0, 0}, // drawn at 7000×7000
		{"blur.svg", "w=64", "", 64, 64},
		{"blur.svg", "w=1900", "", 1900, 1900},
	}
	for _, dir := range []string{"known/", "dropped/"} {
		for _, tt := range tests {
			what := dir + tt.key + "?" + tt.query
			before := f.worked.Load()
			res, err := f.Variant(ctx, VariantRequest{Key: dir + tt.key, Options: options(t, tt.query)})
			switch {
			case tt.code != "":
				wantCode(t, what, err, tt.code)
				if dir == "known/" && f.worked.Load() != before {
					t.Errorf("%s: refused after work began, not from the metadata", what)
				}
			case err != nil:
				t.Errorf("%s: %v", what, err)
			default:
				if d := testutil.DecodeImage(t, res.Data); d.Width != tt.width || d.Height != tt.height {
					t.Errorf("%s: %dx%d, want %dx%d", what, d.Width, d.Height, tt.width, tt.height)
				}
			}
		}
	}
}

// slowRender is a render of several seconds that libvips can stop at any
// tile: the 17.6 MP photo letterboxed to 48 MP and written as PNG.
const slowRender = "lb=8000,6000&fm=png"

// When the deadline passes, the work stops: the answer is a 503, the work
// returns at once and the CPU is idle. libvips stops at its next tile; an
// SVG, drawn in one call that nothing interrupts, has its process killed.
func TestDeadlineStopsWork(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, Config{Timeout: 500 * time.Millisecond})
	f.drop(t, "photo.jpg", testutil.ReadTestImage(t, "pexels-magda-ehlers-5141x3434.jpg"))
	f.drop(t, "blurs.svg", testutil.BlurSVG(1900, 60)) // within the SVG pixel limit; minutes of librsvg
	for _, tt := range []struct{ key, query string }{
		{"photo.jpg", slowRender},
		{"blurs.svg", "fm=png"},
	} {
		start := time.Now()
		_, err := f.Variant(ctx, VariantRequest{Key: tt.key, Options: options(t, tt.query)})
		wantCode(t, tt.key+": a render past its deadline", err, prism.CodeUnavailable)
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s: the 503 took %v", tt.key, took)
		}
		stopping := time.Now()
		waitFor(t, "the work to stop", func() bool { return f.gate.idle() })
		if took := time.Since(stopping); took > 500*time.Millisecond {
			t.Errorf("%s: the work went on for %v after the 503", tt.key, took)
		}
		if cpu := cpuDuring(time.Second); cpu > 200*time.Millisecond {
			t.Errorf("%s: %v of CPU in the second after the work stopped", tt.key, cpu)
		}
	}
}

// Close lets work finish within its context, then stops it; nothing runs
// after it returns, and later work is refused.
func TestClose(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, Config{})
	f.drop(t, "photo.jpg", testutil.ReadTestImage(t, "pexels-magda-ehlers-5141x3434.jpg"))
	failed := make(chan error, 1)
	go func() {
		_, err := f.Variant(ctx, VariantRequest{Key: "photo.jpg", Options: options(t, slowRender)})
		failed <- err
	}()
	waitFor(t, "the render to start", func() bool { return !f.gate.idle() })
	grace, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	f.Close(grace)
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v", took)
	}
	if !f.gate.idle() {
		t.Error("work runs after Close returned")
	}
	wantCode(t, "the render stopped by Close", <-failed, prism.CodeUnavailable)
	_, err := f.Variant(ctx, VariantRequest{Key: "photo.jpg", Options: options(t, "w=10")})
	wantCode(t, "work after Close", err, prism.CodeUnavailable)
}

// Analysis failures are remembered: a broken original is decoded once.
func TestFailuresRemembered(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, Config{})
	f.drop(t, "broken.jpg", testutil.ReadTestImage(t, "truncated.jpg"))
	before := f.worked.Load()
	for i := range 3 {
		_, err := f.Metadata(ctx, "broken.jpg")
		wantCode(t, "metadata of a broken file", err, prism.CodeUndecodable)
		_, err = f.Variant(ctx, VariantRequest{Key: "broken.jpg", Options: options(t, "w=10")})
		wantCode(t, "variant of a broken file", err, prism.CodeUndecodable)
		if n := f.worked.Load() - before; n != 1 {
			t.Errorf("round %d: %d decodes of a broken file, want 1", i, n)
		}
	}
	// Replacing it through the API forgets the failure.
	if _, _, err := f.Upload(ctx, "broken.jpg", testutil.ReadTestImage(t, "concert.jpg"), catalog.Overwrite); err != nil {
		t.Fatal(err)
	}
	if m, err := f.Metadata(ctx, "broken.jpg"); err != nil || m.Width != 400 {
		t.Errorf("after a replace: %+v %v", m, err)
	}
}

func TestUpload(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, Config{})
	tests := []struct {
		name   string
		data   []byte
		code   string
		format string
	}{
		{"jpeg", testutil.ReadTestImage(t, "concert.jpg"), "", "jpeg"},
		{"svg", testutil.ReadTestImage(t, "check.svg"), "", "svg"},
		{"heic", testutil.ReadTestImage(t, "320x240.heic"), "", "heic"},
		{"tiff", testutil.ReadTestImage(t, "G31D.TIF"), "", "tiff"},
		{"hostile svg", testutil.BlurSVG(7000, 2), "", "svg"}, // analysed at 64 px
		{"bmp", testutil.ReadTestImage(t, "320x240.bmp"), prism.CodeUnsupportedMedia, ""},
		{"jpeg 2000", testutil.ReadTestImage(t, "relax.jp2"), prism.CodeUnsupportedMedia, ""},
		{"text", []byte("<html>hello</html>"), prism.CodeUnsupportedMedia, ""},
		{"truncated", testutil.ReadTestImage(t, "truncated.jpg"), prism.CodeUndecodable, ""},
		{"lying header", testutil.LyingJPEG(t, 7000), prism.CodeUndecodable, ""},
		{"giant", testutil.ReadTestImage(t, "giant-image.jpg"), prism.CodeTooLarge, ""},
	}
	for _, tt := range tests {
		m, created, err := f.Upload(ctx, "up/"+tt.name, tt.data, catalog.Overwrite)
		if tt.code != "" {
			wantCode(t, tt.name, err, tt.code)
			if _, err := f.store.Stat(ctx, "up/"+tt.name); prism.StatusOf(err) != http.StatusNotFound {
				t.Errorf("%s: a refused upload was stored: %v", tt.name, err)
			}
			continue
		}
		if err != nil || !created || m.Format != tt.format || m.Bytes != int64(len(tt.data)) {
			t.Errorf("%s: %+v created=%v %v", tt.name, m, created, err)
		}
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// cpuDuring is the CPU time this process uses in the next d.
func cpuDuring(d time.Duration) time.Duration {
	used := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before := used()
	time.Sleep(d)
	return used() - before
}

// A sniffed original reads as the object it wraps, whatever the seeks.
func TestReplayedHead(t *testing.T) {
	f := newFixture(t, Config{})
	data := testutil.ReadTestImage(t, "concert.jpg")
	f.drop(t, "r.jpg", data)
	for _, steps := range [][]struct{ seek, n int64 }{
		{{0, -1}},
		{{10, 100}, {2000, 50}, {0, 20}, {5000, -1}},
		{{0, 1024}, {1024, 10}},
		{{1020, 10}, {-1, -1}},
	} {
		obj, err := f.catalog.Open(t.Context(), "r.jpg")
		if err != nil {
			t.Fatal(err)
		}
		_, r, err := sniff(obj)
		if err != nil {
			t.Fatal(err)
		}
		pos := int64(0)
		for _, st := range steps {
			if st.seek >= 0 {
				pos, _ = r.Seek(st.seek, io.SeekStart)
			}
			want := data[pos:]
			if st.n >= 0 {
				want = want[:st.n]
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(r, got); err != nil || string(got) != string(want) {
				t.Fatalf("steps %v: at %d, read %d bytes that differ (%v)", steps, pos, len(got), err)
			}
			pos += int64(len(want))
		}
		obj.Close()
	}
}
