package server

import (
	"crypto/rand"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-image/prism/render"
)

// Routes, as the request metrics and logs name them.
const (
	routeTransform = "transform"
	routeOriginal  = "original"
	routeUpload    = "upload" // every write: POST, PUT and DELETE of images, upload forms
	routeMetadata  = "metadata"
	routeHealth    = "health"
	routeOther     = "other" // the OpenAPI document, unknown routes and methods
)

// routeOf names the route that answered c's request, from the pattern
// echo matched and the method.
func routeOf(c echo.Context) string {
	m := c.Request().Method
	read := m == http.MethodGet || m == http.MethodHead
	switch c.Path() {
	case "/*":
		if !read {
			return routeOther
		}
		if r, ok := c.Get(logRoute).(string); ok {
			return r
		}
		if c.Request().URL.RawQuery != "" {
			return routeTransform
		}
		return routeOriginal
	case "/healthz":
		if read {
			return routeHealth
		}
	case "/v1/images/*":
		switch {
		case read:
			return routeMetadata
		case m == http.MethodPut || m == http.MethodDelete:
			return routeUpload
		}
	case "/v1/images", "/v1/uploads":
		if m == http.MethodPost {
			return routeUpload
		}
	}
	return routeOther
}

// methodLabel keeps the method label to the methods Prism knows: any other
// string a client sends would be a new series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// requestMetrics are the HTTP series: prism_http_requests_total and
// prism_http_request_duration_seconds.
type requestMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRequestMetrics(reg prometheus.Registerer) *requestMetrics {
	m := &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_http_requests_total",
			Help: "HTTP requests answered, by route, method, status code and cache layer (X-Prism-Cache, none when absent).",
		}, []string{"route", "method", "code", "cache"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "prism_http_request_duration_seconds",
			Help: "Time from a request's arrival to its answer, by route and cache layer.",
			// Cache hits take tenths of a millisecond, renders seconds.
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "cache"}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.requests, m.duration)
	// The series dashboards and alerts divide by exist from the start.
	for _, route := range []string{routeTransform, routeOriginal, routeUpload, routeMetadata, routeHealth, routeOther} {
		method := http.MethodGet
		if route == routeUpload {
			method = http.MethodPost
		}
		for _, code := range []string{"200", "400", "404", "429", "500", "503"} {
			m.requests.WithLabelValues(route, method, code, noCache)
		}
		m.duration.WithLabelValues(route, noCache)
	}
	for _, layer := range []render.Layer{render.LayerMiss, render.LayerMemory, render.LayerDerived, render.LayerMetadata} {
		m.requests.WithLabelValues(routeTransform, http.MethodGet, "200", string(layer))
		m.duration.WithLabelValues(routeTransform, string(layer))
	}
	m.requests.WithLabelValues(routeTransform, http.MethodGet, "304", string(render.LayerMetadata))
	return m
}

// noCache is the cache label of a response without X-Prism-Cache.
const noCache = "none"

func (m *requestMetrics) observe(rec RequestRecord) {
	m.requests.WithLabelValues(rec.Route, methodLabel(rec.Method), strconv.Itoa(rec.Status), rec.Cache).Inc()
	m.duration.WithLabelValues(rec.Route, rec.Cache).Observe(rec.Duration.Seconds())
}

// RequestRecord is what is known of an answered request: what its log line
// says, and what the request metrics count.
type RequestRecord struct {
	ID       string // X-Request-ID
	Route    string
	Method   string
	Status   int
	Cache    string // X-Prism-Cache, "none" when absent
	Duration time.Duration
	// Rendered is set when a render made the image answered: where its
	// time went, and its bytes.
	Rendered    bool
	Stages      render.Stages
	OutputBytes int
}

// maxRequestIDBytes bounds a client's X-Request-ID.
const maxRequestIDBytes = 128

// requestID is the client's X-Request-ID when it is sane (1 to 128 bytes
// of letters, digits and -_.:/+=@), else a new random one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-ID"); saneID(id) {
		return id
	}
	return rand.Text()
}

func saneID(id string) bool {
	if id == "" || len(id) > maxRequestIDBytes {
		return false
	}
	for i := range len(id) {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '=' || c == '@':
		default:
			return false
		}
	}
	return true
}
