package cache

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/internal/testutil"
)

// shared is the redis-server of the tests that neither stop nor pause it.
var shared *testutil.Redis

func TestMain(m *testing.M) {
	r, stop, err := testutil.StartRedisServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared = r
	code := m.Run()
	stop()
	os.Exit(code)
}

// flushShared empties the shared server.
func flushShared(t *testing.T) {
	t.Helper()
	if err := shared.Client().FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

// newTestRedis returns a store on url, closed when t ends.
func newTestRedis(t *testing.T, url string, o Options, maxPending int, flushEvery time.Duration) *Redis {
	t.Helper()
	r, err := newRedis(url, o, maxPending, flushEvery)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// meta returns complete metadata for key, told apart by etag. Its URL is
// set, as the API fills it in; stores must not keep it.
func meta(key, etag string) prism.Metadata {
	return prism.Metadata{
		Key:           key,
		URL:           "https://img.example.com/" + key,
		Width:         640,
		Height:        480,
		Format:        "jpeg",
		ContentType:   "image/jpeg",
		Bytes:         12345,
		ETag:          etag,
		LastModified:  time.Date(2025, 3, 14, 15, 9, 26, 535000000, time.UTC),
		Orientation:   6,
		Frames:        1,
		HasAlpha:      false,
		ColorSpace:    "srgb",
		DominantColor: "#a0b1c2",
		BlurHash:      "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
	}
}

// stored is m as a store gives it back: without its URL.
func stored(m prism.Metadata) prism.Metadata {
	m.URL = ""
	return m
}

// logBuffer collects a store's log lines; the background flush writes to it
// too.
type logBuffer struct{ testutil.SyncBuffer }

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// errorCount reads prism_redis_errors_total{op} from reg.
func errorCount(t *testing.T, reg *prometheus.Registry, op string) float64 {
	t.Helper()
	return opValue(t, reg, "prism_redis_errors_total", op)
}

// opValue reads the series {op} of family name from reg: a counter's
// value, or a histogram's count.
func opValue(t *testing.T, reg *prometheus.Registry, name, op string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					if h := m.GetHistogram(); h != nil {
						return float64(h.GetSampleCount())
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("%s{op=%q} is not registered", name, op)
	return 0
}

// proxy is a TCP proxy to a Redis server that a test can cut, to make
// Redis unreachable while it keeps its data.
type proxy struct {
	t       *testing.T
	addr    string
	backend string

	mu    sync.Mutex
	mode  proxyMode
	ln    net.Listener // nil while down
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

type proxyMode int

const (
	proxyUp        proxyMode = iota // forwards
	proxyDown                       // refuses connections
	proxyBlackhole                  // accepts connections and never answers
)

func (m proxyMode) String() string {
	return [...]string{"up", "down", "blackhole"}[m]
}

func startProxy(t *testing.T, backend string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, addr: ln.Addr().String(), backend: backend, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(func() {
		p.set(proxyDown)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) url() string { return "redis://" + p.addr + "/0" }

// serve accepts on ln until it is closed. p.mu must be held or p unshared.
func (p *proxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			mode := p.mode
			p.conns[c] = struct{}{}
			p.mu.Unlock()
			if mode == proxyUp {
				p.wg.Go(func() { p.pipe(c) })
			} // blackhole: hold c, unanswered, until the mode changes
		}
	})
}

func (p *proxy) pipe(c net.Conn) {
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.mode != proxyUp {
		p.mu.Unlock()
		b.Close()
		c.Close()
		return
	}
	p.conns[b] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(b, c); b.Close() })
	io.Copy(c, b)
	c.Close()
	wg.Wait()
}

// set switches the proxy to mode, dropping every connection it holds.
func (p *proxy) set(mode proxyMode) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	switch {
	case mode == proxyDown && p.ln != nil:
		p.ln.Close()
		p.ln = nil
	case mode != proxyDown && p.ln == nil:
		// Listen again on the same port; it was ours a moment ago.
		var ln net.Listener
		var err error
		for range 50 {
			if ln, err = net.Listen("tcp", p.addr); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			p.t.Fatalf("proxy: listening again on %s: %v", p.addr, err)
		}
		p.serve(ln)
	}
}
