// Package harness is Prism's load harness: it starts the real server binary
// on its embedded defaults, measures the in-process libvips limit, drives
// the server over loopback HTTP through five scenarios and reports the
// figures as a Markdown table, next to the hot path's targets.
// cmd/loadbench is its command line (make bench); harness_test.go runs it
// briefly as a smoke test.
package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/internal/testutil"
)

// PhotoName is the 17.6 MP reference photo in testdata/images.
const PhotoName = "pexels-magda-ehlers-5141x3434.jpg"

// Config is one run of the harness.
type Config struct {
	Server   string        // the server binary (make build makes bin/server)
	Image    string        // the source photo; empty: testdata/images/PhotoName
	Duration time.Duration // per scenario, and for the in-process limit

	Clients         int // (b) cached hits and (c) 304 revalidations
	UncachedClients int // (a) uncached transforms
	OverloadClients int // (d) overload
	UploadClients   int // (e) uploads
	LimitWorkers    int // goroutines of the in-process limit

	Timeout      time.Duration // per HTTP request, transport included
	RecoveryWait time.Duration // after (d): longest wait for RSS to fall under RecoveryRSS

	Flags    string    // the command line, quoted in the report
	Progress io.Writer // progress lines; nil discards them
}

// RecoveryRSS is the resident memory the server must fall back under after
// the overload scenario (target: 200 MB).
const RecoveryRSS = 200 * MB

// MB is the unit of every memory figure: a decimal megabyte.
const MB = 1_000_000

// DefaultConfig is the configuration of make bench.
func DefaultConfig() Config {
	n := runtime.NumCPU()
	return Config{
		Server:          "bin/server",
		Duration:        10 * time.Second,
		Clients:         32,
		UncachedClients: 2 * n,
		OverloadClients: 64,
		UploadClients:   n,
		LimitWorkers:    n,
		Timeout:         30 * time.Second,
		RecoveryWait:    30 * time.Second,
	}
}

// Scenario names, as the report's rows start.
const (
	Uncached     = "(a) uncached"
	CachedHits   = "(b) cached hits"
	Revalidation = "(c) 304 revalidations"
	Overload     = "(d) overload"
	Uploads      = "(e) uploads"
)

// Scenarios lists every scenario in the order the harness runs them.
var Scenarios = []string{Uncached, CachedHits, Revalidation, Overload, Uploads}

// Run measures the in-process limit and then every scenario against a
// freshly started server, and returns the report. The server is stopped
// and its data directory removed before Run returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "loadbench: "+format+"\n", args...)
		}
	}
	photoPath := cfg.Image
	if photoPath == "" {
		photoPath = filepath.Join(testutil.Root(), "testdata", "images", PhotoName)
	}
	photo, err := os.ReadFile(photoPath)
	if err != nil {
		return nil, fmt.Errorf("reading the source photo: %w", err)
	}
	serverPath, err := filepath.Abs(cfg.Server)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(serverPath); err != nil {
		return nil, fmt.Errorf("the server binary: %w (make build makes bin/server)", err)
	}

	rep := newReport(cfg, serverPath, photoPath, photo)

	// The data directory: the photo at bench/photo.jpg, and uploads beside it.
	dir, err := os.MkdirTemp("", "prism-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "bench"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench", "photo.jpg"), photo, 0o644); err != nil {
		return nil, err
	}
	apiKey := randomHex(16)

	logf("starting %s on a free loopback port (data in %s)", cfg.Server, dir)
	proc, err := testutil.StartServer(serverPath,
		"PRISM_STORAGE=file://"+dir,
		"PRISM_API_KEYS="+apiKey,
		"MALLOC_ARENA_MAX=2",
	)
	if err != nil {
		return nil, err
	}
	defer proc.Stop()
	if err := loopbackOnly(proc.URL); err != nil {
		return nil, err
	}
	pid := proc.Cmd.Process.Pid
	fail := func(err error) (*Report, error) {
		return nil, fmt.Errorf("%w\nserver output (tail):\n%s", err, tailLines(proc.Output(), 20))
	}

	time.Sleep(200 * time.Millisecond) // let start-up allocations settle
	if rep.IdleRSS, err = readRSS(pid); err != nil {
		return fail(err)
	}
	logf("idle RSS %s", mb(rep.IdleRSS))

	// The libvips limit first, while the server is idle.
	logf("in-process libvips limit: %d goroutines for %v", cfg.LimitWorkers, cfg.Duration)
	if rep.Limit, err = measureLimit(ctx, photo, cfg.LimitWorkers, cfg.Duration); err != nil {
		return fail(err)
	}
	logf("limit: %.1f images/s", rep.Limit.PerSecond())
	if h, err := imaging.Probe(photo); err == nil {
		rep.SourceW, rep.SourceH = h.Width, h.Height
	}

	d := newDriver(cfg, proc.URL, pid)
	defer d.close()
	photoURL := proc.URL + "/bench/photo.jpg"

	// Every uncached request, of (a) and (d), is a variant never rendered.
	var pool variantPool
	uncached := func(int64) (*http.Request, func(int), error) {
		n := pool.take()
		w, q := DistinctVariant(n)
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s?w=%d&quality=%d", photoURL, w, q), nil)
		return req, func(status int) {
			if status == http.StatusTooManyRequests {
				pool.give(n) // refused before rendering: still never rendered
			}
		}, err
	}
	hitURL := photoURL + "?w=400&quality=80"

	run := func(name, desc string, clients int, mk requester) (*Result, error) {
		logf("%s: %d clients for %v", name, clients, cfg.Duration)
		r, err := d.drive(ctx, name, desc, clients, mk)
		if err != nil {
			return nil, err
		}
		logf("%s: %d requests, %.1f req/s, p99 %s ms, %s", name, r.Requests, r.PerSecond(), ms(r.P99), r.statusText())
		rep.Scenarios = append(rep.Scenarios, r)
		return r, nil
	}

	if _, err := run(Uncached, "`?w=<distinct>&quality=80`: every request a new variant", cfg.UncachedClients, uncached); err != nil {
		return fail(err)
	}

	etag, err := d.warm(ctx, hitURL)
	if err != nil {
		return fail(err)
	}
	if _, err := run(CachedHits, "`?w=400&quality=80`, warmed first", cfg.Clients, func(int64) (*http.Request, func(int), error) {
		req, err := http.NewRequest(http.MethodGet, hitURL, nil)
		return req, nil, err
	}); err != nil {
		return fail(err)
	}
	if _, err := run(Revalidation, "`?w=400&quality=80` with `If-None-Match: <its ETag>`", cfg.Clients, func(int64) (*http.Request, func(int), error) {
		req, err := http.NewRequest(http.MethodGet, hitURL, nil)
		if err == nil {
			req.Header.Set("If-None-Match", etag)
		}
		return req, nil, err
	}); err != nil {
		return fail(err)
	}

	over, err := run(Overload, "uncached `?w=<distinct>&quality=80` at overload", cfg.OverloadClients, uncached)
	if err != nil {
		return fail(err)
	}
	logf("waiting up to %v for RSS to fall under %s", cfg.RecoveryWait, mb(RecoveryRSS))
	rep.Recovery = waitRecovery(ctx, pid, over.end, cfg.RecoveryWait)

	if _, err := run(Uploads, "`POST /v1/images?key=bench/up-<n>.jpg`, raw body: the photo", cfg.UploadClients, func(n int64) (*http.Request, func(int), error) {
		req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/v1/images?key=bench/up-%d.jpg", proc.URL, n), bytes.NewReader(photo))
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Content-Type", "image/jpeg")
		req.Header.Set("Authorization", "Bearer "+apiKey)
		return req, nil, nil
	}); err != nil {
		return fail(err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if _, err := readRSS(pid); err != nil {
		return fail(fmt.Errorf("the server is no longer running: %w", err))
	}
	return rep, nil
}

func (c *Config) check() error {
	switch {
	case c.Server == "":
		return errors.New("no server binary")
	case c.Duration <= 0:
		return errors.New("the duration must be positive")
	case c.Clients < 1 || c.UncachedClients < 1 || c.OverloadClients < 1 || c.UploadClients < 1 || c.LimitWorkers < 1:
		return errors.New("every client count must be at least 1")
	case c.Timeout <= 0:
		return errors.New("the request timeout must be positive")
	case c.RecoveryWait < 0:
		return errors.New("the recovery wait cannot be negative")
	}
	return nil
}

// DistinctVariant is the n-th uncached variant: widths 200 to 600 but 400
// (all decode at 1/8 scale from the 5141 px photo, as w=400 does, so each
// costs about what ?w=400 costs; 400 itself is the cached-hit variant),
// first at quality 80, then at 81, 79, 82, 78… up to 100 and down to 60, so
// that the first 16,400 are all distinct.
func DistinctVariant(n int64) (width, quality int) {
	const widths = 400 // 200..600 without 400
	width = 200 + int(n%widths)
	if width >= 400 {
		width++
	}
	k := int((n / widths) % 41) // 80±20
	if k%2 == 1 {
		return width, 80 + (k+1)/2
	}
	return width, 80 - k/2
}

// variantPool hands out the numbers of distinct variants (DistinctVariant)
// to the uncached scenarios. A request refused with 429 was never rendered,
// so its number goes back to the pool: the distinct space is spent on
// renders only, however many requests an overload refuses.
type variantPool struct {
	mu   sync.Mutex
	next int64
	free []int64
}

func (p *variantPool) take() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		v := p.free[n-1]
		p.free = p.free[:n-1]
		return v
	}
	p.next++
	return p.next - 1
}

func (p *variantPool) give(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, n)
}

// loopbackOnly refuses to load anything but this machine.
func loopbackOnly(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to load %s: not a loopback address", base)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
