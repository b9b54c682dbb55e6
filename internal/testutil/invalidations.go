package testutil

import (
	"context"
	"sync"
)

// Invalidations is an invalidator (catalog.Invalidator) that records every
// key it is told of, in order.
type Invalidations struct {
	mu   sync.Mutex
	keys []string
}

// Invalidate records key.
func (r *Invalidations) Invalidate(_ context.Context, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, key)
}

// Keys returns the keys recorded so far.
func (r *Invalidations) Keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.keys...)
}

// Take returns the keys recorded since the last Take and forgets them.
func (r *Invalidations) Take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.keys
	r.keys = nil
	return k
}
