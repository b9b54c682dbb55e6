package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prism-image/prism/internal/testutil"
)

// CacheHeader names the layer that served a response (hit-memory,
// hit-derived or miss); the harness counts its values where the server
// sends it.
const CacheHeader = "X-Prism-Cache"

// Result is one scenario's figures.
type Result struct {
	Name     string
	Desc     string
	Clients  int
	Requests int           // responses received, whatever their status
	Elapsed  time.Duration // from the first request to the last answer, summed over the parts
	P50      time.Duration // latency percentiles over every response
	P95      time.Duration
	P99      time.Duration
	Status   map[int]int     // responses per status code; they sum to Requests
	Errors   int             // transport errors other than timeouts (no status)
	Timeouts int             // requests that hit the client timeout (no status)
	Cache    map[string]int  // responses per X-Prism-Cache value, where sent
	ByStatus map[int]Latency // latency percentiles per status
	PeakRSS  int64           // bytes, of the server process
	Bytes    int64           // bodies of the 200 answers
	CPU      time.Duration   // the server process's, user and system
	Limits   Limits          // the libvips limit of the same work, if any
	// Window is the time the clients sent requests in (summed over a
	// scenario's parts), and OKInWindow the answers that did the work
	// within it (shareIn): the rate while every client was at work.
	Window     time.Duration
	OKInWindow float64
	Peer       string // the server measured, when not Prism

	end       time.Time
	latencies map[int][]time.Duration // per status, sorted, for merging
}

// MeanBytes is the mean body of a 200 answer.
func (r *Result) MeanBytes() float64 { return float64(r.Bytes) / float64(max(r.Status[200], 1)) }

// CPUPerOK is the server's CPU time per answer that did the work.
func (r *Result) CPUPerOK() time.Duration {
	return r.CPU / time.Duration(max(r.Status[200]+r.Status[201]+r.Status[304], 1))
}

// Ratio is the answers of the work's success status per second over its
// limit: 0 when it has none.
func (r *Result) Ratio() float64 {
	best := r.Limits.Best()
	if best.PerSecond() == 0 {
		return 0
	}
	return r.OKPerSecond() / best.PerSecond()
}

// OKPerSecond is the answers that did the work asked (200, or 201 for an
// upload, or 304 for a revalidation) per second, while every client was
// at work: the answers within the window, and the share within it of
// those that ended after it.
func (r *Result) OKPerSecond() float64 {
	if r.Window <= 0 {
		return 0
	}
	return r.OKInWindow / r.Window.Seconds()
}

// doesWork says a status is an answer that did the work asked.
func doesWork(status int) bool {
	return status == http.StatusOK || status == http.StatusCreated || status == http.StatusNotModified
}

// Latency is the percentiles of one status's responses.
type Latency struct{ P50, P99 time.Duration }

// PerSecond is responses per second.
func (r *Result) PerSecond() float64 { return rate(r.Requests, r.Elapsed) }

// StatusPerSecond is responses of one status per second.
func (r *Result) StatusPerSecond(code int) float64 { return rate(r.Status[code], r.Elapsed) }

// shareIn is how much of a piece of work from t0 to t1 lay within a
// window that closed at deadline (and opened before t0): 1 when it ended
// in time, else the fraction before the deadline, none if it started
// after. Summed over the work of clients that each start a new piece
// until the deadline, it counts what was done while all of them were at
// work, and not the tail after it, when the last ones finish alone.
func shareIn(t0, t1, deadline time.Time) float64 {
	switch {
	case !t1.After(deadline):
		return 1
	case !t0.Before(deadline):
		return 0
	}
	return float64(deadline.Sub(t0)) / float64(t1.Sub(t0))
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// driver is the HTTP side: one keep-alive client shared by every scenario.
type driver struct {
	cfg    Config
	client *http.Client
	pid    int
}

func newDriver(cfg Config, pid int) *driver {
	conns := max(cfg.Clients, cfg.UncachedClients, cfg.OverloadClients, cfg.UploadClients, 4)
	tr := &http.Transport{
		Proxy:               nil, // loopback: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: 2 * conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &driver{cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}, pid: pid}
}

func (d *driver) close() { d.client.CloseIdleConnections() }

// warm asks for url until it answers 200 and returns its ETag.
func (d *driver) warm(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("warming %s: %w", url, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", fmt.Errorf("warming %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("warming %s: status %d: %s", url, resp.StatusCode, body)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		return "", fmt.Errorf("warming %s: no ETag to revalidate", url)
	}
	return etag, nil
}

// requester makes a scenario's n-th request. done, when not nil, is told
// the status the request got (0 when it got none: a transport error).
type requester func(n int64) (req *http.Request, done func(status int), err error)

// clientStats is what one client goroutine saw.
type clientStats struct {
	latencies map[int][]time.Duration // per status
	status    map[int]int
	cache     map[string]int
	errors    int
	timeouts  int
	bytes     int64 // bodies of 200 answers
	lastErr   error
	// okInWindow is the answers that did the work within the window
	// (shareIn).
	okInWindow float64
	end        time.Time
}

// drive runs clients goroutines, each sending mk's requests one after the
// other for length (a request in flight then is still answered and
// counted), while sampling the server's RSS.
func (d *driver) drive(ctx context.Context, name, desc string, clients int, length time.Duration, mk requester) (*Result, error) {
	cpu0, err := testutil.ProcessCPU(d.pid)
	if err != nil {
		return nil, err
	}
	sampler := startPeakSampler(d.pid)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		next  int64
		stats = make([]*clientStats, clients)
	)
	seq := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		next++
		return next - 1
	}
	start := time.Now()
	deadline := start.Add(length)
	var buildErr error
	for i := range clients {
		s := &clientStats{latencies: map[int][]time.Duration{}, status: map[int]int{}, cache: map[string]int{}, end: start}
		stats[i] = s
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				req, done, err := mk(seq())
				if err != nil {
					mu.Lock()
					buildErr = err
					mu.Unlock()
					return
				}
				t0 := time.Now()
				status := d.do(ctx, req, s)
				if doesWork(status) {
					s.okInWindow += shareIn(t0, s.end, deadline)
				}
				if done != nil {
					done(status)
				}
				if s.lastErr != nil {
					// Do not spin on a dead server: the loop stays bounded.
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	peak := sampler.stop()
	cpu1, err := testutil.ProcessCPU(d.pid)
	if err != nil {
		return nil, err
	}
	if buildErr != nil {
		return nil, buildErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	r := &Result{Name: name, Desc: desc, Clients: clients, Status: map[int]int{}, Cache: map[string]int{},
		PeakRSS: peak, CPU: cpu1 - cpu0, end: start, latencies: map[int][]time.Duration{}, Window: length}
	var lastErr error
	for _, s := range stats {
		for code, l := range s.latencies {
			r.latencies[code] = append(r.latencies[code], l...)
		}
		for k, v := range s.status {
			r.Status[k] += v
		}
		for k, v := range s.cache {
			r.Cache[k] += v
		}
		r.Errors += s.errors
		r.Bytes += s.bytes
		r.Timeouts += s.timeouts
		r.OKInWindow += s.okInWindow
		if s.end.After(r.end) {
			r.end = s.end
		}
		if s.lastErr != nil {
			lastErr = s.lastErr
		}
	}
	r.Elapsed = r.end.Sub(start)
	r.summarise()
	if r.Requests == 0 {
		return nil, fmt.Errorf("%s: no request was answered (%d transport errors, %d timeouts; last: %v)", name, r.Errors, r.Timeouts, lastErr)
	}
	return r, nil
}

// summarise works out the percentiles and the count of responses from the
// latencies.
func (r *Result) summarise() {
	var all []time.Duration
	r.ByStatus = map[int]Latency{}
	for code, l := range r.latencies {
		slices.Sort(l)
		all = append(all, l...)
		r.ByStatus[code] = Latency{P50: percentile(l, 0.50), P99: percentile(l, 0.99)}
	}
	slices.Sort(all)
	r.Requests = len(all)
	r.P50, r.P95, r.P99 = percentile(all, 0.50), percentile(all, 0.95), percentile(all, 0.99)
}

// add counts o, a later part of the same scenario, into r: its time,
// answers and CPU add up, its peak RSS counts if higher.
func (r *Result) add(o *Result) {
	r.Elapsed += o.Elapsed
	r.Window += o.Window
	r.OKInWindow += o.OKInWindow
	r.CPU += o.CPU
	r.PeakRSS = max(r.PeakRSS, o.PeakRSS)
	r.Errors += o.Errors
	r.Timeouts += o.Timeouts
	r.Bytes += o.Bytes
	for k, v := range o.Status {
		r.Status[k] += v
	}
	for k, v := range o.Cache {
		r.Cache[k] += v
	}
	for code, l := range o.latencies {
		r.latencies[code] = append(r.latencies[code], l...)
	}
	r.end = o.end
	r.summarise()
}

// do sends one request and reads the whole answer, so the connection is
// kept alive for the next. It returns the status, or 0 for none.
func (d *driver) do(ctx context.Context, req *http.Request, s *clientStats) int {
	req = req.WithContext(ctx)
	t0 := time.Now()
	resp, err := d.client.Do(req)
	var n int64
	if err == nil {
		n, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	s.end = time.Now()
	if err != nil {
		s.lastErr = err
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			s.timeouts++
		} else {
			s.errors++
		}
		return 0
	}
	s.lastErr = nil
	s.latencies[resp.StatusCode] = append(s.latencies[resp.StatusCode], s.end.Sub(t0))
	s.status[resp.StatusCode]++
	if resp.StatusCode == http.StatusOK {
		s.bytes += n
	}
	if v := resp.Header.Get(CacheHeader); v != "" {
		s.cache[v]++
	}
	return resp.StatusCode
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(len(sorted))*p)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (r *Result) statusText() string {
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(r.Status)) {
		parts = append(parts, fmt.Sprintf("%d: %d", code, r.Status[code]))
	}
	return strings.Join(parts, ", ")
}

func (r *Result) cacheText() string {
	if len(r.Cache) == 0 {
		return "—"
	}
	var parts []string
	for _, v := range slices.Sorted(maps.Keys(r.Cache)) {
		parts = append(parts, fmt.Sprintf("%s: %d", strings.ReplaceAll(v, "|", "/"), r.Cache[v]))
	}
	return strings.Join(parts, ", ")
}
