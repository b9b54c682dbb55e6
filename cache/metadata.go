// Package cache keeps what Prism has already worked out, so that the hot
// path rarely touches storage or libvips: originals' metadata (in Redis or
// in process memory) and rendered variants (in process memory and in the
// shared derived store).
package cache

import (
	"context"
	"log/slog"
	"time"

	"github.com/prism-image/prism"
)

// Lookup is the outcome of a metadata lookup.
type Lookup int

const (
	Miss    Lookup = iota // nothing cached: ask storage
	Hit                   // metadata returned
	Missing               // storage recently said there is no such key (negative cache)
)

func (l Lookup) String() string {
	switch l {
	case Miss:
		return "miss"
	case Hit:
		return "hit"
	case Missing:
		return "missing"
	}
	return "Lookup(?)"
}

// MetadataStore caches prism.Metadata by storage key. Its methods never fail
// the caller: a cache that cannot answer is a Miss.
type MetadataStore interface {
	// Get returns the metadata cached for key, with Hit; or Missing when
	// storage recently said key does not exist; or Miss.
	Get(ctx context.Context, key string) (prism.Metadata, Lookup)
	// Set caches m under m.Key for Options.TTL, replacing a negative entry.
	// m.URL is not stored.
	Set(ctx context.Context, m prism.Metadata)
	// SetMissing caches, for Options.MissingTTL, that key does not exist,
	// replacing metadata cached for it.
	SetMissing(ctx context.Context, key string)
	// Delete drops whatever is cached for key.
	Delete(ctx context.Context, key string)
}

// Options tune a MetadataStore. Zero fields take their defaults.
type Options struct {
	TTL        time.Duration // positive entries (default 24h)
	MissingTTL time.Duration // negative entries (default 10s)
	Timeout    time.Duration // per Redis call (default 100ms)
	Logger     *slog.Logger  // default slog.Default()
	// Metrics counts lookups and times Redis calls; nil records nothing.
	Metrics *Metrics
}

// Defaults of Options.
const (
	DefaultTTL        = 24 * time.Hour
	DefaultMissingTTL = 10 * time.Second
	DefaultTimeout    = 100 * time.Millisecond
)

func (o Options) withDefaults() Options {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.MissingTTL <= 0 {
		o.MissingTTL = DefaultMissingTTL
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Operation labels of the Redis metrics.
const (
	opGet    = "get"
	opSet    = "set"
	opDelete = "delete"
	opPing   = "ping"
)

var (
	_ MetadataStore = (*Redis)(nil)
	_ MetadataStore = (*Memory)(nil)
)
