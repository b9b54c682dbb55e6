package imaging

import (
	"context"
	"sync"
	"time"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/prism-image/prism"
)

// killEvery is how often a watched image is told to stop once its context
// has ended. libvips clears the flag when it acts on it, and govips moves an
// ImageRef onto a new image after every operation, so it is set again and
// again until the work returns.
const killEvery = 20 * time.Millisecond

// guarded runs work, which drives libvips, so that it stops when ctx ends:
// every image work passes to watch has libvips' kill flag set, which fails
// the evaluation in progress at its next tile. Whatever libvips cannot
// interrupt (one call into an encoder) is bounded by the cost limits instead.
// A failure after ctx ended is a 503; any other libvips failure a 415.
func guarded(ctx context.Context, work func(watch func(*vips.ImageRef)) error) error {
	if ctx.Err() != nil {
		return deadlineError(ctx)
	}
	var (
		mu      sync.Mutex
		watched []*vips.ImageRef
	)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		t := time.NewTicker(killEvery)
		defer t.Stop()
		for {
			mu.Lock()
			for _, img := range watched {
				img.SetKill(true) // a no-op once the image is closed
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	err := work(func(img *vips.ImageRef) {
		mu.Lock()
		watched = append(watched, img)
		mu.Unlock()
	})
	close(done)
	<-stopped
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return deadlineError(ctx)
	}
	return undecodable(err)
}

// deadlineError answers work whose context ended before it did.
func deadlineError(ctx context.Context) error {
	return prism.Fail(prism.CodeUnavailable, "the image could not be rendered in time; retry shortly").WithCause(context.Cause(ctx))
}
