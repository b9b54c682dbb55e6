package testutil

import (
	"encoding/json"
	"fmt"
	"slices"
)

// emfUnits are the units CloudWatch's Embedded Metric Format allows.
var emfUnits = []string{
	"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
	"Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
	"Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
	"Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}

// CheckEMF checks line against the structure the Embedded Metric Format
// specification requires: a root object whose _aws member holds an integer
// Timestamp and a CloudWatchMetrics array of directives, each with a
// Namespace, Dimensions (sets of at most 30 names, each a string member of
// the root) and Metrics (at most 100, each a number member of the root,
// with a known unit), and no members the specification does not define.
// It returns the root object.
func CheckEMF(line []byte) (map[string]any, error) {
	var root map[string]any
	if err := json.Unmarshal(line, &root); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	meta, ok := root["_aws"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no _aws object")
	}
	for k := range meta {
		if k != "Timestamp" && k != "CloudWatchMetrics" {
			return nil, fmt.Errorf("_aws has a member %q the specification does not define", k)
		}
	}
	ts, ok := meta["Timestamp"].(float64)
	if !ok || ts != float64(int64(ts)) || ts <= 0 {
		return nil, fmt.Errorf("_aws.Timestamp is not a positive integer of milliseconds: %v", meta["Timestamp"])
	}
	directives, ok := meta["CloudWatchMetrics"].([]any)
	if !ok || len(directives) == 0 {
		return nil, fmt.Errorf("_aws.CloudWatchMetrics is not a non-empty array")
	}
	for i, d := range directives {
		dir, ok := d.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("directive %d is not an object", i)
		}
		for k := range dir {
			if k != "Namespace" && k != "Dimensions" && k != "Metrics" {
				return nil, fmt.Errorf("directive %d has a member %q the specification does not define", i, k)
			}
		}
		if ns, ok := dir["Namespace"].(string); !ok || ns == "" || len(ns) > 1024 {
			return nil, fmt.Errorf("directive %d: Namespace is not a string of 1 to 1024 bytes", i)
		}
		sets, ok := dir["Dimensions"].([]any)
		if !ok {
			return nil, fmt.Errorf("directive %d: Dimensions is not an array", i)
		}
		for _, s := range sets {
			set, ok := s.([]any)
			if !ok || len(set) > 30 {
				return nil, fmt.Errorf("directive %d: a dimension set is not an array of at most 30 names", i)
			}
			for _, n := range set {
				name, ok := n.(string)
				if !ok {
					return nil, fmt.Errorf("directive %d: a dimension name is not a string", i)
				}
				if _, ok := root[name].(string); !ok {
					return nil, fmt.Errorf("dimension %q has no string value at the root", name)
				}
			}
		}
		metrics, ok := dir["Metrics"].([]any)
		if !ok || len(metrics) == 0 || len(metrics) > 100 {
			return nil, fmt.Errorf("directive %d: Metrics is not an array of 1 to 100 definitions", i)
		}
		for _, m := range metrics {
			def, ok := m.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("directive %d: a metric definition is not an object", i)
			}
			for k := range def {
				if k != "Name" && k != "Unit" && k != "StorageResolution" {
					return nil, fmt.Errorf("metric definition has a member %q the specification does not define", k)
				}
			}
			name, ok := def["Name"].(string)
			if !ok || name == "" || len(name) > 1024 {
				return nil, fmt.Errorf("directive %d: a metric has no Name", i)
			}
			if u, ok := def["Unit"]; ok {
				if s, ok := u.(string); !ok || !slices.Contains(emfUnits, s) {
					return nil, fmt.Errorf("metric %q: unit %v is none the specification allows", name, u)
				}
			}
			if _, ok := root[name].(float64); !ok {
				return nil, fmt.Errorf("metric %q has no number value at the root", name)
			}
		}
	}
	return root, nil
}
