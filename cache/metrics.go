package cache

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
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
	variants      atomic.Pointer[Variants] // for prism_cache_memory_bytes
	requests      *prometheus.CounterVec
	lookups       map[lookupKey]prometheus.Counter // its series, bound once: the hot path allocates nothing
	redisDuration *prometheus.HistogramVec
	redisErrors   *prometheus.CounterVec
}

// NewMetrics registers the cache metrics with reg (nowhere when it is
// nil), with a series for every layer, result and Redis operation from the
// start.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
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
	if reg != nil {
		reg.MustRegister(m.requests, m.redisDuration, m.redisErrors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prism_cache_memory_bytes",
			Help: "Bytes of rendered variants the in-process cache holds, entry overhead included.",
		}, func() float64 {
			if v := m.variants.Load(); v != nil {
				return float64(v.Bytes())
			}
			return 0
		}))
	}
	m.lookups = map[lookupKey]prometheus.Counter{}
	for _, layer := range []string{layerMemory, layerDerived, layerMetadata} {
		for _, result := range []string{resultHit, resultMiss, resultError} {
			if layer == layerMemory && result == resultError {
				continue // memory cannot fail
			}
			m.lookups[lookupKey{layer, result}] = m.requests.WithLabelValues(layer, result)
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
		m.lookups[lookupKey{layer, result}].Inc()
	}
}

type lookupKey struct{ layer, result string }

// timing is a go-redis hook that times every command and pipeline sent,
// by the operation its first command does.
type timing struct{ m *Metrics }

// commandOps maps the Redis commands Prism sends to the operations of its
// metrics. Others (a connection's handshake) are not timed.
var commandOps = map[string]string{
	"get": opGet, "sismember": opGet,
	"set": opSet, "sadd": opSet, "expire": opSet,
	"del": opDelete, "scan": opDelete,
	"ping": opPing,
}

func (t timing) DialHook(next redis.DialHook) redis.DialHook { return next }

func (t timing) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		t.observe(cmd.Name(), start)
		return err
	}
}

func (t timing) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		for _, c := range cmds {
			if _, ok := commandOps[c.Name()]; ok { // past MULTI
				t.observe(c.Name(), start)
				break
			}
		}
		return err
	}
}

func (t timing) observe(command string, start time.Time) {
	if op, ok := commandOps[command]; ok {
		t.m.redisDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}
}

func (m *Metrics) redisError(op string) {
	if m != nil {
		m.redisErrors.WithLabelValues(op).Inc()
	}
}

// watch exports the bytes v holds as prism_cache_memory_bytes.
func (m *Metrics) watch(v *Variants) {
	if m != nil {
		m.variants.Store(v)
	}
}
