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
	"time"
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

// Event is one log event carrying metrics.
type Event struct {
	Namespace string
	Time      time.Time
	// DimensionSets are the combinations of Dimensions each metric is
	// published under; every name in them must be in Dimensions.
	DimensionSets [][]string
	Dimensions    map[string]string
	Metrics       []Metric
	// Properties are further members, searchable in the log but no
	// metrics.
	Properties map[string]any
}

// Limits of the specification.
const (
	maxMetrics       = 100
	maxDimensionsSet = 30
	maxNamespace     = 1024
)

// Marshal encodes e as one line of JSON, without the newline. It fails on
// an event the specification does not allow, or whose members collide.
func (e Event) Marshal() ([]byte, error) {
	if e.Namespace == "" || len(e.Namespace) > maxNamespace {
		return nil, fmt.Errorf("emf: namespace must be 1 to %d bytes", maxNamespace)
	}
	if len(e.Metrics) == 0 || len(e.Metrics) > maxMetrics {
		return nil, fmt.Errorf("emf: an event carries 1 to %d metrics, not %d", maxMetrics, len(e.Metrics))
	}
	root := make(map[string]any, len(e.Properties)+len(e.Dimensions)+len(e.Metrics)+1)
	for k, v := range e.Properties {
		root[k] = v
	}
	put := func(k string, v any) error {
		if _, taken := root[k]; taken || k == "_aws" {
			return fmt.Errorf("emf: member %q is given twice", k)
		}
		root[k] = v
		return nil
	}
	for k, v := range e.Dimensions {
		if err := put(k, v); err != nil {
			return nil, err
		}
	}
	type definition struct {
		Name string `json:"Name"`
		Unit Unit   `json:"Unit"`
	}
	defs := make([]definition, len(e.Metrics))
	for i, m := range e.Metrics {
		if err := put(m.Name, m.Value); err != nil {
			return nil, err
		}
		defs[i] = definition{m.Name, m.Unit}
	}
	for _, set := range e.DimensionSets {
		if len(set) > maxDimensionsSet {
			return nil, fmt.Errorf("emf: a dimension set has at most %d dimensions", maxDimensionsSet)
		}
		for _, d := range set {
			if _, ok := e.Dimensions[d]; !ok {
				return nil, fmt.Errorf("emf: dimension %q has no value", d)
			}
		}
	}
	sets := e.DimensionSets
	if sets == nil {
		sets = [][]string{}
	}
	root["_aws"] = map[string]any{
		"Timestamp": e.Time.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  e.Namespace,
			"Dimensions": sets,
			"Metrics":    defs,
		}},
	}
	return json.Marshal(root)
}

// Write writes e to w as one line, in one Write call (so that lines from
// several goroutines sharing a synchronised writer do not interleave).
func Write(w io.Writer, e Event) error {
	b, err := e.Marshal()
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
