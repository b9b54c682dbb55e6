package server

import (
	"crypto/rand"
	"net/http"
	"strconv"
	"sync"
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
	routeOther     = "other" // the OpenAPI document, methods a path does not take
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
	// bound holds the series already used, so that a request finds its
	// own without hashing labels or allocating.
	mu    sync.RWMutex
	bound map[seriesKey]boundSeries
}

type seriesKey struct {
	route, method, cache string
	code                 int
}

type boundSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newRequestMetrics(reg prometheus.Registerer) *requestMetrics {
	m := &requestMetrics{
		bound: map[seriesKey]boundSeries{},
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
	// The series dashboards and alerts divide by exist from the start: the
	// answers each route gives most, its refusals and its failures.
	type series struct{ route, method, code, cache string }
	var all []series
	for _, route := range []string{routeTransform, routeOriginal, routeUpload, routeMetadata, routeHealth, routeOther} {
		method := http.MethodGet
		if route == routeUpload {
			method = http.MethodPost
		}
		for _, code := range []string{"400", "404", "429", "500", "503"} {
			all = append(all, series{route, method, code, noCache})
		}
	}
	layer := func(l render.Layer) string { return string(l) }
	all = append(all,
		series{routeTransform, http.MethodGet, "200", layer(render.LayerMiss)},
		series{routeTransform, http.MethodGet, "200", layer(render.LayerMemory)},
		series{routeTransform, http.MethodGet, "200", layer(render.LayerDerived)},
		series{routeTransform, http.MethodGet, "304", layer(render.LayerMetadata)},
		series{routeTransform, http.MethodGet, "404", layer(render.LayerMissing)},
		series{routeOriginal, http.MethodGet, "200", layer(render.LayerOriginal)},
		series{routeOriginal, http.MethodGet, "304", layer(render.LayerMetadata)},
		series{routeOriginal, http.MethodGet, "404", layer(render.LayerMissing)},
		series{routeUpload, http.MethodPost, "201", noCache},
		series{routeMetadata, http.MethodGet, "200", noCache},
		series{routeHealth, http.MethodGet, "200", noCache},
	)
	for _, s := range all {
		m.requests.WithLabelValues(s.route, s.method, s.code, s.cache)
		m.duration.WithLabelValues(s.route, s.cache)
	}
	return m
}

// noCache is the cache label of a response without X-Prism-Cache.
const noCache = "none"

func (m *requestMetrics) observe(rec RequestRecord) {
	k := seriesKey{rec.Route, methodLabel(rec.Method), rec.Cache, rec.Status}
	m.mu.RLock()
	b, ok := m.bound[k]
	m.mu.RUnlock()
	if !ok {
		// Bounded: routes, methods, layers and the statuses Prism answers.
		b = boundSeries{
			requests: m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(k.code), k.cache),
			duration: m.duration.WithLabelValues(k.route, k.cache),
		}
		m.mu.Lock()
		m.bound[k] = b
		m.mu.Unlock()
	}
	b.requests.Inc()
	b.duration.Observe(rec.Duration.Seconds())
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
	// Rendered is set when this request's own render made the image
	// answered (not one it joined): Stages is where its time went.
	Rendered    bool
	Stages      render.Stages
	OutputBytes int
}

// maxRequestIDBytes bounds a client's X-Request-ID.
const maxRequestIDBytes = 128

// requestID is the client's X-Request-ID when it is sane (1 to 128 bytes
// of letters, digits and -_.:/+=@), else a new random one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-ID"); ValidRequestID(id) {
		return id
	}
	return rand.Text()
}

// ValidRequestID says whether id may be taken as a request's ID.
func ValidRequestID(id string) bool {
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
