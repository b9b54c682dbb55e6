package render

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/semaphore"

	"github.com/prism-image/prism"
)

// gate bounds the decodes: at most workers run, at most queue wait, and
// whoever would wait beyond that is told at once to come back later. Within
// a worker, libvips' pixels are reserved from a memory budget before they
// are decoded, so that two large pieces of work run one after the other
// rather than side by side: memory stays flat under any load.
type gate struct {
	slots    *semaphore.Weighted
	capacity int64        // workers + queue
	inside   atomic.Int64 // running or waiting
	running  atomic.Int64
	memory   *semaphore.Weighted
	budget   int64
}

func newGate(workers, queue int, budget int64) *gate {
	return &gate{
		slots: semaphore.NewWeighted(int64(workers)), capacity: int64(workers + queue),
		memory: semaphore.NewWeighted(budget), budget: budget,
	}
}

// errBusy answers work that found the queue full.
func errBusy() error {
	return prism.Fail(prism.CodeBusy, "too many images are being worked on; retry shortly")
}

// do runs fn when a worker is free: 429 when the queue is full, 503 when
// ctx ends first.
func (g *gate) do(ctx context.Context, fn func()) error {
	if g.inside.Add(1) > g.capacity {
		g.inside.Add(-1)
		return errBusy()
	}
	defer g.inside.Add(-1)
	if err := g.slots.Acquire(ctx, 1); err != nil {
		return errDeadline()
	}
	defer g.slots.Release(1)
	g.running.Add(1)
	defer g.running.Add(-1)
	fn()
	return nil
}

// reserve holds bytes of the memory budget, or the whole budget when bytes
// is more (so that work larger than the budget still runs, alone), until
// release is called: 503 when ctx ends first.
func (g *gate) reserve(ctx context.Context, bytes int64) (release func(), err error) {
	n := min(max(bytes, 1), g.budget)
	if err := g.memory.Acquire(ctx, n); err != nil {
		return nil, errDeadline()
	}
	return func() { g.memory.Release(n) }, nil
}

// idle reports whether no work runs or waits.
func (g *gate) idle() bool { return g.inside.Load() == 0 }
