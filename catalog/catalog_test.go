package catalog

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/internal/testutil"
	"github.com/prism-image/prism/storage"
)

func TestMain(m *testing.M) {
	if err := imaging.Startup(0); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// recorder is an Invalidator that remembers what it was told.
type recorder struct {
	mu   sync.Mutex
	keys []string
}

func (r *recorder) Invalidate(_ context.Context, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, key)
}

func newCatalog(t *testing.T) (*Catalog, *recorder) {
	t.Helper()
	store, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	c := New(store, cache.NewMemory(100, cache.Options{}), imaging.NewProcessor(imaging.DefaultConfig), 50<<20,
		slog.New(slog.NewTextHandler(io.Discard, nil)), rec)
	t.Cleanup(c.Close)
	return c, rec
}

func TestPutReplaceDelete(t *testing.T) {
	ctx := t.Context()
	c, rec := newCatalog(t)
	m, created, err := c.Put(ctx, "a/cat.jpg", testutil.ReadTestImage(t, "concert.jpg"), PutOptions{})
	if err != nil || !created || m.Width != 400 || m.Height != 267 {
		t.Fatalf("first put: %+v created=%v %v", m, created, err)
	}
	if cached, found := c.Lookup(ctx, "a/cat.jpg"); found != cache.Hit || cached != m {
		t.Errorf("lookup after put: %v %+v", found, cached)
	}
	if len(rec.keys) != 0 {
		t.Errorf("a new key invalidated %v", rec.keys)
	}
	m2, created, err := c.Put(ctx, "a/cat.jpg", testutil.ReadTestImage(t, "320x240.jpg"), PutOptions{})
	if err != nil || created || m2.ETag == m.ETag || m2.Width != 320 {
		t.Fatalf("replace: %+v created=%v %v", m2, created, err)
	}
	if info, _ := c.Storage().Stat(ctx, "a/cat.jpg"); info.ETag != m2.ETag {
		t.Errorf("metadata ETag %s, storage %s", m2.ETag, info.ETag)
	}
	if _, _, err := c.Put(ctx, "a/cat.jpg", testutil.ReadTestImage(t, "concert.jpg"), PutOptions{IfNoneMatch: true}); prism.StatusOf(err) != http.StatusPreconditionFailed {
		t.Errorf("If-None-Match on an existing key: %v", err)
	}
	if err := c.Delete(ctx, "a/cat.jpg"); err != nil {
		t.Fatal(err)
	}
	if _, found := c.Lookup(ctx, "a/cat.jpg"); found != cache.Miss {
		t.Errorf("lookup after delete: %v", found)
	}
	if !slices.Equal(rec.keys, []string{"a/cat.jpg", "a/cat.jpg"}) {
		t.Errorf("invalidations %v, want one per replace and delete", rec.keys)
	}
	if _, err := c.Metadata(ctx, "a/cat.jpg"); prism.StatusOf(err) != http.StatusNotFound {
		t.Errorf("metadata after delete: %v", err)
	}
	if _, found := c.Lookup(ctx, "a/cat.jpg"); found != cache.Missing {
		t.Errorf("a 404 from storage is not remembered: %v", found)
	}
}

func TestCheck(t *testing.T) {
	c, _ := newCatalog(t)
	tests := []struct {
		name   string
		data   []byte
		status int
	}{
		{"jpeg", testutil.ReadTestImage(t, "concert.jpg"), 0},
		{"svg", testutil.ReadTestImage(t, "check.svg"), 0},
		{"heic", testutil.ReadTestImage(t, "320x240.heic"), 0},
		{"tiff", testutil.ReadTestImage(t, "G31D.TIF"), 0},
		{"bmp", testutil.ReadTestImage(t, "320x240.bmp"), http.StatusUnsupportedMediaType},
		{"jpeg 2000", testutil.ReadTestImage(t, "relax.jp2"), http.StatusUnsupportedMediaType},
		{"text", []byte("<html>hello</html>"), http.StatusUnsupportedMediaType},
		{"truncated", testutil.ReadTestImage(t, "truncated.jpg"), http.StatusUnsupportedMediaType},
		{"giant", testutil.ReadTestImage(t, "giant-image.jpg"), http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		_, err := c.Check(tt.data)
		if got := statusOrZero(err); got != tt.status {
			t.Errorf("%s: %v, want status %d", tt.name, err, tt.status)
		}
	}
}

func statusOrZero(err error) int {
	if err == nil {
		return 0
	}
	return prism.StatusOf(err)
}

// Bytes read before a replace must not be cached as the key's metadata.
func TestLearnIgnoresStaleBytes(t *testing.T) {
	ctx := t.Context()
	c, _ := newCatalog(t)
	old := testutil.ReadTestImage(t, "concert.jpg")
	if _, _, err := c.Put(ctx, "k.jpg", old, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	staleInfo, _ := c.Storage().Stat(ctx, "k.jpg")
	m, _, err := c.Put(ctx, "k.jpg", testutil.ReadTestImage(t, "320x240.jpg"), PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Learn(ctx, staleInfo, old); err != nil {
		t.Fatal(err)
	}
	if cached, _ := c.Lookup(ctx, "k.jpg"); cached.ETag != m.ETag || cached.Width != 320 {
		t.Errorf("stale learn overwrote metadata: %+v", cached)
	}
}

// Metadata of an original that reached storage without the API is worked
// out on first use, then cached.
func TestMetadataOfForeignObject(t *testing.T) {
	ctx := t.Context()
	c, _ := newCatalog(t)
	info, err := c.Storage().Put(ctx, "dropped.gif", testutil.ReadTestImage(t, "animated-loop-3.gif"), storage.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, found := c.Lookup(ctx, "dropped.gif"); found != cache.Miss {
		t.Fatalf("lookup before first use: %v", found)
	}
	m, err := c.Metadata(ctx, "dropped.gif")
	if err != nil || m.Frames != 10 || m.ETag != info.ETag || m.Format != "gif" {
		t.Fatalf("%+v %v", m, err)
	}
	if _, found := c.Lookup(ctx, "dropped.gif"); found != cache.Hit {
		t.Errorf("not cached after first use: %v", found)
	}
}
