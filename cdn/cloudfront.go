// Package cdn connects Prism to CloudFront, which caches every variant at
// the edge: it invalidates an original's variants when the original changes,
// and holds the viewer-request function (viewer-request.js) that normalises
// the cache key.
package cdn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-image/prism/internal/safe"
	"github.com/prism-image/prism/storage"
)

// Options tune how invalidations are batched and retried.
type Options struct {
	// Window is how long a burst is gathered into one invalidation.
	Window time.Duration
	// MaxPaths bounds the paths of one invalidation. CloudFront allows 15
	// wildcard paths in progress per distribution, and each original takes
	// one.
	MaxPaths int
	// Backoff is the first retry delay; it doubles up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// Attempts bounds the tries of one batch before it is given up (logged).
	Attempts int
	// MaxPending bounds the paths waiting to be sent. Past it they collapse
	// into one invalidation of everything (/*): a mass purge (a watermark
	// drawn on thousands of originals, a bulk delete) would otherwise queue
	// thousands of wildcard paths, which CloudFront bills per path and runs
	// 15 at a time.
	MaxPending int
	// Metrics counts the invalidations; nil: they are not counted.
	Metrics *Metrics
}

// Metrics counts invalidation batches by how they ended, in
// prism_cdn_invalidations_total: ok (at the first try), retried (created
// after failed tries) or failed (given up). It exists without a
// distribution too, so that dashboards find the series.
type Metrics struct{ sent *prometheus.CounterVec }

// NewMetrics registers the invalidation counter with reg (nowhere when it
// is nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{sent: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "prism_cdn_invalidations_total",
		Help: "CloudFront invalidation batches by outcome: ok at the first try, retried (created after failed tries), failed (given up).",
	}, []string{"result"})}
	if reg != nil {
		reg.MustRegister(m.sent)
	}
	for _, r := range []string{"ok", "retried", "failed"} {
		m.sent.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) count(result string) {
	if m != nil {
		m.sent.WithLabelValues(result).Inc()
	}
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = 2 * time.Second
	}
	if o.MaxPaths <= 0 {
		o.MaxPaths = 15
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.Attempts <= 0 {
		o.Attempts = 10
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 150
	}
	return o
}

// CloudFront invalidates the variants of changed originals. Invalidate only
// records a key: the calls to CloudFront happen in the background, gathered
// into batches, retried with backoff, and never delay an upload's answer.
type CloudFront struct {
	client       *cloudfront.Client
	distribution string
	o            Options
	log          *slog.Logger

	mu      sync.Mutex
	pending []string // paths, in order, without duplicates
	queued  map[string]bool
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// NewCloudFront invalidates distribution through client (made from the
// standard AWS configuration; CloudFront's API lives in us-east-1).
func NewCloudFront(client *cloudfront.Client, distribution string, o Options, log *slog.Logger) *CloudFront {
	c := &CloudFront{
		client: client, distribution: distribution, o: o.withDefaults(), log: log,
		queued: map[string]bool{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go c.run()
	return c
}

// Path is the invalidation path that covers every query-string variant of
// key: the escaped path with a trailing wildcard.
func Path(key string) string {
	return "/" + storage.EscapePath(key) + "*"
}

// everything is the path that invalidates the whole distribution.
const everything = "/*"

// Invalidate records that key changed. It implements catalog.Invalidator.
func (c *CloudFront) Invalidate(_ context.Context, key string) {
	p := Path(key)
	c.mu.Lock()
	switch {
	case c.queued[everything] || c.queued[p]: // already covered
	case len(c.pending) >= c.o.MaxPending:
		c.log.Warn("cdn: too many paths to invalidate one by one; invalidating everything", "distribution", c.distribution, "pending", len(c.pending)+1)
		c.pending, c.queued = []string{everything}, map[string]bool{everything: true}
	default:
		c.queued[p] = true
		c.pending = append(c.pending, p)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Flush sends what is pending now, retrying until ctx ends: for a process
// that may be frozen between requests (Lambda), where the background window
// would not run.
func (c *CloudFront) Flush(ctx context.Context) {
	for batch := c.take(); len(batch) > 0; batch = c.take() {
		c.send(batch, ctx.Done())
	}
}

// Close sends what is pending, giving up after ctx ends.
func (c *CloudFront) Close(ctx context.Context) {
	close(c.stop)
	select {
	case <-c.done:
	case <-ctx.Done():
	}
}

func (c *CloudFront) run() {
	defer close(c.done)
	for {
		select {
		case <-c.wake:
		case <-c.stop:
			c.drain()
			return
		}
		// Gather the rest of the burst.
		select {
		case <-time.After(c.o.Window):
		case <-c.stop:
			c.drain()
			return
		}
		for {
			batch := c.take()
			if len(batch) == 0 {
				break
			}
			// A panic loses this batch, never the process or the loop.
			_ = safe.Do(c.log, "CloudFront invalidation", func() { c.send(batch, c.stop) })
		}
	}
}

// drain sends what is pending once, without waiting for retries.
func (c *CloudFront) drain() {
	for batch := c.take(); len(batch) > 0; batch = c.take() {
		c.send(batch, nil)
	}
}

// take removes up to MaxPaths pending paths.
func (c *CloudFront) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(c.pending), c.o.MaxPaths)
	batch := c.pending[:n:n]
	c.pending = c.pending[n:]
	for _, p := range batch {
		delete(c.queued, p)
	}
	return batch
}

// send creates one invalidation, retrying with exponential backoff and
// jitter until it succeeds, Attempts run out, or stop closes.
func (c *CloudFront) send(paths []string, stop <-chan struct{}) {
	ref := make([]byte, 8)
	_, _ = rand.Read(ref)
	in := &cloudfront.CreateInvalidationInput{
		DistributionId: aws.String(c.distribution),
		InvalidationBatch: &types.InvalidationBatch{
			// One reference for every try: CloudFront then treats a retry
			// of a batch it did receive as the same invalidation.
			CallerReference: aws.String("prism-" + time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(ref)),
			Paths:           &types.Paths{Quantity: aws.Int32(int32(len(paths))), Items: paths},
		},
	}
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := c.client.CreateInvalidation(ctx, in)
		cancel()
		if err == nil {
			c.log.Info("cdn invalidation created", "distribution", c.distribution, "paths", len(paths), "id", aws.ToString(out.Invalidation.Id))
			if attempt == 1 {
				c.o.Metrics.count("ok")
			} else {
				c.o.Metrics.count("retried")
			}
			return
		}
		if attempt >= c.o.Attempts {
			c.log.Error("cdn invalidation failed; giving up", "distribution", c.distribution, "paths", paths, "attempts", attempt, "err", err)
			c.o.Metrics.count("failed")
			return
		}
		delay := time.Duration(float64(c.o.Backoff) * math.Pow(2, float64(attempt-1)))
		delay = min(delay, c.o.MaxBackoff)
		delay = delay/2 + time.Duration(randFloat()*float64(delay/2))
		c.log.Warn("cdn invalidation failed; retrying", "distribution", c.distribution, "paths", len(paths), "attempt", attempt, "in", delay.String(), "err", err)
		select {
		case <-time.After(delay):
		case <-stop:
			c.o.Metrics.count("failed")
			return
		}
	}
}

func randFloat() float64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return float64(uint64(b[0])<<8|uint64(b[1])) / 65536
}
