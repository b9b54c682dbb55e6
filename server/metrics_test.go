package server

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// Each request is counted once, under the route that answered it, with
// the method a client may not invent labels with.
func TestRequestRoutes(t *testing.T) {
	tests := []struct {
		method, path string
		status       int
		route        string
		methodLabel  string
	}{
		{"GET", "/img/cat.jpg?w=abc", 400, "transform", "GET"},
		{"HEAD", "/img/cat.jpg?w=0", 400, "transform", "HEAD"},
		{"GET", "/img/../cat.jpg", 400, "original", "GET"},
		{"GET", "/img/../cat.jpg?w=100", 400, "transform", "GET"},
		{"POST", "/v1/images", 403, "upload", "POST"},
		{"PUT", "/v1/images/cat.jpg", 403, "upload", "PUT"},
		{"DELETE", "/v1/images/cat.jpg", 403, "upload", "DELETE"},
		{"POST", "/v1/uploads", 403, "upload", "POST"},
		{"GET", "/v1/openapi.json", 200, "other", "GET"},
		{"POST", "/healthz", 405, "other", "POST"},
		{"OPTIONS", "/img/cat.jpg", 405, "other", "OPTIONS"},
		{"BREW", "/img/cat.jpg", 405, "other", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			s := New(Config{Registerer: prometheus.NewRegistry()}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			c := s.metrics.requests.WithLabelValues(tt.route, tt.methodLabel, strconv.Itoa(tt.status), noCache)
			if n := promtestutil.ToFloat64(c); n != 1 {
				t.Errorf("requests{route=%q,method=%q,code=\"%d\"} = %v, want 1", tt.route, tt.methodLabel, tt.status, n)
			}
			if n := total(t, s.metrics.requests); n != 1 {
				t.Errorf("%v requests counted over all series, want 1", n)
			}
			if h := s.metrics.duration.WithLabelValues(tt.route, noCache).(prometheus.Histogram); histogramCount(t, h) != 1 {
				t.Errorf("duration{route=%q} count %d, want 1", tt.route, histogramCount(t, h))
			}
			if w.Header().Get("X-Request-ID") == "" {
				t.Error("no X-Request-ID")
			}
		})
	}
}

// total adds up every series of c.
func total(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1000)
	c.Collect(ch)
	close(ch)
	sum := 0.0
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		sum += d.GetCounter().GetValue()
	}
	return sum
}

func histogramCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	h.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
