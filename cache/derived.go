package cache

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/internal/safe"
	"github.com/prism-image/prism/storage"
)

// VariantIndex records which variants the derived store holds, so that a
// miss costs no storage round trip and every container knows what the
// others rendered.
type VariantIndex interface {
	// Has reports whether name is stored for source; known is false when
	// the index could not answer.
	Has(ctx context.Context, source, name string) (present, known bool)
	Add(ctx context.Context, source, name string)
	Drop(ctx context.Context, source string)
}

// maxDerivedBytes bounds what is read back from the derived store.
const maxDerivedBytes = 64 << 20

// Derived is the shared store of rendered variants: an S3 prefix or a
// folder that every container (and the Lambda) reads and writes, so that
// each variant is rendered once for all of them. A variant of source lives
// at <source>/<id>, so purging a source is removing one prefix.
type Derived struct {
	store storage.Storage
	index VariantIndex // nil: probe the store
	log   *slog.Logger
	m     *Metrics
	jobs  chan func()
	wg    sync.WaitGroup
}

// NewDerived returns a derived store over store, writing in the background
// with writers goroutines. index may be nil; m, when not nil, counts its
// lookups.
func NewDerived(store storage.Storage, index VariantIndex, log *slog.Logger, m *Metrics) *Derived {
	d := &Derived{store: store, index: index, log: log, m: m, jobs: make(chan func(), 256)}
	for range 2 {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for job := range d.jobs {
				_ = safe.Do(d.log, "derived store write", job)
			}
		}()
	}
	return d
}

// Close finishes the queued writes.
func (d *Derived) Close() {
	close(d.jobs)
	d.wg.Wait()
}

func objectName(k VariantKey) string { return k.Source + "/" + strings.Trim(k.ID, `"`) }

// Get returns the variant stored for k.
func (d *Derived) Get(ctx context.Context, k VariantKey) (Variant, bool) {
	name := objectName(k)
	if d.index != nil {
		if present, known := d.index.Has(ctx, k.Source, name); known && !present {
			d.m.lookup(layerDerived, resultMiss)
			return Variant{}, false
		}
	}
	obj, err := d.store.Open(ctx, name)
	if err != nil {
		switch {
		case prism.StatusOf(err) == http.StatusNotFound:
			d.m.lookup(layerDerived, resultMiss)
		case ctx.Err() == nil: // else the caller gave up: no lookup
			d.m.lookup(layerDerived, resultError)
			d.log.Warn("derived store read failed", "key", name, "err", err)
		}
		return Variant{}, false
	}
	defer obj.Close()
	data, err := storage.ReadAll(obj, maxDerivedBytes)
	if err != nil {
		if ctx.Err() == nil {
			d.m.lookup(layerDerived, resultError)
			d.log.Warn("derived store read failed", "key", name, "err", err)
		}
		return Variant{}, false
	}
	d.m.lookup(layerDerived, resultHit)
	ct := obj.Info().ContentType
	if !strings.HasPrefix(ct, "image/") {
		ct = sniffContentType(data) // the folder backend records no type
	}
	return Variant{Data: data, ContentType: ct}, true
}

// Put stores v for k now, and records it in the index.
func (d *Derived) Put(ctx context.Context, k VariantKey, v Variant) error {
	name := objectName(k)
	if _, err := d.store.Put(ctx, name, v.Data, storage.PutOptions{ContentType: v.ContentType}); err != nil {
		return err
	}
	if d.index != nil {
		d.index.Add(ctx, k.Source, name)
	}
	return nil
}

// downloadPresigner is a store that hands out download URLs (S3).
type downloadPresigner interface {
	PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error)
}

// PresignGet returns a URL from which anyone may fetch the variant stored
// for k until expiry: a 501 *prism.Error unless the store is S3.
func (d *Derived) PresignGet(ctx context.Context, k VariantKey, expiry time.Duration) (string, error) {
	p, ok := d.store.(downloadPresigner)
	if !ok {
		return "", prism.Fail(prism.CodeNotImplemented, "presigned downloads need an S3 derived store; this one is a local folder")
	}
	return p.PresignGet(ctx, objectName(k), expiry)
}

// SaveAsync stores v for k in the background. When the queue is full the
// variant is dropped: the store is an optimisation, never a bottleneck.
func (d *Derived) SaveAsync(k VariantKey, v Variant) {
	job := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.Put(ctx, k, v); err != nil {
			d.log.Warn("derived store write failed", "key", objectName(k), "err", err)
		}
	}
	select {
	case d.jobs <- job:
	default:
		d.log.Debug("derived store queue full; variant not stored", "key", objectName(k))
	}
}

// Invalidate drops every stored variant of source: the index entry at once,
// so none is found again, and the objects themselves.
func (d *Derived) Invalidate(ctx context.Context, source string) {
	if d.index != nil {
		d.index.Drop(ctx, source)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := d.store.DeletePrefix(ctx, source); err != nil {
		d.log.Warn("derived store purge failed", "source", source, "err", err)
	}
}

// sniffContentType names the type of an encoded output image.
func sniffContentType(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}):
		return "image/jpeg"
	case bytes.HasPrefix(b, []byte("\x89PNG")):
		return "image/png"
	case bytes.HasPrefix(b, []byte("GIF8")):
		return "image/gif"
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "image/webp"
	case len(b) >= 12 && string(b[4:8]) == "ftyp" && string(b[8:12]) == "avif":
		return "image/avif"
	}
	return "application/octet-stream"
}
