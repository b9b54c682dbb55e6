// Package catalog knows every original: it reads, stores and deletes them
// through storage within the storage deadline, keeps each original's
// metadata in the metadata cache and remembers recent misses and failures,
// and when an original is replaced or deleted it drops everything derived
// from it (metadata, cached variants, CDN copies). It decodes nothing: the
// render package works metadata out and hands it here.
package catalog

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/storage"
)

// Invalidator forgets what was derived from an original: cached variants,
// CDN copies. It must not block for long; slow work (a CDN API call) belongs
// in the background.
type Invalidator interface {
	Invalidate(ctx context.Context, key string)
}

// Config tunes a Catalog.
type Config struct {
	// StorageTimeout bounds opening an object, and reading a whole one; a
	// storage that takes longer is a 504.
	StorageTimeout time.Duration
	// FailureTTL is how long an original that failed analysis (415, 422)
	// is remembered as failed, as missing keys are.
	FailureTTL time.Duration
	// Marks records the originals drawn with each watermark, so that a
	// change of the watermark purges their variants too; nil records none.
	Marks cache.MarkIndex
}

// Catalog is the set of originals.
type Catalog struct {
	store        storage.Storage
	meta         cache.MetadataStore
	invalidators []Invalidator
	cfg          Config
	failures     *otter.Cache[string, error]
	locks        keyedMutex
}

// New returns a Catalog over store, caching metadata in meta.
func New(store storage.Storage, meta cache.MetadataStore, cfg Config, invalidators ...Invalidator) *Catalog {
	return &Catalog{
		store: store, meta: meta, cfg: cfg, invalidators: invalidators,
		failures: otter.Must(&otter.Options[string, error]{
			MaximumSize:      maxFailures,
			ExpiryCalculator: otter.ExpiryWriting[string, error](cfg.FailureTTL),
		}),
	}
}

// maxFailures bounds the failures remembered: a flood of broken originals
// evicts the oldest, which then cost one more analysis.
const maxFailures = 10_000

// Close stops the failure memory's expiry goroutine.
func (c *Catalog) Close() { c.failures.StopAllGoroutines() }

// Precondition says when a Put may replace what is stored.
type Precondition int

const (
	Overwrite Precondition = iota // replace whatever is there
	IfAbsent                      // refuse (412) to replace an existing original
)

// Put stores data at key, whose pixels have been checked and described by
// pixels (its storage fields are filled in here). It reports whether the
// key is new. When it returns, no stale metadata or variant of the key can
// be served by this process.
func (c *Catalog) Put(ctx context.Context, key string, data []byte, pixels prism.Metadata, cond Precondition) (prism.Metadata, bool, error) {
	if err := storage.ValidateKey(key); err != nil {
		return prism.Metadata{}, false, err
	}
	// Same-key writes are serialised so the metadata cached last describes
	// the object stored last.
	unlock := c.locks.lock(key)
	defer unlock()
	_, statErr := c.store.Stat(ctx, key)
	created := isNotFound(statErr)
	if statErr != nil && !created {
		return prism.Metadata{}, false, statErr
	}
	info, err := c.store.Put(ctx, key, data, storage.PutOptions{ContentType: pixels.ContentType, IfNoneMatch: cond == IfAbsent})
	if err != nil {
		return prism.Metadata{}, false, err
	}
	m := describe(info, pixels)
	c.failures.Invalidate(key)
	c.meta.Set(ctx, m)
	if !created {
		c.invalidate(ctx, key)
	}
	return m, created, nil
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
	c.failures.Invalidate(key)
	c.meta.Delete(ctx, key)
	c.invalidate(ctx, key)
}

// invalidate drops what was derived from key: its own variants, and those
// of every original drawn with it as a watermark.
func (c *Catalog) invalidate(ctx context.Context, key string) {
	keys := []string{key}
	if c.cfg.Marks != nil {
		keys = append(keys, c.cfg.Marks.Take(ctx, key)...)
	}
	for _, k := range keys {
		for _, inv := range c.invalidators {
			inv.Invalidate(ctx, k)
		}
	}
}

// DrawnWith records that source has been rendered with mark as its
// watermark, before that variant is cached: a change of mark from then on
// purges source's variants.
func (c *Catalog) DrawnWith(ctx context.Context, mark, source string) {
	if c.cfg.Marks != nil {
		c.cfg.Marks.Add(ctx, mark, source)
	}
}

// Lookup answers from what is remembered alone, for the hot path: the
// cached metadata, a recent miss, or a recent failure (returned as err).
func (c *Catalog) Lookup(ctx context.Context, key string) (m prism.Metadata, found cache.Lookup, err error) {
	if err, ok := c.failures.GetIfPresent(key); ok {
		return prism.Metadata{}, cache.Miss, err
	}
	m, found = c.meta.Get(ctx, key)
	return m, found, nil
}

// Failed remembers, for FailureTTL, that the original at key cannot be
// analysed (err is a 415 or 422), so that it is not decoded again on every
// request.
func (c *Catalog) Failed(key string, err error) { c.failures.Set(key, err) }

// Remember caches the metadata of an original read from storage as info
// and analysed as pixels, unless storage no longer holds those bytes (a
// replace landed while they were read) or a write of the key is under way
// (it caches what it stores). It returns the metadata either way, within
// the storage deadline: it never waits on a write.
func (c *Catalog) Remember(ctx context.Context, info storage.Info, pixels prism.Metadata) prism.Metadata {
	m := describe(info, pixels)
	// Holding the key's lock orders this against Put and Delete.
	unlock, ok := c.locks.tryLock(info.Key)
	if !ok {
		return m
	}
	defer unlock()
	if now, err := c.Stat(ctx, info.Key); err == nil && now.ETag == info.ETag {
		c.meta.Set(ctx, m)
	}
	return m
}

var errStorageTimeout = errors.New("storage timeout")

// Stat returns key's identity from storage within the storage deadline,
// remembering a miss.
func (c *Catalog) Stat(ctx context.Context, key string) (storage.Info, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.StorageTimeout, errStorageTimeout)
	defer cancel()
	info, err := c.store.Stat(ctx, key)
	return info, c.storageError(ctx, key, err)
}

// Open opens key within the storage deadline, remembering a miss. The
// object then reads for as long as ctx lasts; closing it releases the
// deadline's timer.
func (c *Catalog) Open(ctx context.Context, key string) (storage.Object, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	deadline := time.AfterFunc(c.cfg.StorageTimeout, func() { cancel(errStorageTimeout) })
	obj, err := c.store.Open(ctx, key)
	deadline.Stop()
	if err != nil {
		err = c.storageError(ctx, key, err)
		cancel(nil)
		return nil, err
	}
	return &openObject{Object: obj, cancel: cancel}, nil
}

// ReadAll reads the whole of key, at most limit bytes (a 422 beyond),
// within the storage deadline.
func (c *Catalog) ReadAll(ctx context.Context, key string, limit int64) ([]byte, storage.Info, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.StorageTimeout, errStorageTimeout)
	defer cancel()
	obj, err := c.store.Open(ctx, key)
	if err != nil {
		return nil, storage.Info{}, c.storageError(ctx, key, err)
	}
	defer obj.Close()
	data, err := storage.ReadAll(obj, limit)
	if err != nil {
		return nil, storage.Info{}, c.storageError(ctx, key, err)
	}
	return data, obj.Info(), nil
}

// storageError turns a failure that happened because the storage deadline
// passed into a 504, whatever the backend made of the cancellation, and
// remembers missing keys.
func (c *Catalog) storageError(ctx context.Context, key string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(context.Cause(ctx), errStorageTimeout):
		return prism.Fail(prism.CodeStorageTimeout, "storage did not answer in time").WithCause(err)
	case isNotFound(err):
		c.meta.SetMissing(context.WithoutCancel(ctx), key)
	}
	return err
}

// openObject is an object whose deadline's resources go with it.
type openObject struct {
	storage.Object
	cancel context.CancelCauseFunc
}

func (o *openObject) Close() error {
	err := o.Object.Close()
	o.cancel(nil)
	return err
}

var _ io.Closer = (*openObject)(nil)

func isNotFound(err error) bool { return err != nil && prism.StatusOf(err) == http.StatusNotFound }

// describe is the metadata of an original: what storage says of it (info)
// and what its pixels say.
func describe(info storage.Info, pixels prism.Metadata) prism.Metadata {
	m := pixels
	m.Key, m.URL = info.Key, ""
	m.Bytes, m.ETag, m.LastModified = info.Size, info.ETag, info.LastModified.UTC()
	return m
}
