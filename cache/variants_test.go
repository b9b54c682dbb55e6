package cache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prism-image/prism/internal/testutil"
	"github.com/prism-image/prism/storage"
)

func TestVariantsStayWithinBytes(t *testing.T) {
	const bound = 1 << 20
	v := NewVariants(bound, nil)
	for i := range 2000 {
		v.Set(VariantKey{Source: fmt.Sprintf("src/%d.jpg", i%50), ID: fmt.Sprint(i)}, Variant{Data: make([]byte, 10_000), ContentType: "image/jpeg"})
		if got := v.Bytes(); got > bound {
			t.Fatalf("after %d sets the cache holds %d bytes, over its bound of %d", i+1, got, bound)
		}
	}
	if v.Bytes() < bound/2 {
		t.Errorf("a full cache holds only %d bytes", v.Bytes())
	}
	big := VariantKey{Source: "big.jpg", ID: "1"}
	v.Set(big, Variant{Data: make([]byte, bound/4)})
	if _, ok := v.Get(big); ok {
		t.Error("a variant over an eighth of the cache was cached")
	}
}

func TestVariantsInvalidate(t *testing.T) {
	v := NewVariants(1<<20, nil)
	keys := []VariantKey{{"a.jpg", "1"}, {"a.jpg", "2"}, {"a.jpg/x", "3"}, {"a.jpgx", "4"}, {"b.jpg", "5"}}
	for _, k := range keys {
		v.Set(k, Variant{Data: []byte(k.ID)})
	}
	v.Invalidate(context.Background(), "a.jpg")
	for i, k := range keys {
		_, ok := v.Get(k)
		if want := i >= 2; ok != want {
			t.Errorf("%v cached = %v, want %v", k, ok, want)
		}
	}
}

// The derived store is tested on both backends and with both indexes:
// Redis, and none (probing the store).
func TestDerived(t *testing.T) {
	m := testutil.StartMinIO(t)
	testutil.SetAWSEnv(t, m)
	s3, err := storage.NewS3(t.Context(), storage.S3Options{Bucket: m.Bucket, Prefix: "derived", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	flushShared(t)
	r := newTestRedis(t, shared.URL(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, defaultMaxPending, time.Second)
	for _, tt := range []struct {
		name  string
		store storage.Storage
		index VariantIndex
	}{
		{"file", dir, nil},
		{"file+redis", dir, r.VariantIndex()},
		{"s3", s3, nil},
		{"s3+redis", s3, r.VariantIndex()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			d := NewDerived(tt.store, tt.index, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			source := "up/" + tt.name + "/cat.jpg"
			webp := VariantKey{Source: source, ID: `"aa11"`}
			avif := VariantKey{Source: source, ID: `"bb22"`}
			other := VariantKey{Source: source + "x", ID: `"cc33"`}
			if _, ok := d.Get(ctx, webp); ok {
				t.Fatal("hit in an empty store")
			}
			data := testutil.ReadTestImage(t, "4.webp")
			d.SaveAsync(webp, Variant{Data: data, ContentType: "image/webp"})
			d.SaveAsync(avif, Variant{Data: testutil.ReadTestImage(t, "pitm.avif"), ContentType: "image/avif"})
			d.SaveAsync(other, Variant{Data: []byte("GIF89a"), ContentType: "image/gif"})
			d.Close() // waits for the writes
			d = NewDerived(tt.store, tt.index, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			defer d.Close()

			got, ok := d.Get(ctx, webp)
			if !ok || !bytes.Equal(got.Data, data) || got.ContentType != "image/webp" {
				t.Fatalf("read back: ok=%v %d bytes %q", ok, len(got.Data), got.ContentType)
			}
			if got, ok := d.Get(ctx, avif); !ok || got.ContentType != "image/avif" {
				t.Errorf("avif read back: ok=%v %q", ok, got.ContentType)
			}
			if tt.index != nil {
				if present, known := tt.index.Has(ctx, source, objectName(webp)); !present || !known {
					t.Errorf("index: present=%v known=%v", present, known)
				}
			}
			d.Invalidate(ctx, source)
			for _, k := range []VariantKey{webp, avif} {
				if _, ok := d.Get(ctx, k); ok {
					t.Errorf("%v still served after its source was invalidated", k)
				}
				if _, err := tt.store.Stat(ctx, objectName(k)); err == nil {
					t.Errorf("%s still stored after its source was invalidated", objectName(k))
				}
			}
			if _, ok := d.Get(ctx, other); !ok {
				t.Error("invalidating one source dropped another's variant")
			}
		})
	}
}

func TestSniffContentType(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"320x240.jpg", "image/jpeg"}, {"with-alpha.png", "image/png"}, {"4.webp", "image/webp"},
		{"pitm.avif", "image/avif"}, {"rotating-squares.gif", "image/gif"}, {"check.svg", "application/octet-stream"},
	} {
		if got := sniffContentType(testutil.ReadTestImage(t, tt.file)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.file, got, tt.want)
		}
	}
}
