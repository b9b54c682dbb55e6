package render

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/prism-image/prism/imaging"
)

// ReleaseMemoryWhenIdle returns freed memory, Go's and libvips', to the
// system whenever no work has run for a moment after some did, so that
// resident memory falls back near its idle level after a burst. It returns
// when ctx ends.
func (r *Renderer) ReleaseMemoryWhenIdle(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := r.worked.Load()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n := r.worked.Load(); n != last && r.gate.idle() {
			last = n
			debug.FreeOSMemory()
			imaging.ReleaseMemory()
		}
	}
}
