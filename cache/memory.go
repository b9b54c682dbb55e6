package cache

import (
	"context"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/prism-image/prism"
)

// DefaultMemoryEntries is the bound NewMemory uses when given none.
const DefaultMemoryEntries = 100_000

// Memory is a MetadataStore in process memory, bounded in entries: the
// embedded default when there is no Redis. Its entries expire like Redis
// ones, after Options.TTL or, for negative entries, Options.MissingTTL.
type Memory struct {
	c *otter.Cache[string, memEntry]
	m *Metrics
}

// memEntry is a cached Metadata, or a negative entry.
type memEntry struct {
	m       prism.Metadata
	missing bool
}

// NewMemory returns a Memory holding at most maxEntries entries (positive and
// negative together), DefaultMemoryEntries when maxEntries < 1. Only
// Options.TTL and Options.MissingTTL apply: nothing in it can fail.
func NewMemory(maxEntries int, o Options) *Memory {
	o = o.withDefaults()
	if maxEntries < 1 {
		maxEntries = DefaultMemoryEntries
	}
	ttl, missingTTL := o.TTL, o.MissingTTL
	c := otter.Must(&otter.Options[string, memEntry]{
		MaximumSize: maxEntries,
		// Each write sets the entry's lifetime afresh, by its kind, so a Set
		// after SetMissing (or the reverse) also replaces the expiry.
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, memEntry]) time.Duration {
			if e.Value.missing {
				return missingTTL
			}
			return ttl
		}),
	})
	return &Memory{c: c, m: o.Metrics}
}

// Get implements MetadataStore.
func (s *Memory) Get(_ context.Context, key string) (prism.Metadata, Lookup) {
	e, ok := s.c.GetIfPresent(key)
	if !ok {
		s.m.lookup(layerMetadata, resultMiss)
		return prism.Metadata{}, Miss
	}
	s.m.lookup(layerMetadata, resultHit)
	if e.missing {
		return prism.Metadata{}, Missing
	}
	return e.m, Hit
}

// Set implements MetadataStore.
func (s *Memory) Set(_ context.Context, m prism.Metadata) {
	if m.Key == "" {
		return
	}
	m.URL = "" // filled in when answering, never stored
	s.c.Set(m.Key, memEntry{m: m})
}

// SetMissing implements MetadataStore.
func (s *Memory) SetMissing(_ context.Context, key string) {
	s.c.Set(key, memEntry{missing: true})
}

// Delete implements MetadataStore.
func (s *Memory) Delete(_ context.Context, key string) {
	s.c.Invalidate(key)
}

// Close stops the cache's expiry goroutine. It always returns nil.
func (s *Memory) Close() error {
	s.c.StopAllGoroutines()
	return nil
}
