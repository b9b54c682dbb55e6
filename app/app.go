// Package app assembles Prism from its configuration: storage, libvips, the
// caches, the catalog, the image work, the HTTP handler and the metrics
// (one Prometheus registry, and CloudWatch EMF lines when asked for). Every entry point (the server,
// the Lambda function) starts Prism through it, so they cannot drift apart.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"

	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/catalog"
	"github.com/prism-image/prism/cdn"
	"github.com/prism-image/prism/config"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/render"
	"github.com/prism-image/prism/server"
	"github.com/prism-image/prism/storage"
)

// App is a running Prism.
type App struct {
	// flushers send work a request left in the background; see Flush.
	flushers []func(context.Context)

	Handler *server.Server
	// Metrics serves the Prometheus metrics, for a listener of their own.
	Metrics http.Handler
	// Observe writes a request's CloudWatch metrics; nil unless
	// PRISM_CLOUDWATCH_EMF is on.
	Observe func(server.RequestRecord)
	Render  *render.Renderer
	Derived *cache.Derived // nil without PRISM_DERIVED_URL
	closers []func(context.Context)
}

// gcPercent is Go's GC target unless GOGC says otherwise: Prism's heap is
// mostly short-lived request garbage beside the variant cache, and half
// the default headroom kept peak RSS under overload about 150 MB lower in
// make bench, with no loss of throughput.
const gcPercent = 50

// New starts libvips and opens everything cfg names. logs is where log
// lines go: CloudWatch metrics (EMF) are written there too, when cfg asks
// for them. Close releases it all.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, logs io.Writer) (*App, error) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	reg := newRegistry()
	a := &App{Metrics: metricsHandler(reg, log)}
	storageMetrics := storage.NewMetrics(reg)
	store, err := storage.New(ctx, cfg.Storage, cfg.S3PathStyle)
	if err != nil {
		return nil, err
	}
	store = storage.Observed(store, storageMetrics)
	if err := imaging.Startup(cfg.VipsConcurrency); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func(context.Context) { imaging.Shutdown() })
	proc := imaging.NewProcessor(imaging.Config{
		MaxSourcePixels: cfg.MaxSourcePixels,
		MaxOutputPixels: cfg.MaxOutputPixels,
		MaxSVGPixels:    cfg.MaxSVGPixels,
		MaxFrames:       cfg.MaxFrames,
		Quality:         imaging.Quality{JPEG: cfg.QualityJPEG, WebP: cfg.QualityWebP, AVIF: cfg.QualityAVIF},
		Effort:          imaging.Effort{AVIF: cfg.AVIFEffort, WebP: cfg.WebPEffort},
	})

	cacheMetrics := cache.NewMetrics(reg)
	o := cache.Options{
		TTL: cfg.MetadataTTL, MissingTTL: cfg.MissingTTL, Timeout: cfg.RedisTimeout,
		Logger: log, Metrics: cacheMetrics,
	}
	var meta cache.MetadataStore
	var index cache.VariantIndex
	var marks cache.MarkIndex
	if cfg.RedisURL == "" {
		m := cache.NewMemory(cfg.MetadataEntries, o)
		a.closers = append(a.closers, func(context.Context) { _ = m.Close() })
		meta, marks = m, cache.NewMarkMemory(cfg.MetadataEntries)
	} else {
		r, err := cache.NewRedis(cfg.RedisURL, o)
		if err != nil {
			a.Close(ctx)
			return nil, err
		}
		a.closers = append(a.closers, func(context.Context) { _ = r.Close() })
		meta, index, marks = r, r.VariantIndex(), r.MarkIndex()
	}

	variants := cache.NewVariants(cfg.CacheBytes, cacheMetrics)
	invalidators := []catalog.Invalidator{variants}
	var derived *cache.Derived
	if cfg.DerivedURL != "" {
		dstore, err := storage.New(ctx, cfg.DerivedURL, cfg.S3PathStyle)
		if err != nil {
			a.Close(ctx)
			return nil, errors.Join(errors.New("derived store"), err)
		}
		derived = cache.NewDerived(storage.Observed(dstore, storageMetrics), index, log, cacheMetrics)
		a.Derived = derived
		a.closers = append(a.closers, func(context.Context) { derived.Close() })
		invalidators = append(invalidators, derived)
	}

	cdnMetrics := cdn.NewMetrics(reg)
	if cfg.CloudFrontDistributionID != "" {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1")) // CloudFront's API region
		if err != nil {
			a.Close(ctx)
			return nil, fmt.Errorf("cloudfront: %w", err)
		}
		cf := cdn.NewCloudFront(cloudfront.NewFromConfig(awsCfg), cfg.CloudFrontDistributionID, cdn.Options{Metrics: cdnMetrics}, log)
		a.closers = append(a.closers, func(context.Context) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cf.Close(ctx)
		})
		invalidators = append(invalidators, cf)
		a.flushers = append(a.flushers, cf.Flush)
	}

	cat := catalog.New(store, meta, catalog.Config{StorageTimeout: cfg.StorageTimeout, FailureTTL: cfg.MissingTTL, Marks: marks}, invalidators...)
	a.closers = append(a.closers, func(context.Context) { cat.Close() })
	a.Render = render.New(render.Config{
		Workers:        cfg.WorkerCount(),
		Queue:          cfg.QueueLength(),
		Timeout:        cfg.Timeout,
		MaxSourceBytes: cfg.MaxSourceBytes,
		MemoryBudget:   cfg.MemoryBudget,
		Registerer:     reg,
	}, cat, proc, variants, derived, log)
	// Closed before libvips shuts down and before the stores it writes to:
	// every pipeline has returned when it has.
	a.closers = append(a.closers, a.Render.Close)
	if cfg.CloudWatchEMF {
		a.Observe = emfObserver(logs, cfg.CloudWatchNamespace, log)
	}
	a.Handler = server.New(server.Config{
		MaxUploadBytes: cfg.MaxUploadBytes,
		BrowserTTL:     cfg.BrowserTTL,
		CDNTTL:         cfg.CDNTTL,
		APIKeys:        cfg.Keys(),
		PublicURL:      cfg.PublicURL,
		PresignExpiry:  cfg.PresignExpiry,
		SigningKey:     signingKey(cfg.SigningKey),
		Registerer:     reg,
		Observe:        a.Observe,
	}, a.Render, log)
	return a, nil
}

// Flush finishes background work a request started (CDN invalidations),
// within ctx: for Lambda, which freezes the process between invocations.
func (a *App) Flush(ctx context.Context) {
	for _, f := range a.flushers {
		f(ctx)
	}
}

// Close releases what New opened, last opened first. Image work still in
// progress may finish until ctx ends, and is stopped then; libvips shuts
// down only once every pipeline has returned.
func (a *App) Close(ctx context.Context) {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i](ctx)
	}
}

func signingKey(k string) []byte {
	if k == "" {
		return nil
	}
	return []byte(k)
}
