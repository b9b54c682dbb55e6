// Package emf writes CloudWatch Embedded Metric Format lines: JSON log
// events whose _aws member tells CloudWatch Logs which of their members are
// metrics, in which unit, and by which dimensions, so that a process that
// only writes its log (a Lambda function, a container shipping stdout with
// awslogs) publishes CloudWatch metrics with no API call.
package emf

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Unit is a CloudWatch metric unit.
type Unit string

// The units Prism uses.
const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
	Bytes        Unit = "Bytes"
)

// Metric is one value of a metric.
type Metric struct {
	Name  string
	Unit  Unit
	Value float64
}

// Group is metrics published under the same dimension sets: one
// directive of the event. Every dimension a set names must be among the
// event's Dimensions.
type Group struct {
	DimensionSets [][]string
	Metrics       []Metric
}

// Field is a named string member of the event: a dimension, or a property
// (searchable in the log, no metric).
type Field struct{ Name, Value string }

// Event is one log event carrying metrics.
type Event struct {
	Namespace  string
	Time       time.Time
	Groups     []Group
	Dimensions []Field
	Properties []Field
}

// Limits of the specification.
const (
	maxMetrics       = 100 // per directive
	maxDimensionsSet = 30
	maxNamespace     = 1024
)

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// Write writes e to w as one line, in one Write call (so that lines from
// several goroutines sharing a synchronised writer do not interleave). It
// fails on an event the specification does not allow, or whose members
// collide.
func Write(w io.Writer, e Event) error {
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	b, err := e.AppendTo((*bp)[:0])
	if err != nil {
		return err
	}
	*bp = append(b, '\n')
	_, err = w.Write(*bp)
	return err
}

// Marshal encodes e as one line of JSON, without the newline.
func (e Event) Marshal() ([]byte, error) { return e.AppendTo(nil) }

// AppendTo appends e, encoded as one line of JSON, to b.
func (e Event) AppendTo(b []byte) ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	b = append(b, `{"_aws":{"Timestamp":`...)
	b = strconv.AppendInt(b, e.Time.UnixMilli(), 10)
	b = append(b, `,"CloudWatchMetrics":[`...)
	for i, g := range e.Groups {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Namespace":`...)
		b = appendString(b, e.Namespace)
		b = append(b, `,"Dimensions":[`...)
		for j, set := range g.DimensionSets {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			for k, d := range set {
				if k > 0 {
					b = append(b, ',')
				}
				b = appendString(b, d)
			}
			b = append(b, ']')
		}
		b = append(b, `],"Metrics":[`...)
		for j, m := range g.Metrics {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"Name":`...)
			b = appendString(b, m.Name)
			b = append(b, `,"Unit":`...)
			b = appendString(b, string(m.Unit))
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	b = append(b, "]}"...)
	for _, fields := range [][]Field{e.Dimensions, e.Properties} {
		for _, f := range fields {
			b = append(b, ',')
			b = appendString(b, f.Name)
			b = append(b, ':')
			b = appendString(b, f.Value)
		}
	}
	for _, g := range e.Groups {
		for _, m := range g.Metrics {
			b = append(b, ',')
			b = appendString(b, m.Name)
			b = append(b, ':')
			b = strconv.AppendFloat(b, m.Value, 'g', -1, 64)
		}
	}
	return append(b, '}'), nil
}

// check refuses what the specification does not allow: no namespace, no
// metrics, too many, a dimension without a value, a value that is no JSON
// number, and members that collide.
func (e Event) check() error {
	if e.Namespace == "" || len(e.Namespace) > maxNamespace {
		return fmt.Errorf("emf: namespace must be 1 to %d bytes", maxNamespace)
	}
	if len(e.Groups) == 0 {
		return fmt.Errorf("emf: an event carries at least one group of metrics")
	}
	names := make([]string, 0, 32)
	add := func(n string) error {
		for _, m := range names {
			if m == n {
				return fmt.Errorf("emf: member %q is given twice", n)
			}
		}
		if n == "_aws" {
			return fmt.Errorf("emf: member %q is the specification's", n)
		}
		names = append(names, n)
		return nil
	}
	for _, f := range e.Dimensions {
		if err := add(f.Name); err != nil {
			return err
		}
	}
	for _, f := range e.Properties {
		if err := add(f.Name); err != nil {
			return err
		}
	}
	for _, g := range e.Groups {
		if len(g.Metrics) == 0 || len(g.Metrics) > maxMetrics {
			return fmt.Errorf("emf: a group carries 1 to %d metrics, not %d", maxMetrics, len(g.Metrics))
		}
		for _, m := range g.Metrics {
			if err := add(m.Name); err != nil {
				return err
			}
			if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
				return fmt.Errorf("emf: metric %q is %v, no JSON number", m.Name, m.Value)
			}
		}
		for _, set := range g.DimensionSets {
			if len(set) > maxDimensionsSet {
				return fmt.Errorf("emf: a dimension set has at most %d dimensions", maxDimensionsSet)
			}
			for _, d := range set {
				if !hasField(e.Dimensions, d) {
					return fmt.Errorf("emf: dimension %q has no value", d)
				}
			}
		}
	}
	return nil
}

func hasField(fields []Field, name string) bool {
	for _, f := range fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

// appendString appends s as a JSON string: plain ASCII as it is, anything
// else through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s) // cannot fail for a string
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
