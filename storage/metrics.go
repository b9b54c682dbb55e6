package storage

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-image/prism"
)

// Operation labels of the storage metrics. DeletePrefix counts as a delete.
var operations = []string{"stat", "open", "put", "delete"}

// Metrics times storage calls by backend and operation:
// prism_storage_duration_seconds and prism_storage_errors_total.
type Metrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// NewMetrics registers the storage metrics with reg (nowhere when it is
// nil), with a series for every backend and operation from the start.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "prism_storage_duration_seconds",
			Help: "Time of storage calls (an open until the object's headers), by backend and operation.",
			// From a warm local file (tens of microseconds) to a slow S3
			// request.
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"backend", "op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_storage_errors_total",
			Help: "Storage calls that failed in the backend (5xx: unreachable, refused, timed out), by backend and operation; a missing key is no error.",
		}, []string{"backend", "op"}),
	}
	if reg != nil {
		reg.MustRegister(m.duration, m.errors)
	}
	for _, b := range []string{"file", "s3"} {
		for _, op := range operations {
			m.duration.WithLabelValues(b, op)
			m.errors.WithLabelValues(b, op)
		}
	}
	return m
}

// Observed returns s with every call timed and its backend failures
// counted in m (s itself when m is nil). A store that presigns (S3) still
// does.
func Observed(s Storage, m *Metrics) Storage {
	if m == nil {
		return s
	}
	backend := "file"
	if _, ok := s.(*S3); ok {
		backend = "s3"
	}
	o := &observed{Storage: s, m: m, backend: backend}
	if p, ok := s.(presigner); ok {
		return &observedPresigner{observed: o, presigner: p}
	}
	return o
}

// presigner is what the S3 backend does beyond Storage.
type presigner interface {
	PresignPost(ctx context.Context, key string, maxBytes int64, expiry time.Duration) (PresignedPost, error)
	PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error)
}

type observedPresigner struct {
	*observed
	presigner
}

type observed struct {
	Storage
	m       *Metrics
	backend string
}

// done records one call of op, made under ctx, that started at start. A
// call whose caller gave up (its context canceled, not timed out) is no
// failure of the backend's.
func (o *observed) done(ctx context.Context, op string, start time.Time, err error) {
	o.m.duration.WithLabelValues(o.backend, op).Observe(time.Since(start).Seconds())
	if err != nil && prism.StatusOf(err) >= 500 && !errors.Is(context.Cause(ctx), context.Canceled) {
		o.m.errors.WithLabelValues(o.backend, op).Inc()
	}
}

func (o *observed) Open(ctx context.Context, key string) (Object, error) {
	start := time.Now()
	obj, err := o.Storage.Open(ctx, key)
	o.done(ctx, "open", start, err)
	return obj, err
}

func (o *observed) Stat(ctx context.Context, key string) (Info, error) {
	start := time.Now()
	info, err := o.Storage.Stat(ctx, key)
	o.done(ctx, "stat", start, err)
	return info, err
}

func (o *observed) Put(ctx context.Context, key string, data []byte, opts PutOptions) (Info, error) {
	start := time.Now()
	info, err := o.Storage.Put(ctx, key, data, opts)
	o.done(ctx, "put", start, err)
	return info, err
}

func (o *observed) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := o.Storage.Delete(ctx, key)
	o.done(ctx, "delete", start, err)
	return err
}

func (o *observed) DeletePrefix(ctx context.Context, prefix string) error {
	start := time.Now()
	err := o.Storage.DeletePrefix(ctx, prefix)
	o.done(ctx, "delete", start, err)
	return err
}
