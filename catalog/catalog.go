// Package catalog knows every original: it validates and stores uploads,
// keeps each original's metadata in the metadata cache, and when an original
// is replaced or deleted it drops everything derived from it (metadata,
// cached variants, CDN copies). The HTTP API and the Lambda's S3 event
// handler both change originals through it.
package catalog

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/storage"
)

// Invalidator forgets what was derived from an original: cached variants,
// CDN copies. It must not block for long; slow work (a CDN API call) belongs
// in the background.
type Invalidator interface {
	Invalidate(ctx context.Context, key string)
}

// Accepted are the formats an upload may have. SVG is stored as it is.
var Accepted = map[imaging.Format]bool{
	imaging.JPEG: true, imaging.PNG: true, imaging.WebP: true, imaging.AVIF: true,
	imaging.HEIC: true, imaging.GIF: true, imaging.TIFF: true, imaging.SVG: true,
}

// Catalog is the set of originals.
type Catalog struct {
	store          storage.Storage
	meta           cache.MetadataStore
	proc           *imaging.Processor
	invalidators   []Invalidator
	maxSourceBytes int64
	log            *slog.Logger
	locks          keyedMutex
	learning       chan struct{} // slots for LearnAsync
	learners       sync.WaitGroup
	closed         bool // guarded by learnMu
	learnMu        sync.Mutex
}

// New returns a Catalog over store. maxSourceBytes bounds what is read to
// learn an original that arrived without the API.
func New(store storage.Storage, meta cache.MetadataStore, proc *imaging.Processor, maxSourceBytes int64, log *slog.Logger, invalidators ...Invalidator) *Catalog {
	return &Catalog{
		store: store, meta: meta, proc: proc, maxSourceBytes: maxSourceBytes, log: log, invalidators: invalidators,
		learning: make(chan struct{}, 2),
	}
}

// Storage is where the originals live.
func (c *Catalog) Storage() storage.Storage { return c.store }

// PutOptions modify a Put.
type PutOptions struct {
	IfNoneMatch bool // refuse to replace an existing original (412)
}

// Put validates data and stores it at key, replacing what was there. It
// reports whether the key is new. When it returns, no stale metadata or
// variant of the key can be served by this process.
func (c *Catalog) Put(ctx context.Context, key string, data []byte, opts PutOptions) (prism.Metadata, bool, error) {
	if err := storage.ValidateKey(key); err != nil {
		return prism.Metadata{}, false, err
	}
	a, err := c.Check(data)
	if err != nil {
		return prism.Metadata{}, false, err
	}

	// Same-key writes are serialised so the metadata cached last describes
	// the object stored last.
	unlock := c.locks.lock(key)
	defer unlock()
	_, statErr := c.store.Stat(ctx, key)
	created := prism.StatusOf(statErr) == http.StatusNotFound
	if statErr != nil && !created {
		return prism.Metadata{}, false, statErr
	}
	info, err := c.store.Put(ctx, key, data, storage.PutOptions{ContentType: a.Format.ContentType(), IfNoneMatch: opts.IfNoneMatch})
	if err != nil {
		return prism.Metadata{}, false, err
	}
	m := metadata(info, a)
	c.meta.Set(ctx, m)
	if !created {
		c.invalidate(ctx, key)
	}
	return m, created, nil
}

// Check refuses data that is not an image Prism accepts (415), that cannot
// be decoded in full (415) or that is over the pixel limit (422).
func (c *Catalog) Check(data []byte) (imaging.Analysis, error) {
	if f := imaging.Sniff(data); !Accepted[f] {
		return imaging.Analysis{}, prism.Errorf(http.StatusUnsupportedMediaType, prism.CodeUnsupportedMedia,
			"not an image in an accepted format: JPEG, PNG, WebP, AVIF, HEIC, GIF, TIFF or SVG")
	}
	return c.proc.Analyze(data)
}

// Delete removes key and everything derived from it.
func (c *Catalog) Delete(ctx context.Context, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	unlock := c.locks.lock(key)
	defer unlock()
	if err := c.store.Delete(ctx, key); err != nil {
		return err
	}
	c.Forget(ctx, key)
	return nil
}

// Forget drops what is known of key after it changed outside the API (a
// direct S3 upload, a file replaced in the folder).
func (c *Catalog) Forget(ctx context.Context, key string) {
	c.meta.Delete(ctx, key)
	c.invalidate(ctx, key)
}

func (c *Catalog) invalidate(ctx context.Context, key string) {
	for _, inv := range c.invalidators {
		inv.Invalidate(ctx, key)
	}
}

// Lookup answers from the metadata cache alone, for the hot path.
func (c *Catalog) Lookup(ctx context.Context, key string) (prism.Metadata, cache.Lookup) {
	return c.meta.Get(ctx, key)
}

// NotFound records that storage has no key, so that repeated requests for
// it do not reach storage for a while.
func (c *Catalog) NotFound(ctx context.Context, key string) { c.meta.SetMissing(ctx, key) }

// Metadata returns key's metadata: from the cache, else worked out from
// storage and cached.
func (c *Catalog) Metadata(ctx context.Context, key string) (prism.Metadata, error) {
	if err := storage.ValidateKey(key); err != nil {
		return prism.Metadata{}, err
	}
	switch m, found := c.meta.Get(ctx, key); found {
	case cache.Hit:
		return m, nil
	case cache.Missing:
		return prism.Metadata{}, notFound()
	}
	obj, err := c.store.Open(ctx, key)
	if err != nil {
		if prism.StatusOf(err) == http.StatusNotFound {
			c.NotFound(ctx, key)
		}
		return prism.Metadata{}, err
	}
	defer obj.Close()
	data, err := storage.ReadAll(obj, c.maxSourceBytes)
	if err != nil {
		return prism.Metadata{}, err
	}
	return c.Learn(ctx, obj.Info(), data)
}

// Learn works out and caches the metadata of an original read from storage
// (by the transform path, say) that the cache did not know.
func (c *Catalog) Learn(ctx context.Context, info storage.Info, data []byte) (prism.Metadata, error) {
	a, err := c.proc.Analyze(data)
	if err != nil {
		return prism.Metadata{}, err
	}
	m := metadata(info, a)
	// The bytes may be older than the object by now (a replace landed while
	// they were read): cache only what storage still holds. Holding the
	// key's lock orders this against Put and Delete.
	unlock := c.locks.lock(info.Key)
	defer unlock()
	if now, err := c.store.Stat(ctx, info.Key); err == nil && now.ETag == info.ETag {
		c.meta.Set(ctx, m)
	}
	return m, nil
}

// LearnAsync is Learn in the background when a slot is free. It never
// delays a response, and under load, or while the metadata cache is down and
// every lookup misses, it skips work rather than piling it up.
func (c *Catalog) LearnAsync(info storage.Info, data []byte) {
	c.learnMu.Lock()
	defer c.learnMu.Unlock()
	if c.closed {
		return
	}
	select {
	case c.learning <- struct{}{}:
	default:
		return
	}
	c.learners.Add(1)
	go func() {
		defer c.learners.Done()
		defer func() { <-c.learning }()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := c.Learn(ctx, info, data); err != nil {
			c.log.Warn("learning an original failed", "key", info.Key, "err", err)
		}
	}()
}

// Close waits for background work to end and refuses more: libvips may be
// shut down after it returns.
func (c *Catalog) Close() {
	c.learnMu.Lock()
	c.closed = true
	c.learnMu.Unlock()
	c.learners.Wait()
}

func notFound() error { return prism.Errorf(http.StatusNotFound, prism.CodeNotFound, "no such image") }

func metadata(info storage.Info, a imaging.Analysis) prism.Metadata {
	return prism.Metadata{
		Key: info.Key, Width: a.Width, Height: a.Height,
		Format: string(a.Format), ContentType: a.Format.ContentType(),
		Bytes: info.Size, ETag: info.ETag, LastModified: info.LastModified.UTC(),
		Orientation: a.Orientation, Frames: a.Frames, HasAlpha: a.HasAlpha, ColorSpace: a.ColorSpace,
		DominantColor: a.DominantColor, BlurHash: a.BlurHash,
	}
}

// keyedMutex is a mutex per key, dropped when nobody holds or waits for it.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
