package cache

import (
	"context"
	"sync"
)

// MarkIndex records which originals have been drawn with another as their
// watermark, so that replacing or deleting the watermark purges their
// variants (and CDN copies) too: the URLs of those variants name the
// watermark only in their query, which a purge by path cannot see.
type MarkIndex interface {
	// Add records that source has been rendered with mark.
	Add(ctx context.Context, mark, source string)
	// Take returns the originals recorded for mark and forgets them.
	Take(ctx context.Context, mark string) []string
}

// MarkMemory is a MarkIndex in process memory, for one process without
// Redis. It holds at most a bound of (mark, source) pairs; past it, new
// pairs are not recorded, and their CDN copies outlive a change of the
// watermark until they expire (the process' own caches never serve them:
// a variant's ETag names its watermark's).
type MarkMemory struct {
	mu    sync.Mutex
	users map[string]map[string]struct{}
	pairs int
	max   int
}

// NewMarkMemory returns a MarkMemory of at most maxPairs pairs,
// DefaultMemoryEntries when maxPairs < 1.
func NewMarkMemory(maxPairs int) *MarkMemory {
	if maxPairs < 1 {
		maxPairs = DefaultMemoryEntries
	}
	return &MarkMemory{users: make(map[string]map[string]struct{}), max: maxPairs}
}

// Add implements MarkIndex.
func (x *MarkMemory) Add(_ context.Context, mark, source string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	set := x.users[mark]
	if _, ok := set[source]; ok || x.pairs >= x.max {
		return
	}
	if set == nil {
		set = make(map[string]struct{})
		x.users[mark] = set
	}
	set[source] = struct{}{}
	x.pairs++
}

// Take implements MarkIndex.
func (x *MarkMemory) Take(_ context.Context, mark string) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	set := x.users[mark]
	delete(x.users, mark)
	x.pairs -= len(set)
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	return out
}
