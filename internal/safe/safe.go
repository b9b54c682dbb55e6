// Package safe runs background work so that a panic in it is logged with
// its stack and survived: no goroutine Prism starts can take the process
// down.
package safe

import (
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Go runs fn in a new goroutine, recovering from a panic in it.
func Go(log *slog.Logger, what string, fn func()) {
	go func() { _ = Do(log, what, fn) }()
}

// Do runs fn now and returns a panic in it as an error, having logged it.
func Do(log *slog.Logger, what string, fn func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic in %s: %v", what, v)
			log.Error("recovered from a panic", "in", what, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	fn()
	return nil
}
