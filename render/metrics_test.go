package render

import (
	"errors"
	"testing"

	"github.com/prism-image/prism"
)

func TestRejection(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"queue full", errBusy(), reasonQueueFull},
		{"waited too long", errDeadline(), reasonTimeout},
		{"stopped at its deadline", prism.Fail(prism.CodeUnavailable, "late").WithCause(errors.New("context deadline exceeded")), reasonTimeout},
		{"shutting down", prism.Fail(prism.CodeUnavailable, "bye").WithCause(errShutdown), ""},
		{"source too large", prism.Fail(prism.CodeTooLarge, "big"), reasonTooLarge},
		{"output too large", prism.Fail(prism.CodeOutputTooLarge, "big"), reasonTooLarge},
		{"not found", notFound(), ""},
		{"no prism error", errors.New("boom"), ""},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rejection(tt.err); got != tt.want {
				t.Errorf("rejection(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
