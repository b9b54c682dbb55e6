package emf

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prism-image/prism/internal/testutil"
)

var at = time.UnixMilli(1796358692330)

// valid is an event like Prism's: two groups under different sets.
func valid() Event {
	return Event{
		Namespace: "Prism", Time: at,
		Groups: []Group{
			{DimensionSets: [][]string{{"Service"}, {"Service", "Route"}}, Metrics: []Metric{{"Requests", Count, 1}}},
			{DimensionSets: [][]string{{"Service"}}, Metrics: []Metric{{"Duration", Milliseconds, 12.5}, {"OutputBytes", Bytes, 9735}}},
		},
		Dimensions: []Field{{"Service", "prism"}, {"Route", "transform"}},
		Properties: []Field{{"request_id", "abc"}, {"note", "a \"quoted\" \\ line\nwith é"}},
	}
}

func TestMarshal(t *testing.T) {
	with := func(f func(e *Event)) Event {
		e := valid()
		f(&e)
		return e
	}
	tests := []struct {
		name    string
		event   Event
		wantErr string
	}{
		{"valid", valid(), ""},
		{"no dimensions", with(func(e *Event) {
			e.Dimensions = nil
			for i := range e.Groups {
				e.Groups[i].DimensionSets = nil
			}
		}), ""},
		{"no namespace", with(func(e *Event) { e.Namespace = "" }), "namespace"},
		{"no groups", with(func(e *Event) { e.Groups = nil }), "group"},
		{"an empty group", with(func(e *Event) { e.Groups[1].Metrics = nil }), "metrics"},
		{"too many metrics", with(func(e *Event) {
			for i := range 100 {
				e.Groups[1].Metrics = append(e.Groups[1].Metrics, Metric{Name: "m" + strings.Repeat("x", i), Unit: Count})
			}
		}), "metrics"},
		{"dimension without a value", with(func(e *Event) { e.Groups[0].DimensionSets = [][]string{{"Cache"}} }), `"Cache"`},
		{"metric named like a dimension", with(func(e *Event) { e.Groups[1].Metrics[0].Name = "Route" }), `"Route"`},
		{"metric named like a property", with(func(e *Event) { e.Groups[1].Metrics[0].Name = "request_id" }), `"request_id"`},
		{"one metric in two groups", with(func(e *Event) { e.Groups[1].Metrics[0].Name = "Requests" }), `"Requests"`},
		{"member named _aws", with(func(e *Event) { e.Properties[0].Name = "_aws" }), `"_aws"`},
		{"not a number", with(func(e *Event) { e.Groups[1].Metrics[0].Value = math.NaN() }), "Duration"},
		{"infinite", with(func(e *Event) { e.Groups[1].Metrics[0].Value = math.Inf(1) }), "Duration"},
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
			meta := root["_aws"].(map[string]any)
			if got := meta["Timestamp"]; got != float64(at.UnixMilli()) {
				t.Errorf("Timestamp %v, want %d", got, at.UnixMilli())
			}
			directives := meta["CloudWatchMetrics"].([]any)
			if len(directives) != len(tt.event.Groups) {
				t.Fatalf("%d directives for %d groups", len(directives), len(tt.event.Groups))
			}
			for i, g := range tt.event.Groups {
				d := directives[i].(map[string]any)
				if sets, _ := json.Marshal(d["Dimensions"]); g.DimensionSets != nil && string(sets) != string(mustJSON(t, g.DimensionSets)) {
					t.Errorf("directive %d: dimensions %s, want %s", i, sets, mustJSON(t, g.DimensionSets))
				}
				for j, m := range g.Metrics {
					def := d["Metrics"].([]any)[j].(map[string]any)
					if def["Name"] != m.Name || def["Unit"] != string(m.Unit) || root[m.Name] != m.Value {
						t.Errorf("metric %s: definition %v, value %v; want %v", m.Name, def, root[m.Name], m)
					}
				}
			}
			for _, f := range append(tt.event.Dimensions, tt.event.Properties...) {
				if root[f.Name] != f.Value {
					t.Errorf("%s = %q, want %q", f.Name, root[f.Name], f.Value)
				}
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A line is one Write: lines from goroutines sharing a writer stay whole.
func TestWrite(t *testing.T) {
	var w countingWriter
	if err := Write(&w, valid()); err != nil {
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

// BenchmarkWrite is the cost a request pays for its line.
func BenchmarkWrite(b *testing.B) {
	e := valid()
	b.ReportAllocs()
	for b.Loop() {
		if err := Write(io.Discard, e); err != nil {
			b.Fatal(err)
		}
	}
}
