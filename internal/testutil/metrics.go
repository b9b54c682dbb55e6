package testutil

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one scrape of a Prometheus endpoint, parsed.
type Scrape map[string]*dto.MetricFamily

// ScrapeMetrics GETs url (a /metrics endpoint) and parses its text format.
func ScrapeMetrics(url string) (Scrape, error) {
	res, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(res.Body)
}

// Labels is a label set, for picking one series of a family.
type Labels map[string]string

func (l Labels) String() string {
	var parts []string
	for k, v := range l {
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// series finds the one series of family name whose labels are exactly
// labels.
func (s Scrape) series(name string, labels Labels) (*dto.Metric, bool) {
	mf, ok := s[name]
	if !ok {
		return nil, false
	}
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				match = false
				break
			}
		}
		if match {
			return m, true
		}
	}
	return nil, false
}

// Has reports whether the series exists.
func (s Scrape) Has(name string, labels Labels) bool {
	_, ok := s.series(name, labels)
	return ok
}

// Value is a counter's or gauge's value, or a histogram's count: 0 for a
// series that does not exist.
func (s Scrape) Value(name string, labels Labels) float64 {
	m, ok := s.series(name, labels)
	switch {
	case !ok:
		return 0
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// Sum is a histogram's sum of observations: 0 for a series that does not
// exist.
func (s Scrape) Sum(name string, labels Labels) float64 {
	m, ok := s.series(name, labels)
	if !ok || m.Histogram == nil {
		return 0
	}
	return m.GetHistogram().GetSampleSum()
}

// Total adds the value (or histogram count) of every series of name whose
// labels include labels.
func (s Scrape) Total(name string, labels Labels) float64 {
	total := 0.0
	for _, m := range s[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range labels {
			if have[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}
