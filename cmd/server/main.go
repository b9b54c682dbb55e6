// Command server runs Prism as a long-lived HTTP service: it loads the
// configuration, assembles Prism and serves it (and its Prometheus metrics,
// on a listener of their own) until SIGTERM, then drains
// in-flight requests and image work, stops what outlives the drain, and
// shuts libvips down last.
//
//	server [flags]             serve
//	server health [flags]      exit 0 when the server at -addr answers /healthz
//	server sign [flags] URL    print URL signed with -signing-key
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

	"github.com/prism-image/prism/app"
	"github.com/prism-image/prism/config"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/internal/safe"
	"github.com/prism-image/prism/urlsign"
)

func main() {
	imaging.RunSVGRasteriserIfChild() // when started to draw an SVG
	args := os.Args[1:]
	cmd := run
	if len(args) > 0 {
		switch args[0] {
		case "health":
			cmd, args = health, args[1:]
		case "sign":
			cmd, args = sign, args[1:]
		}
	}
	if err := cmd(args); err != nil {
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
	out := app.NewLogWriter(os.Stdout, 100*time.Millisecond)
	defer out.Close()
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	prism, err := app.New(ctx, cfg, log, out)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		prism.Close(context.Background())
		return err
	}
	// Stopped before Prism closes: a scrape reads libvips' memory.
	stopMetrics := func() {}
	if cfg.MetricsAddr != "" {
		if stopMetrics, err = serveMetrics(cfg.MetricsAddr, prism.Metrics, log); err != nil {
			ln.Close()
			prism.Close(context.Background())
			return err
		}
	}
	idle, stopIdle := context.WithCancel(context.Background())
	defer stopIdle()
	safe.Go(log, "releasing memory", func() { prism.Render.ReleaseMemoryWhenIdle(idle, 5*time.Second) })
	srv := &http.Server{
		Handler:           prism.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.ReadTimeout,
		// net/http counts from the end of the headers: the body and the
		// work come before the response.
		WriteTimeout: cfg.ReadTimeout + cfg.Timeout + cfg.WriteTimeout,
		IdleTimeout:  cfg.IdleTimeout,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "addr", ln.Addr().String(), "storage", cfg.Storage, "redis", cfg.RedisURL != "", "api_keys", len(cfg.Keys()))

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		stopMetrics()
		prism.Close(context.Background())
		return err
	case <-ctx.Done():
	}

	// Stop accepting, and let requests and image work finish within the
	// timeout; then stop the work that remains, so that the requests
	// waiting for it answer 503, and shut libvips down only once every
	// pipeline has returned.
	log.Info("draining", "timeout", cfg.ShutdownTimeout.String())
	drain, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	drainErr := srv.Shutdown(drain)
	prism.Render.Close(drain)
	if drainErr != nil {
		log.Warn("requests outlived the drain: their image work was stopped", "err", drainErr)
		last, cancelLast := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelLast()
		_ = srv.Shutdown(last) // they answer at once now
		_ = srv.Close()
	}
	stopIdle()
	stopMetrics()
	prism.Close(drain)
	log.Info("stopped")
	return nil
}

// serveMetrics serves the Prometheus metrics at GET /metrics on a listener
// of their own, so that they are not public on the image port, until stop.
func serveMetrics(addr string, metrics http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	srv := &http.Server{
		Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("metrics listening", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "err", err)
		}
	}()
	return func() { _ = srv.Close() }, nil
}

// health checks the server that the configuration describes, for container
// health checks: exit status 0 when GET /healthz answers 200.
func health(args []string) error {
	cfg, err := config.Load(args, os.Stdout)
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := &http.Client{Timeout: 3 * time.Second}
	res, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: %s", res.Status)
	}
	return nil
}

// sign prints its last argument, a URL, signed with the signing key.
func sign(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: server sign [flags] URL")
	}
	cfg, err := config.Load(args[:len(args)-1], os.Stdout)
	if err != nil {
		return err
	}
	if cfg.SigningKey == "" {
		return errors.New("no signing key: set PRISM_SIGNING_KEY or -signing-key")
	}
	signed, err := urlsign.SignURL([]byte(cfg.SigningKey), args[len(args)-1])
	if err != nil {
		return err
	}
	fmt.Println(signed)
	return nil
}
