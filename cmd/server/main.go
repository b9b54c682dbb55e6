// Command server runs Prism as a long-lived HTTP service: it loads the
// configuration, starts libvips, opens storage and serves the URL API until
// SIGTERM, then drains in-flight requests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/catalog"
	"github.com/prism-image/prism/config"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/server"
	"github.com/prism-image/prism/storage"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg, err := config.Load(args, os.Stdout)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	store, err := storage.New(ctx, cfg.Storage, cfg.S3PathStyle)
	if err != nil {
		return err
	}
	if err := imaging.Startup(cfg.VipsConcurrency); err != nil {
		return err
	}
	defer imaging.Shutdown()

	proc := imaging.NewProcessor(imaging.Config{
		MaxSourcePixels: cfg.MaxSourcePixels,
		MaxFrames:       cfg.MaxFrames,
		Quality:         imaging.Quality{JPEG: cfg.QualityJPEG, WebP: cfg.QualityWebP, AVIF: cfg.QualityAVIF},
	})
	meta, err := metadataStore(cfg, log)
	if err != nil {
		return err
	}
	defer meta.Close()
	cat := catalog.New(store, meta, proc, cfg.MaxSourceBytes, log)
	defer cat.Close() // before libvips shuts down: it may still be learning an original
	handler := server.New(server.Config{
		MaxSourceBytes: cfg.MaxSourceBytes,
		MaxUploadBytes: cfg.MaxUploadBytes,
		BrowserTTL:     cfg.BrowserTTL,
		CDNTTL:         cfg.CDNTTL,
		StorageTimeout: cfg.StorageTimeout,
		APIKeys:        cfg.Keys(),
		PublicURL:      cfg.PublicURL,
		PresignExpiry:  cfg.PresignExpiry,
	}, cat, proc, log)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "addr", ln.Addr().String(), "storage", cfg.Storage, "redis", cfg.RedisURL != "", "api_keys", len(cfg.Keys()))

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("draining", "timeout", cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	log.Info("stopped")
	return nil
}

// metadataStore is Redis when configured, else a bounded in-process cache.
func metadataStore(cfg config.Config, log *slog.Logger) (interface {
	cache.MetadataStore
	Close() error
}, error) {
	o := cache.Options{
		TTL: cfg.MetadataTTL, MissingTTL: cfg.MissingTTL, Timeout: cfg.RedisTimeout,
		Logger: log, Registerer: prometheus.DefaultRegisterer,
	}
	if cfg.RedisURL == "" {
		return cache.NewMemory(cfg.MetadataEntries, o), nil
	}
	return cache.NewRedis(cfg.RedisURL, o)
}
