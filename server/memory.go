package server

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/prism-image/prism/imaging"
)

// ReleaseMemoryWhenIdle returns freed memory, Go's and libvips', to the
// system whenever no pipeline has run for a moment after some did, so that
// resident memory falls back near its idle level after a burst. It returns
// when ctx ends.
func (s *Server) ReleaseMemoryWhenIdle(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := renders.Load()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n := renders.Load(); n != last && s.admission.idle() {
			last = n
			debug.FreeOSMemory()
			imaging.ReleaseMemory()
		}
	}
}
