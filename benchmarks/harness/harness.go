// Package harness is Prism's load harness: it starts the real server binary
// on its embedded defaults and drives it over loopback HTTP through the
// uncached, cached, revalidation, overload and upload scenarios; measures,
// for each, the in-process libvips limit (libvips' own thumbnail path with
// Prism's save parameters); and reports Prism over that limit as a Markdown
// table, next to the targets. Other servers (an earlier Prism, imgproxy)
// can run the uncached scenarios beside it. cmd/loadbench is its command
// line (make bench); harness_test.go runs it briefly as a smoke test.
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
	"sync/atomic"
	"time"

	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/internal/testutil"
)

// PhotoName is the 17.6 MP reference photo in testdata/images.
const PhotoName = "pexels-magda-ehlers-5141x3434.jpg"

// Config is one run of the harness.
type Config struct {
	Server   string        // the server binary (make build makes bin/server)
	Duration time.Duration // per scenario, and per goroutine count of a limit

	Clients         int // cached hits and 304 revalidations
	UncachedClients int // uncached transforms; 0: each Transform's own
	OverloadClients int
	UploadClients   int
	// Rounds is how many parts a scenario with libvips work is driven in,
	// each between two measurements of its limit.
	Rounds int
	// LimitMultiples are the goroutine counts a limit is measured at, as
	// multiples of the core count; the fastest is the limit (Limits.Best).
	LimitMultiples []int

	// Other servers that run the uncached scenarios too, each started
	// beside Prism and measured right after it: a Prism binary built from
	// another commit, and imgproxy.
	Baseline string
	Imgproxy string

	// The encoders' bytes, time and quality (butteraugli) are measured at
	// these widths, runs times each; no widths: not measured.
	QualityWidths []int
	QualityRuns   int

	Timeout      time.Duration // per HTTP request, transport included
	RecoveryWait time.Duration // after overload: longest wait for RSS to fall under RecoveryRSS

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
		OverloadClients: 64,
		UploadClients:   n,
		Rounds:          4,
		LimitMultiples:  []int{1, 2, 3},
		QualityWidths:   []int{400, 1200},
		QualityRuns:     3,
		Timeout:         30 * time.Second,
		RecoveryWait:    30 * time.Second,
	}
}

// Scenario names, as the report's rows start, after the uncached
// transforms' (a) to (e).
const (
	CachedHits   = "(f) cached hits"
	Revalidation = "(g) 304 revalidations"
	Overload     = "(h) overload"
	Uploads      = "(i) uploads"
)

// UncachedName is the report's name of the i-th uncached transform.
func UncachedName(i int) string { return fmt.Sprintf("(%c) %s", 'a'+i, Transforms[i].Name) }

// Scenarios lists every scenario in the order the harness runs them.
func Scenarios() []string {
	var names []string
	for i := range Transforms {
		names = append(names, UncachedName(i))
	}
	return append(names, CachedHits, Revalidation, Overload, Uploads)
}

// Run starts the server (and any peers), then measures every scenario and
// its limit, and returns the report. The servers are stopped and their
// data directory removed before Run returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "loadbench: "+format+"\n", args...)
		}
	}
	serverPath, err := filepath.Abs(cfg.Server)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(serverPath); err != nil {
		return nil, fmt.Errorf("the server binary: %w (make build makes bin/server)", err)
	}

	// The data directory: every source at bench/<its name>, uploads beside.
	dir, err := os.MkdirTemp("", "prism-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sources := map[string][]byte{}
	for _, t := range Transforms {
		if sources[t.Source] != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(testutil.Root(), "testdata", "images", t.Source))
		if err != nil {
			return nil, fmt.Errorf("reading a source: %w", err)
		}
		sources[t.Source] = b
		if err := writeFile(filepath.Join(dir, t.key()), b); err != nil {
			return nil, err
		}
	}
	photo := sources[PhotoName]
	rep := newReport(cfg, serverPath)
	apiKey := randomHex(16)

	logf("starting %s on a free loopback port (data in %s)", cfg.Server, dir)
	proc, err := testutil.StartServer(serverPath, prismEnv(dir, apiKey)...)
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
	peers, err := startPeers(cfg, dir)
	for _, p := range peers {
		defer p.proc.Stop()
	}
	if err != nil {
		return fail(err)
	}

	time.Sleep(200 * time.Millisecond) // let start-up allocations settle
	if rep.IdleRSS, err = readRSS(pid); err != nil {
		return fail(err)
	}
	logf("idle RSS %s", mb(rep.IdleRSS))

	d := newDriver(cfg, pid)
	defer d.close()
	runOn := func(d *driver, name, desc string, clients int, length time.Duration, mk requester) (*Result, error) {
		logf("%s: %d clients for %v", name, clients, length)
		r, err := d.drive(ctx, name, desc, clients, length, mk)
		if err != nil {
			return nil, err
		}
		logf("%s: %d requests, %.1f req/s, p99 %s ms, %s", name, r.Requests, r.PerSecond(), ms(r.P99), r.statusText())
		return r, nil
	}
	run := func(name, desc string, clients int, mk requester) (*Result, error) {
		return runOn(d, name, desc, clients, cfg.Duration, mk)
	}
	// A scenario with libvips work runs in cfg.Rounds parts, each between
	// two measurements of its limit.
	measured := func(name, desc string, clients int, mk requester, fn work) (*Result, error) {
		var r *Result
		ls, err := alternate(ctx, fn, cfg.LimitMultiples, rep.Cores, cfg.Duration, cfg.Rounds, func(length time.Duration) error {
			part, err := runOn(d, name, desc, clients, length, mk)
			if err != nil {
				return err
			}
			if r == nil {
				r = part
			} else {
				r.add(part)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		best := ls.Best()
		logf("%s: %.1f req/s; limit %.1f images/s at %s goroutines", name, r.OKPerSecond(), best.PerSecond(), best.countsText())
		r.Limits = ls
		return r, nil
	}

	// Each uncached transform: Prism in parts between measurements of its
	// limit (taken while every server is idle), then each peer. Every request
	// is a variant never rendered.
	pipeline := imaging.NewProcessor(imaging.DefaultConfig)
	pools := make([]*variantPool, len(Transforms))
	for i, t := range Transforms {
		name := UncachedName(i)
		clients := t.Clients
		if cfg.UncachedClients > 0 {
			clients = cfg.UncachedClients
		}
		pools[i] = &variantPool{}
		desc := fmt.Sprintf("`/%s?%s`", t.key(), strings.ReplaceAll(t.query(300, t.Quality), "w=300", "w=<distinct>"))
		r, err := measured(name, desc, clients, uncached(pools[i], t, func(w, q int) string {
			return proc.URL + "/" + t.key() + "?" + t.query(w, q)
		}), thumbnailWork(pipeline, sources[t.Source], t))
		if err != nil {
			return fail(err)
		}
		rep.Scenarios = append(rep.Scenarios, r)
		for _, p := range peers {
			pd := newDriver(cfg, p.proc.Cmd.Process.Pid) // its own RSS and CPU
			pr, err := runOn(pd, name+" on "+p.name, desc, clients, cfg.Duration, uncached(&variantPool{}, t, func(w, q int) string {
				return p.proc.URL + p.path(t, w, q)
			}))
			if err != nil {
				return fail(fmt.Errorf("%s: %w\n%s output (tail):\n%s", p.name, err, p.name, tailLines(p.proc.Output(), 20)))
			}
			pd.close()
			pr.Peer = p.name
			rep.Peers = append(rep.Peers, pr)
		}
	}

	photoURL := proc.URL + "/" + Transforms[0].key()
	hitURL := photoURL + "?w=400&quality=80"
	etag, err := d.warm(ctx, hitURL)
	if err != nil {
		return fail(err)
	}
	for _, s := range []struct {
		name, desc, inm string
	}{
		{CachedHits, "`?w=400&quality=80` on the 17.6 MP photo, warmed first", ""},
		{Revalidation, "the same with `If-None-Match: <its ETag>`", etag},
	} {
		r, err := run(s.name, s.desc, cfg.Clients, func(int64) (*http.Request, func(int), error) {
			req, err := http.NewRequest(http.MethodGet, hitURL, nil)
			if err == nil && s.inm != "" {
				req.Header.Set("If-None-Match", s.inm)
			}
			return req, nil, err
		})
		if err != nil {
			return fail(err)
		}
		rep.Scenarios = append(rep.Scenarios, r)
	}

	// Overload continues the first transform's variants, against its limit.
	over, err := run(Overload, "as (a), with far more clients than workers", cfg.OverloadClients,
		uncached(pools[0], Transforms[0], func(w, q int) string { return photoURL + "?" + Transforms[0].query(w, q) }))
	if err != nil {
		return fail(err)
	}
	over.Limits = rep.Scenarios[0].Limits
	rep.Scenarios = append(rep.Scenarios, over)
	logf("waiting up to %v for RSS to fall under %s", cfg.RecoveryWait, mb(RecoveryRSS))
	rep.Recovery = waitRecovery(ctx, pid, over.end, cfg.RecoveryWait)

	var uploaded atomic.Int64 // every upload a new key, over every part
	up, err := measured(Uploads, "`POST /v1/images?key=bench/up-<n>.jpg`, raw body: the 17.6 MP photo", cfg.UploadClients, func(int64) (*http.Request, func(int), error) {
		req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/v1/images?key=bench/up-%d.jpg", proc.URL, uploaded.Add(1)-1), bytes.NewReader(photo))
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Content-Type", "image/jpeg")
		req.Header.Set("Authorization", "Bearer "+apiKey)
		return req, nil, nil
	}, decodeWork(photo))
	if err != nil {
		return fail(err)
	}
	rep.Scenarios = append(rep.Scenarios, up)
	if len(cfg.QualityWidths) > 0 {
		if rep.Quality, err = measureQuality(ctx, cfg, d, peers, logf); err != nil {
			return fail(err)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if _, err := readRSS(pid); err != nil {
		return fail(fmt.Errorf("the server is no longer running: %w", err))
	}
	return rep, nil
}

// prismEnv is what a Prism server is started with beyond the environment.
func prismEnv(dir, apiKey string) []string {
	return []string{"PRISM_STORAGE=file://" + dir, "PRISM_API_KEYS=" + apiKey, "MALLOC_ARENA_MAX=2"}
}

// uncached asks for t's variants never rendered, at the URLs at makes. A
// request answered 429 was never rendered, so its variant goes back to the
// pool for a later request.
func uncached(pool *variantPool, t Transform, at func(width, quality int) string) requester {
	return func(int64) (*http.Request, func(int), error) {
		n := pool.take()
		req, err := http.NewRequest(http.MethodGet, at(t.variant(n)), nil)
		return req, func(status int) {
			if status == http.StatusTooManyRequests {
				pool.give(n)
			}
		}, err
	}
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func (c *Config) check() error {
	switch {
	case c.Server == "":
		return errors.New("no server binary")
	case c.Duration <= 0:
		return errors.New("the duration must be positive")
	case c.Clients < 1 || c.UncachedClients < 0 || c.OverloadClients < 1 || c.UploadClients < 1:
		return errors.New("every client count must be at least 1")
	case c.Rounds < 1:
		return errors.New("at least one round")
	case len(c.LimitMultiples) == 0:
		return errors.New("no goroutine count for the limits")
	case len(c.QualityWidths) > 0 && c.QualityRuns < 1:
		return errors.New("the encoders need at least one run")
	case c.Timeout <= 0:
		return errors.New("the request timeout must be positive")
	case c.RecoveryWait < 0:
		return errors.New("the recovery wait cannot be negative")
	}
	return nil
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
