// Package config is Prism's one configuration struct and the one place it is
// loaded: every setting is a command-line flag and a PRISM_* environment
// variable of the same name (flag -max-source-bytes is PRISM_MAX_SOURCE_BYTES),
// with flags winning.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/imaging"
)

// Config is every setting of the service.
type Config struct {
	Addr            string
	Storage         string
	S3PathStyle     bool
	MaxSourcePixels int64
	MaxOutputPixels int64
	MaxSVGPixels    int64
	MaxSourceBytes  int64
	MaxFrames       int
	QualityJPEG     int
	QualityWebP     int
	QualityAVIF     int
	AVIFEffort      int
	WebPEffort      int
	BrowserTTL      time.Duration
	CDNTTL          time.Duration
	StorageTimeout  time.Duration
	ShutdownTimeout time.Duration
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	VipsConcurrency int
	LogLevel        slog.Level

	APIKeys         string // comma list
	MaxUploadBytes  int64
	PublicURL       string
	PresignExpiry   time.Duration
	RedisURL        string
	RedisTimeout    time.Duration
	MetadataTTL     time.Duration
	MissingTTL      time.Duration
	MetadataEntries int

	CacheBytes   int64
	DerivedURL   string
	Workers      int
	Queue        int
	MemoryBudget int64
	Timeout      time.Duration

	SigningKey               string
	CloudFrontDistributionID string

	MetricsAddr         string
	CloudWatchEMF       bool
	CloudWatchNamespace string
}

// WorkerCount is the number of pipelines that run at once: by default two
// per CPU, so that a CPU has a pipeline to run while another waits on
// storage or the network (measured against one per CPU: see the README's
// Performance and memory).
func (c Config) WorkerCount() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return 2 * runtime.NumCPU()
}

// QueueLength is the number of requests that may wait for a worker.
func (c Config) QueueLength() int {
	if c.Queue > 0 {
		return c.Queue
	}
	return 8 * c.WorkerCount()
}

// Keys returns the API keys, without blanks.
func (c Config) Keys() []string {
	var keys []string
	for _, k := range strings.Split(c.APIKeys, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// EnvPrefix starts every environment variable Prism reads.
const EnvPrefix = "PRISM"

func (c *Config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", ":8080", "address to listen on")
	fs.StringVar(&c.Storage, "storage", "file://./data", "where originals live: file://DIR or s3://BUCKET[/PREFIX]")
	fs.BoolVar(&c.S3PathStyle, "s3-path-style", false, "path-style S3 addressing, for MinIO and similar servers")
	fs.Int64Var(&c.MaxSourcePixels, "max-source-pixels", imaging.DefaultConfig.MaxSourcePixels, "largest source decoded, in pixels (width × height × frames)")
	fs.Int64Var(&c.MaxSVGPixels, "max-svg-pixels", imaging.DefaultConfig.MaxSVGPixels, "largest SVG drawn, in pixels at the size the output needs")
	fs.Int64Var(&c.MaxOutputPixels, "max-output-pixels", imaging.DefaultConfig.MaxOutputPixels, "largest output encoded, in pixels (width × height × frames kept)")
	fs.Int64Var(&c.MaxSourceBytes, "max-source-bytes", 50<<20, "largest source transformed, in bytes")
	fs.IntVar(&c.MaxFrames, "max-frames", imaging.DefaultConfig.MaxFrames, "frames kept when an animation stays animated")
	fs.IntVar(&c.QualityJPEG, "quality-jpeg", imaging.DefaultConfig.Quality.JPEG, "default JPEG quality")
	fs.IntVar(&c.QualityWebP, "quality-webp", imaging.DefaultConfig.Quality.WebP, "default WebP quality")
	fs.IntVar(&c.QualityAVIF, "quality-avif", imaging.DefaultConfig.Quality.AVIF, "default AVIF quality")
	fs.IntVar(&c.AVIFEffort, "avif-effort", imaging.DefaultConfig.Effort.AVIF, "AVIF encoder effort, 1 (fastest) to 9 (smallest)")
	fs.IntVar(&c.WebPEffort, "webp-effort", imaging.DefaultConfig.Effort.WebP, "WebP encoder effort, 0 (fastest) to 6 (smallest)")
	fs.DurationVar(&c.BrowserTTL, "browser-ttl", 24*time.Hour, "Cache-Control max-age of images")
	fs.DurationVar(&c.CDNTTL, "cdn-ttl", 365*24*time.Hour, "Cache-Control s-maxage of images")
	fs.DurationVar(&c.StorageTimeout, "storage-timeout", 10*time.Second, "time allowed to open and read a source before answering 504")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", time.Minute, "time to read a whole request, body included: a slow client is cut off past it (an upload of max-upload-bytes must arrive within it)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 90*time.Second, "time to send a response, on top of read-timeout for the body and timeout for the work: a client that reads too slowly is cut off past it")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 2*time.Minute, "time a kept-alive connection may wait for its next request")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "time in-flight requests and image work get to finish after SIGTERM before they are stopped")
	fs.IntVar(&c.VipsConcurrency, "vips-concurrency", 1, "threads per libvips pipeline (parallelism comes from concurrent requests)")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "debug, info, warn or error")
	fs.StringVar(&c.APIKeys, "api-keys", "", "comma-separated bearer keys for the upload API; none: writes are refused")
	fs.Int64Var(&c.MaxUploadBytes, "max-upload-bytes", 50<<20, "largest upload accepted, in bytes")
	fs.StringVar(&c.PublicURL, "public-url", "", "base URL of the images in upload API answers (default: from the request)")
	fs.DurationVar(&c.PresignExpiry, "presign-expiry", 15*time.Minute, "lifetime of direct-to-S3 upload forms")
	fs.StringVar(&c.RedisURL, "redis-url", "", "Redis for metadata (redis://host:6379/0); none: an in-process cache")
	fs.DurationVar(&c.RedisTimeout, "redis-timeout", cache.DefaultTimeout, "time allowed for one Redis call")
	fs.DurationVar(&c.MetadataTTL, "metadata-ttl", cache.DefaultTTL, "how long metadata stays cached")
	fs.DurationVar(&c.MissingTTL, "missing-ttl", cache.DefaultMissingTTL, "how long a missing key, or an original that failed analysis, is remembered")
	fs.IntVar(&c.MetadataEntries, "metadata-entries", cache.DefaultMemoryEntries, "originals the in-process metadata cache holds")
	fs.Int64Var(&c.CacheBytes, "cache-bytes", 256<<20, "bytes of rendered variants kept in memory")
	fs.StringVar(&c.DerivedURL, "derived-url", "", "shared store of rendered variants: file://DIR or s3://BUCKET[/PREFIX]; none: memory only")
	fs.IntVar(&c.Workers, "workers", 0, "pipelines that run at once (0: two per CPU)")
	fs.IntVar(&c.Queue, "queue", 0, "requests that may wait for a worker before 429 (0: 8 per worker)")
	fs.Int64Var(&c.MemoryBudget, "memory-budget", 512<<20, "bytes of pixels that running image work may hold at once (libvips' estimate); larger work waits its turn")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "time any image work (transform, analysis, upload check) may take, queueing included, before libvips stops and the answer is 503")
	fs.StringVar(&c.SigningKey, "signing-key", "", "when set, transform URLs must carry s=, an HMAC-SHA256 signature with this key")
	fs.StringVar(&c.CloudFrontDistributionID, "cloudfront-distribution-id", "", "CloudFront distribution to invalidate when an original changes")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", ":9464", "address of the Prometheus metrics listener (GET /metrics), apart from the image port; empty: no listener")
	fs.BoolVar(&c.CloudWatchEMF, "cloudwatch-emf", false, "write CloudWatch Embedded Metric Format lines to the log, one per request (on by default in Lambda)")
	fs.StringVar(&c.CloudWatchNamespace, "cloudwatch-namespace", "Prism", "CloudWatch namespace of the EMF metrics")
}

// Load reads the configuration from args (without the program name) and
// the environment. It returns flag.ErrHelp, having printed the settings to
// out, when args ask for help.
func Load(args []string, out io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.flags(fs)
	fs.Usage = func() { PrintUsage(out, fs) }
	// On -h, flag calls fs.Usage itself.
	err := ff.Parse(fs, args, ff.WithEnvVarPrefix(EnvPrefix))
	if err != nil {
		return c, err
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	positive := func(name string, v int64) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %d", name, v))
		}
	}
	positive("max-source-pixels", c.MaxSourcePixels)
	positive("max-output-pixels", c.MaxOutputPixels)
	positive("max-svg-pixels", c.MaxSVGPixels)
	positive("max-source-bytes", c.MaxSourceBytes)
	positive("max-frames", int64(c.MaxFrames))
	positive("storage-timeout", int64(c.StorageTimeout))
	positive("max-upload-bytes", c.MaxUploadBytes)
	positive("redis-timeout", int64(c.RedisTimeout))
	positive("metadata-entries", int64(c.MetadataEntries))
	positive("cache-bytes", c.CacheBytes)
	positive("timeout", int64(c.Timeout))
	positive("read-timeout", int64(c.ReadTimeout))
	positive("idle-timeout", int64(c.IdleTimeout))
	positive("write-timeout", int64(c.WriteTimeout))
	positive("memory-budget", c.MemoryBudget)
	if c.Workers < 0 || c.Queue < 0 {
		errs = append(errs, fmt.Errorf("workers and queue must not be negative"))
	}
	for name, q := range map[string]int{"quality-jpeg": c.QualityJPEG, "quality-webp": c.QualityWebP, "quality-avif": c.QualityAVIF} {
		if q < 1 || q > 100 {
			errs = append(errs, fmt.Errorf("%s must be from 1 to 100, not %d", name, q))
		}
	}
	// govips passes no AVIF effort of 0 on: libvips would use its default, 4.
	if c.AVIFEffort < 1 || c.AVIFEffort > 9 {
		errs = append(errs, fmt.Errorf("avif-effort must be from 1 to 9, not %d", c.AVIFEffort))
	}
	if c.CloudWatchEMF && (c.CloudWatchNamespace == "" || strings.HasPrefix(c.CloudWatchNamespace, "AWS/")) {
		errs = append(errs, fmt.Errorf("cloudwatch-namespace must be set, and not start with AWS/"))
	}
	if c.WebPEffort < 0 || c.WebPEffort > 6 {
		errs = append(errs, fmt.Errorf("webp-effort must be from 0 to 6, not %d", c.WebPEffort))
	}
	return errors.Join(errs...)
}

// EnvName is the environment variable that sets flag name.
func EnvName(name string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// PrintUsage lists every setting with its flag, variable and default.
func PrintUsage(out io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(out, "Usage: server [flags]\n\nEvery flag can also be set by its environment variable; flags win.")
	fmt.Fprintln(out)
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(out, "  -%s / %s (default %q)\n      %s\n", f.Name, EnvName(f.Name), f.DefValue, f.Usage)
	})
}
