// Package render owns all of Prism's image work: transforms, metadata
// analysis and upload validation. Every decode goes through one gate
// (workers, a queue, 429 beyond it) and one deadline that stops libvips
// itself; identical work is merged and runs under a context of its own,
// not its first caller's. It answers variants from the cache layers in
// order (cached metadata, memory, the derived store, the pipeline) and
// originals through the catalog, which it is the one way to: the server
// and the Lambda adapter ask it alone. It speaks no HTTP: the server maps
// its results to responses.
package render

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/catalog"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/internal/safe"
)

// Config bounds the work.
type Config struct {
	Workers int // decodes that run at once; at least 1
	Queue   int // work that may wait for a worker; more is a 429
	// Timeout bounds each piece of work, its wait for a worker included;
	// past it libvips stops and the answer is a 503.
	Timeout        time.Duration
	MaxSourceBytes int64 // largest original read to decode it
	// MemoryBudget bounds the pixel memory (libvips' estimate of it) that
	// running work may hold at once.
	MemoryBudget int64
	// Registerer is where the image work's metrics register; nil: nowhere.
	Registerer prometheus.Registerer
}

// Layer names what answered a request.
type Layer string

const (
	LayerMetadata Layer = "hit-metadata" // cached metadata: a 304 or a refusal, no storage
	LayerMissing  Layer = "hit-missing"  // a recent miss: 404, no storage
	LayerMemory   Layer = "hit-memory"   // the in-process variant cache
	LayerDerived  Layer = "hit-derived"  // the shared derived store
	LayerMiss     Layer = "miss"         // storage was asked; for a variant, the pipeline ran
	LayerOriginal Layer = "original"     // the original's bytes, as stored
)

// Renderer does Prism's image work. It is safe for concurrent use.
type Renderer struct {
	cfg      Config
	catalog  *catalog.Catalog
	proc     *imaging.Processor
	variants *cache.Variants
	derived  *cache.Derived // nil: none configured
	log      *slog.Logger

	gate    *gate
	flight  singleflight.Group
	metrics *metrics

	// root is the parent of every piece of work; Close cancels it.
	root     context.Context
	stopWork context.CancelCauseFunc
	mu       sync.Mutex // guards closed and the Add of work
	closed   bool
	work     sync.WaitGroup

	worked atomic.Int64 // pieces of work admitted, for ReleaseMemoryWhenIdle
}

// New returns a Renderer over the originals of cat, transforming them with
// proc and keeping renderings in variants and, when not nil, derived.
func New(cfg Config, cat *catalog.Catalog, proc *imaging.Processor, variants *cache.Variants, derived *cache.Derived, log *slog.Logger) *Renderer {
	root, stop := context.WithCancelCause(context.Background())
	g := newGate(cfg.Workers, cfg.Queue, cfg.MemoryBudget)
	return &Renderer{
		cfg: cfg, catalog: cat, proc: proc, variants: variants, derived: derived, log: log,
		gate: g, metrics: newMetrics(cfg.Registerer, g),
		root: root, stopWork: stop,
	}
}

var errShutdown = errors.New("shutting down")

// Close refuses new work, lets the work in progress finish until ctx ends,
// then stops what remains (libvips included) and waits for every pipeline
// to return: libvips may be shut down once Close has returned. Calling it
// again returns at once.
func (r *Renderer) Close(ctx context.Context) {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.work.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		r.log.Warn("stopping the image work still in progress", "cause", context.Cause(ctx))
		r.stopWork(errShutdown)
		<-done
	}
	r.stopWork(errShutdown)
}

// begin starts a piece of work: its context ends after the timeout, at
// Close, or with parent (when not nil). end must be called when it is done.
func (r *Renderer) begin(parent context.Context) (work context.Context, end func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil, prism.Fail(prism.CodeUnavailable, "the server is shutting down; retry shortly").WithCause(errShutdown)
	}
	r.work.Add(1)
	ctx, cancel := context.WithTimeout(r.root, r.cfg.Timeout)
	stop := func() bool { return true }
	if parent != nil {
		stop = context.AfterFunc(parent, cancel)
	}
	return ctx, func() { stop(); cancel(); r.work.Done() }, nil
}

// merged runs fn once for every identical call (same id) in flight, under
// its own context, within the gate. A caller waits for it no longer than
// its own ctx; the work carries on for the others and for the caches.
func (r *Renderer) merged(ctx context.Context, id string, fn func(work context.Context) (any, error)) (any, error) {
	ch := r.flight.DoChan(id, func() (any, error) { return r.admitted(nil, fn) })
	select {
	case res := <-ch:
		return res.Val, res.Err
	case <-ctx.Done():
		return nil, errDeadline()
	}
}

// admitted runs fn as a piece of work (see begin) once the gate lets it in,
// turning a panic in it into a 500.
func (r *Renderer) admitted(parent context.Context, fn func(work context.Context) (any, error)) (v any, err error) {
	work, end, err := r.begin(parent)
	if err != nil {
		return nil, err
	}
	defer end()
	admitErr := r.gate.do(work, func() {
		r.worked.Add(1)
		if p := safe.Do(r.log, "image work", func() { v, err = fn(work) }); p != nil {
			v, err = nil, prism.Fail(prism.CodeInternal, "internal error").WithCause(p)
		}
	})
	if admitErr != nil {
		return nil, admitErr
	}
	return v, err
}

// background runs fn as a piece of work in its own goroutine, through the
// gate like any other: it waits its turn in the queue, and is dropped when
// the queue is full.
func (r *Renderer) background(id string, fn func(work context.Context) (any, error)) {
	// The merged call is not waited for: its result reaches the callers
	// that joined it, if any.
	r.flight.DoChan(id, func() (any, error) { return r.admitted(nil, fn) })
}

// errDeadline answers a caller whose deadline passed while it waited.
func errDeadline() error {
	return prism.Fail(prism.CodeUnavailable, "the image work could not be done in time; retry shortly")
}

func notFound() error { return prism.Fail(prism.CodeNotFound, "no such image") }
