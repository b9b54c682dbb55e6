package safe

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestPanicsAreLoggedAndSurvived(t *testing.T) {
	tests := []struct {
		name  string
		fn    func()
		fails bool
	}{
		{"returns", func() {}, false},
		{"panics", func() { panic("boom") }, true},
		{"nil map write", func() { var m map[string]int; m["x"] = 1 }, true},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		log := slog.New(slog.NewTextHandler(&out, nil))
		err := Do(log, tt.name, tt.fn)
		if (err != nil) != tt.fails {
			t.Errorf("%s: Do returned %v", tt.name, err)
		}
		if logged := strings.Contains(out.String(), "recovered from a panic"); logged != tt.fails || (tt.fails && !strings.Contains(out.String(), "stack=")) {
			t.Errorf("%s: logged %q", tt.name, out.String())
		}

		out.Reset()
		done := make(chan struct{})
		Go(log, tt.name, func() { defer close(done); tt.fn() })
		<-done // the process is still here: Go survived the panic
	}
}
