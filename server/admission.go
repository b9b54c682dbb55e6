package server

import (
	"context"
	"net/http"
	"sync/atomic"

	"golang.org/x/sync/semaphore"

	"github.com/prism-image/prism"
)

// admission bounds the pipelines: at most workers run, at most queue wait,
// and whoever would wait beyond that is told at once to come back later. A
// pipeline holds tens of megabytes of pixels, so this bound is what keeps
// memory flat under any load.
type admission struct {
	slots    *semaphore.Weighted
	capacity int64        // workers + queue
	inside   atomic.Int64 // running or waiting
	running  atomic.Int64
}

func newAdmission(workers, queue int) *admission {
	return &admission{slots: semaphore.NewWeighted(int64(workers)), capacity: int64(workers + queue)}
}

// errBusy answers a request that found the queue full.
func errBusy() error {
	return prism.Errorf(http.StatusTooManyRequests, prism.CodeBusy, "too many images are being rendered; retry shortly")
}

// errDeadline answers a request whose deadline passed while it waited.
func errDeadline() error {
	return prism.Errorf(http.StatusServiceUnavailable, prism.CodeUnavailable, "the image could not be rendered in time; retry shortly")
}

// do runs fn when a worker is free: 429 when the queue is full, 503 when
// ctx ends first.
func (a *admission) do(ctx context.Context, fn func()) error {
	if a.inside.Add(1) > a.capacity {
		a.inside.Add(-1)
		return errBusy()
	}
	defer a.inside.Add(-1)
	if err := a.slots.Acquire(ctx, 1); err != nil {
		return errDeadline()
	}
	defer a.slots.Release(1)
	a.running.Add(1)
	defer a.running.Add(-1)
	fn()
	return nil
}

// idle reports whether no pipeline runs or waits.
func (a *admission) idle() bool { return a.inside.Load() == 0 }
