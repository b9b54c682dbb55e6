package catalog

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/internal/testutil"
	"github.com/prism-image/prism/storage"
)

func newCatalog(t *testing.T, store storage.Storage) (*Catalog, *testutil.Invalidations) {
	t.Helper()
	if store == nil {
		var err error
		if store, err = storage.NewFile(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	rec := &testutil.Invalidations{}
	c := New(store, cache.NewMemory(100, cache.Options{}), Config{StorageTimeout: time.Second, FailureTTL: 200 * time.Millisecond}, rec)
	t.Cleanup(c.Close)
	return c, rec
}

// jpeg is what render would say of a 400×267 JPEG's pixels.
var jpeg = prism.Metadata{Width: 400, Height: 267, Format: "jpeg", ContentType: "image/jpeg", Frames: 1, Orientation: 1}

func TestPutReplaceDelete(t *testing.T) {
	ctx := t.Context()
	c, rec := newCatalog(t, nil)
	m, created, err := c.Put(ctx, "a/cat.jpg", []byte("first"), jpeg, Overwrite)
	if err != nil || !created || m.Width != 400 || m.Key != "a/cat.jpg" || m.Bytes != 5 || m.ETag == "" {
		t.Fatalf("first put: %+v created=%v %v", m, created, err)
	}
	if cached, found, err := c.Lookup(ctx, "a/cat.jpg"); found != cache.Hit || cached != m || err != nil {
		t.Errorf("lookup after put: %v %+v %v", found, cached, err)
	}
	if len(rec.Keys()) != 0 {
		t.Errorf("a new key invalidated %v", rec.Keys())
	}
	second := jpeg
	second.Width = 320
	m2, created, err := c.Put(ctx, "a/cat.jpg", []byte("second!"), second, Overwrite)
	if err != nil || created || m2.ETag == m.ETag || m2.Width != 320 {
		t.Fatalf("replace: %+v created=%v %v", m2, created, err)
	}
	if info, _ := c.Stat(ctx, "a/cat.jpg"); info.ETag != m2.ETag {
		t.Errorf("metadata ETag %s, storage %s", m2.ETag, info.ETag)
	}
	if _, _, err := c.Put(ctx, "a/cat.jpg", []byte("third"), jpeg, IfAbsent); prism.StatusOf(err) != http.StatusPreconditionFailed {
		t.Errorf("IfAbsent on an existing key: %v", err)
	}
	if err := c.Delete(ctx, "a/cat.jpg"); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := c.Lookup(ctx, "a/cat.jpg"); found != cache.Miss {
		t.Errorf("lookup after delete: %v", found)
	}
	if !slices.Equal(rec.Keys(), []string{"a/cat.jpg", "a/cat.jpg"}) {
		t.Errorf("invalidations %v, want one per replace and delete", rec.Keys())
	}
	if _, err := c.Stat(ctx, "a/cat.jpg"); prism.StatusOf(err) != http.StatusNotFound {
		t.Errorf("stat after delete: %v", err)
	}
	if _, found, _ := c.Lookup(ctx, "a/cat.jpg"); found != cache.Missing {
		t.Errorf("a 404 from storage is not remembered: %v", found)
	}
}

// Open, Stat and ReadAll remember misses, bound reads and apply the
// storage deadline.
func TestReads(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	file, err := storage.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.Put(ctx, "k.jpg", []byte("0123456789"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		store  storage.Storage
		read   func(c *Catalog, key string) error
		key    string
		status int
	}{
		{"open", file, openAndClose, "k.jpg", 0},
		{"open missing", file, openAndClose, "none.jpg", http.StatusNotFound},
		{"stat missing", file, stat, "none.jpg", http.StatusNotFound},
		{"read all", file, readAll(10), "k.jpg", 0},
		{"read all over the limit", file, readAll(9), "k.jpg", http.StatusUnprocessableEntity},
		{"open slow", slow{file}, openAndClose, "k.jpg", http.StatusGatewayTimeout},
		{"stat slow", slow{file}, stat, "k.jpg", http.StatusGatewayTimeout},
		{"read all slow", slow{file}, readAll(10), "k.jpg", http.StatusGatewayTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newCatalog(t, tt.store)
			c.cfg.StorageTimeout = 50 * time.Millisecond
			start := time.Now()
			err := tt.read(c, tt.key)
			if got := statusOrZero(err); got != tt.status {
				t.Fatalf("%v, want status %d", err, tt.status)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("took %v: the storage deadline did not apply", took)
			}
			_, found, _ := c.Lookup(ctx, tt.key)
			if want := tt.status == http.StatusNotFound; (found == cache.Missing) != want {
				t.Errorf("lookup after the read: %v; want remembered as missing: %v", found, want)
			}
		})
	}
}

func openAndClose(c *Catalog, key string) error {
	obj, err := c.Open(context.Background(), key)
	if err != nil {
		return err
	}
	return obj.Close()
}

func stat(c *Catalog, key string) error {
	_, err := c.Stat(context.Background(), key)
	return err
}

func readAll(limit int64) func(c *Catalog, key string) error {
	return func(c *Catalog, key string) error {
		data, info, err := c.ReadAll(context.Background(), key, limit)
		if err == nil && (len(data) != 10 || info.Size != 10) {
			return prism.Errorf(500, "test", "read %d bytes, info %+v", len(data), info)
		}
		return err
	}
}

// slow is a store that answers nothing before the caller's deadline.
type slow struct{ storage.Storage }

func (s slow) Open(ctx context.Context, key string) (storage.Object, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s slow) Stat(ctx context.Context, key string) (storage.Info, error) {
	<-ctx.Done()
	return storage.Info{}, ctx.Err()
}

func statusOrZero(err error) int {
	if err == nil {
		return 0
	}
	return prism.StatusOf(err)
}

// Bytes read before a replace must not be cached as the key's metadata.
func TestRememberIgnoresStaleBytes(t *testing.T) {
	ctx := t.Context()
	c, _ := newCatalog(t, nil)
	if _, _, err := c.Put(ctx, "k.jpg", []byte("old"), jpeg, Overwrite); err != nil {
		t.Fatal(err)
	}
	staleInfo, _ := c.Stat(ctx, "k.jpg")
	second := jpeg
	second.Width = 320
	m, _, err := c.Put(ctx, "k.jpg", []byte("newer"), second, Overwrite)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Remember(ctx, staleInfo, jpeg); got.ETag != staleInfo.ETag {
		t.Errorf("Remember answered %+v, not the metadata of the bytes it was given", got)
	}
	if cached, _, _ := c.Lookup(ctx, "k.jpg"); cached.ETag != m.ETag || cached.Width != 320 {
		t.Errorf("stale learn overwrote metadata: %+v", cached)
	}

	// A write of the key under way: Remember neither waits for it nor
	// caches what may be stale by the time it lands.
	c.Forget(ctx, "k.jpg")
	current, err := c.Stat(ctx, "k.jpg")
	if err != nil {
		t.Fatal(err)
	}
	unlock := c.locks.lock("k.jpg")
	done := make(chan struct{})
	go func() { c.Remember(ctx, current, second); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Remember waited for a write")
	}
	unlock()
	if _, found, _ := c.Lookup(ctx, "k.jpg"); found != cache.Miss {
		t.Errorf("Remember cached during a write: %v", found)
	}
}

// A failure is remembered for FailureTTL, and forgotten at once when the
// original changes.
func TestFailuresRemembered(t *testing.T) {
	ctx := t.Context()
	c, _ := newCatalog(t, nil)
	broken := prism.Fail(prism.CodeUndecodable, "broken")
	tests := []struct {
		name   string
		forget func()
	}{
		{"expires", func() { time.Sleep(400 * time.Millisecond) }},
		{"forgotten", func() { c.Forget(ctx, "k.jpg") }},
		{"replaced", func() { _, _, _ = c.Put(ctx, "k.jpg", []byte("x"), jpeg, Overwrite) }},
	}
	for _, tt := range tests {
		c.Failed("k.jpg", broken)
		if _, _, err := c.Lookup(ctx, "k.jpg"); err != broken {
			t.Fatalf("%s: lookup of a failed key: %v", tt.name, err)
		}
		tt.forget()
		if _, _, err := c.Lookup(ctx, "k.jpg"); err != nil {
			t.Errorf("%s: still failed: %v", tt.name, err)
		}
	}
}

// A folder cannot presign: both presigning calls say so with a 501 that
// names what would.
func TestPresignOnAFolder(t *testing.T) {
	c, _ := newCatalog(t, nil)
	_, upErr := c.PresignUpload(t.Context(), "a.jpg", 1000, time.Minute)
	_, downErr := c.PresignDownload(t.Context(), "a.jpg", time.Minute)
	for name, err := range map[string]error{"upload": upErr, "download": downErr} {
		if pe := prism.AsError(err); err == nil || pe.Status != http.StatusNotImplemented || pe.Code != prism.CodeNotImplemented || !strings.Contains(pe.Message, "S3") {
			t.Errorf("presign %s: %v, want a 501 naming S3", name, err)
		}
	}
}

// TestMarkUsersPurged: replacing, deleting or forgetting a watermark
// purges the originals drawn with it, once each, after itself.
func TestMarkUsersPurged(t *testing.T) {
	tests := []struct {
		name   string
		change func(ctx context.Context, c *Catalog) error
	}{
		{"replace", func(ctx context.Context, c *Catalog) error {
			_, _, err := c.Put(ctx, "logo.png", []byte("second"), jpeg, Overwrite)
			return err
		}},
		{"delete", func(ctx context.Context, c *Catalog) error { return c.Delete(ctx, "logo.png") }},
		{"forget", func(ctx context.Context, c *Catalog) error { c.Forget(ctx, "logo.png"); return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			store, err := storage.NewFile(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			rec := &testutil.Invalidations{}
			c := New(store, cache.NewMemory(100, cache.Options{}),
				Config{StorageTimeout: time.Second, FailureTTL: time.Second, Marks: cache.NewMarkMemory(0)}, rec)
			t.Cleanup(c.Close)
			if _, _, err := c.Put(ctx, "logo.png", []byte("first"), jpeg, Overwrite); err != nil {
				t.Fatal(err)
			}
			c.DrawnWith(ctx, "logo.png", "a.jpg")
			c.DrawnWith(ctx, "logo.png", "b/c.jpg")
			c.DrawnWith(ctx, "logo.png", "a.jpg")
			c.DrawnWith(ctx, "other.png", "d.jpg")
			if err := tt.change(ctx, c); err != nil {
				t.Fatal(err)
			}
			got := rec.Take()
			if len(got) != 3 || got[0] != "logo.png" {
				t.Fatalf("invalidated %q, want logo.png, then a.jpg and b/c.jpg", got)
			}
			users := got[1:]
			slices.Sort(users)
			if !slices.Equal(users, []string{"a.jpg", "b/c.jpg"}) {
				t.Errorf("users purged %q, want a.jpg and b/c.jpg", users)
			}
			// taken: the next change purges the mark alone
			c.Forget(ctx, "logo.png")
			if got := rec.Take(); !slices.Equal(got, []string{"logo.png"}) {
				t.Errorf("second change invalidated %q, want logo.png alone", got)
			}
		})
	}
}
