package emf

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prism-image/prism/internal/testutil"
)

func TestMarshal(t *testing.T) {
	at := time.UnixMilli(1796358692330)
	valid := Event{
		Namespace: "Prism", Time: at,
		DimensionSets: [][]string{{"Service"}, {"Service", "Route"}},
		Dimensions:    map[string]string{"Service": "prism", "Route": "transform"},
		Metrics:       []Metric{{"Requests", Count, 1}, {"Duration", Milliseconds, 12.5}},
		Properties:    map[string]any{"request_id": "abc"},
	}
	with := func(f func(e *Event)) Event {
		e := valid
		e.Metrics = append([]Metric(nil), valid.Metrics...)
		f(&e)
		return e
	}
	tests := []struct {
		name    string
		event   Event
		wantErr string
	}{
		{"valid", valid, ""},
		{"no dimensions", with(func(e *Event) { e.DimensionSets, e.Dimensions = nil, nil }), ""},
		{"no namespace", with(func(e *Event) { e.Namespace = "" }), "namespace"},
		{"no metrics", with(func(e *Event) { e.Metrics = nil }), "metrics"},
		{"too many metrics", with(func(e *Event) {
			for i := range 100 {
				e.Metrics = append(e.Metrics, Metric{Name: "m" + strings.Repeat("x", i), Unit: Count})
			}
		}), "metrics"},
		{"dimension without a value", with(func(e *Event) { e.DimensionSets = [][]string{{"Cache"}} }), `"Cache"`},
		{"metric named like a dimension", with(func(e *Event) { e.Metrics = append(e.Metrics, Metric{"Route", Count, 1}) }), `"Route"`},
		{"metric named like a property", with(func(e *Event) { e.Metrics = append(e.Metrics, Metric{"request_id", Count, 1}) }), `"request_id"`},
		{"member named _aws", with(func(e *Event) { e.Metrics = append(e.Metrics, Metric{"_aws", Count, 1}) }), `"_aws"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.event.Marshal()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			root, err := testutil.CheckEMF(b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if got := root["_aws"].(map[string]any)["Timestamp"]; got != float64(at.UnixMilli()) {
				t.Errorf("Timestamp %v, want %d", got, at.UnixMilli())
			}
			for _, m := range tt.event.Metrics {
				if root[m.Name] != m.Value {
					t.Errorf("%s = %v, want %v", m.Name, root[m.Name], m.Value)
				}
			}
			for k, v := range tt.event.Dimensions {
				if root[k] != v {
					t.Errorf("dimension %s = %v, want %s", k, root[k], v)
				}
			}
		})
	}
}

// A line is one Write: lines from goroutines sharing a writer stay whole.
func TestWrite(t *testing.T) {
	var w countingWriter
	e := Event{Namespace: "Prism", Time: time.Now(), Metrics: []Metric{{"Requests", Count, 1}}}
	if err := Write(&w, e); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 || !bytes.HasSuffix(w.buf.Bytes(), []byte("\n")) || bytes.Count(w.buf.Bytes(), []byte("\n")) != 1 {
		t.Errorf("%d writes of %q, want one line in one write", w.writes, w.buf.String())
	}
	if _, err := testutil.CheckEMF(bytes.TrimSpace(w.buf.Bytes())); err != nil {
		t.Error(err)
	}
	if err := Write(&w, Event{}); err == nil {
		t.Error("an event without a namespace was written")
	}
}

type countingWriter struct {
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.buf.Write(p)
}
