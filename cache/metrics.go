package cache

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Layer labels of prism_cache_requests_total.
const (
	layerMemory   = "memory"
	layerDerived  = "derived"
	layerMetadata = "metadata"
)

// Result labels of prism_cache_requests_total. A remembered miss of the
// metadata cache (the key is known not to exist) is a hit.
const (
	resultHit   = "hit"
	resultMiss  = "miss"
	resultError = "error"
)

// Metrics counts the lookups of every cache layer and times the Redis
// calls. A nil *Metrics records nothing.
type Metrics struct {
	reg           prometheus.Registerer
	requests      *prometheus.CounterVec
	redisDuration *prometheus.HistogramVec
	redisErrors   *prometheus.CounterVec
}

// NewMetrics registers the cache metrics with reg, with a series for every
// layer, result and Redis operation from the start.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_cache_requests_total",
			Help: "Cache lookups by layer (memory: rendered variants in process; derived: the shared derived store; metadata: originals' metadata) and result.",
		}, []string{"layer", "result"}),
		redisDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "prism_redis_duration_seconds",
			Help: "Time of the metadata cache's Redis calls, by operation.",
			// A Redis call is a loopback or in-VPC round trip: tenths of
			// a millisecond, up to the 100 ms default timeout.
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}, []string{"op"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_redis_errors_total",
			Help: "Redis calls of the metadata cache that failed (timeouts, refused connections, errors), by operation.",
		}, []string{"op"}),
	}
	reg.MustRegister(m.requests, m.redisDuration, m.redisErrors)
	for _, layer := range []string{layerMemory, layerDerived, layerMetadata} {
		for _, result := range []string{resultHit, resultMiss, resultError} {
			if layer == layerMemory && result == resultError {
				continue // memory cannot fail
			}
			m.requests.WithLabelValues(layer, result)
		}
	}
	for _, op := range []string{opGet, opSet, opDelete, opPing} {
		m.redisDuration.WithLabelValues(op)
		m.redisErrors.WithLabelValues(op)
	}
	return m
}

func (m *Metrics) lookup(layer, result string) {
	if m != nil {
		m.requests.WithLabelValues(layer, result).Inc()
	}
}

// redisCall records one Redis call of op that started at start.
func (m *Metrics) redisCall(op string, start time.Time) {
	if m != nil {
		m.redisDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}
}

func (m *Metrics) redisError(op string) {
	if m != nil {
		m.redisErrors.WithLabelValues(op).Inc()
	}
}

// watch exports the bytes v holds as prism_cache_memory_bytes.
func (m *Metrics) watch(v *Variants) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "prism_cache_memory_bytes",
		Help: "Bytes of rendered variants the in-process cache holds, entry overhead included.",
	}, func() float64 { return float64(v.Bytes()) }))
}
