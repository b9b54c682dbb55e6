package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/prism-image/prism/internal/testutil"
)

// testTimeout is Options.Timeout of the failure tests, and slack what a
// loaded machine may add to it.
const (
	testTimeout = 100 * time.Millisecond
	slack       = 300 * time.Millisecond
)

func TestRedisKeyAndJSON(t *testing.T) {
	flushShared(t)
	s := newTestRedis(t, shared.URL(), Options{}, defaultMaxPending, defaultFlushEvery)
	raw := shared.Client()
	ctx := context.Background()
	const key = "uploads/cat.jpg"
	const rkey = "prism:meta:uploads/cat.jpg"

	s.Set(ctx, meta(key, `"abc123"`))
	b, err := raw.Get(ctx, rkey).Bytes()
	if err != nil {
		t.Fatalf("GET %s: %v", rkey, err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s holds %q, not JSON: %v", rkey, b, err)
	}
	want := map[string]any{
		"key":            key,
		"width":          640.0,
		"height":         480.0,
		"format":         "jpeg",
		"content_type":   "image/jpeg",
		"bytes":          12345.0,
		"etag":           `"abc123"`,
		"last_modified":  "2025-03-14T15:09:26.535Z",
		"orientation":    6.0,
		"frames":         1.0,
		"has_alpha":      false,
		"color_space":    "srgb",
		"dominant_color": "#a0b1c2",
		"blurhash":       "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
	} // and no url: it is filled in when answering
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s holds\n%s\nwant the fields\n%v", rkey, b, want)
	}
	if ttl := raw.PTTL(ctx, rkey).Val(); ttl <= DefaultTTL-time.Minute || ttl > DefaultTTL {
		t.Errorf("PTTL %s = %v, want about the default TTL %v", rkey, ttl, DefaultTTL)
	}

	s.SetMissing(ctx, key)
	if b, _ := raw.Get(ctx, rkey).Bytes(); string(b) != `{"missing":true}` {
		t.Errorf("after SetMissing %s holds %q, want {\"missing\":true}", rkey, b)
	}
	if ttl := raw.PTTL(ctx, rkey).Val(); ttl <= 0 || ttl > DefaultMissingTTL {
		t.Errorf("PTTL %s of a negative entry = %v, want at most %v", rkey, ttl, DefaultMissingTTL)
	}

	// Entries written by others (redis-cli, another Prism) are read too.
	raw.Set(ctx, "prism:meta:by/hand.png", `{"key":"by/hand.png","width":3,"height":2,"format":"png"}`, time.Minute)
	if m, l := s.Get(ctx, "by/hand.png"); l != Hit || m.Width != 3 || m.Format != "png" {
		t.Errorf("Get of a hand-written entry = %v %+v", l, m)
	}
	// An undecodable entry is a miss, not an error.
	raw.Set(ctx, "prism:meta:junk.png", "not json", time.Minute)
	if _, l := s.Get(ctx, "junk.png"); l != Miss {
		t.Errorf("Get of an undecodable entry = %v, want miss", l)
	}

	s.Delete(ctx, key)
	if n := raw.Exists(ctx, rkey).Val(); n != 0 {
		t.Errorf("%s still exists after Delete", rkey)
	}
}

func TestNewRedis(t *testing.T) {
	for _, url := range []string{
		"redis://user:s3cret@127.0.0.1:notaport/0",
		"http://user:s3cret@127.0.0.1:6379/0",
		"redis://user:s3cret@127.0.0.1:6379/notadb",
	} {
		_, err := NewRedis(url, Options{})
		if err == nil {
			t.Errorf("NewRedis(%q) succeeded", url)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("NewRedis(%q) error leaks the password: %v", url, err)
		}
	}

	// Redis down at start is no error: the store answers Miss, fast.
	port := testutil.FreePort(t)
	var logs logBuffer
	r, err := NewRedis(fmt.Sprintf("redis://127.0.0.1:%d/0", port), Options{Timeout: testTimeout, Logger: logs.logger()})
	if err != nil {
		t.Fatalf("NewRedis with Redis down: %v", err)
	}
	if err := r.Ping(context.Background()); err == nil {
		t.Error("Ping of nothing succeeded")
	}
	start := time.Now()
	if _, l := r.Get(context.Background(), "a.jpg"); l != Miss {
		t.Errorf("Get = %v, want miss", l)
	}
	if d := time.Since(start); d > testTimeout+slack {
		t.Errorf("Get took %v with Redis down", d)
	}
	// A caller that gave up is not a Redis failure.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := logs.String()
	r.Get(ctx, "b.jpg")
	if logs.String() != before {
		t.Errorf("a cancelled Get was logged: %s", strings.TrimPrefix(logs.String(), before))
	}

	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	r.Close() // twice is fine
	select {
	case <-r.done:
	default:
		t.Error("the background flush still runs after Close")
	}
}

// TestRedisDown stops Redis in the middle of a test: calls answer Miss within
// the timeout, failures are logged and counted, and once Redis is back the
// same store uses it again.
func TestRedisDown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    func(t *testing.T, srv *testutil.Redis)
		recover func(t *testing.T, srv *testutil.Redis)
	}{
		{
			name: "killed then restarted",
			fail: func(t *testing.T, srv *testutil.Redis) { srv.Kill() },
			recover: func(t *testing.T, srv *testutil.Redis) {
				if err := srv.Restart(); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			// Every client is paused: calls hang until their timeout.
			name: "paused",
			fail: func(t *testing.T, srv *testutil.Redis) {
				if err := srv.Client().Do(context.Background(), "CLIENT", "PAUSE", 2000, "ALL").Err(); err != nil {
					t.Fatal(err)
				}
			},
			recover: func(t *testing.T, srv *testutil.Redis) {}, // the pause ends by itself
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testutil.StartRedis(t)
			reg := prometheus.NewRegistry()
			var logs logBuffer
			s := newTestRedis(t, srv.URL(), Options{Timeout: testTimeout, Logger: logs.logger(), Metrics: NewMetrics(reg)},
				defaultMaxPending, defaultFlushEvery)
			ctx := context.Background()
			s.Set(ctx, meta("a.jpg", "v1"))
			if _, l := s.Get(ctx, "a.jpg"); l != Hit {
				t.Fatalf("Get before the failure = %v, want hit", l)
			}

			tc.fail(t, srv)
			calls := []struct {
				name string
				call func()
			}{
				{"Get", func() {
					if _, l := s.Get(ctx, "a.jpg"); l != Miss {
						t.Errorf("Get with Redis down = %v, want miss", l)
					}
				}},
				{"Set", func() { s.Set(ctx, meta("b.jpg", "v1")) }},
				{"Delete", func() { s.Delete(ctx, "a.jpg") }},
				{"SetMissing", func() { s.SetMissing(ctx, "c.jpg") }},
				{"Get while writes pend", func() {
					if _, l := s.Get(ctx, "a.jpg"); l != Miss {
						t.Errorf("Get with Redis down = %v, want miss", l)
					}
				}},
			}
			for _, c := range calls {
				start := time.Now()
				c.call()
				if d := time.Since(start); d > testTimeout+slack {
					t.Errorf("%s took %v with Redis down; the timeout is %v", c.name, d, testTimeout)
				}
			}
			for _, op := range []string{"get", "set", "delete"} {
				if n := errorCount(t, reg, op); n < 1 {
					t.Errorf(`prism_redis_errors_total{op=%q} = %v, want at least 1`, op, n)
				}
			}
			log := logs.String()
			for _, want := range []string{"level=WARN", "redis cache call failed", "op=get", "key=a.jpg", "op=set", "key=b.jpg", "op=delete", "err="} {
				if !strings.Contains(log, want) {
					t.Errorf("the log lacks %q:\n%s", want, log)
				}
			}

			tc.recover(t, srv)
			// go-redis reconnects by itself; the store keeps no verdict on
			// Redis that would stop it from being used again.
			deadline := time.Now().Add(10 * time.Second)
			for {
				s.Set(ctx, meta("after.jpg", "v2"))
				if m, l := s.Get(ctx, "after.jpg"); l == Hit && m.ETag == "v2" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the store did not use Redis again within 10s of its return:\n%s", logs.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if n := srv.Client().Exists(ctx, "prism:meta:after.jpg").Val(); n != 1 {
				t.Errorf("prism:meta:after.jpg is not in Redis after recovery")
			}
			if _, l := s.Get(ctx, "a.jpg"); l != Miss {
				t.Errorf("Get(a.jpg), deleted while Redis was down, = %v after recovery, want miss", l)
			}
		})
	}
}

// TestRedisStaleness makes Redis unreachable while it keeps its data, has a
// write fail, and checks that the entry the write should have replaced is
// never served: not while Redis is away, not once it is back; and that the
// pending delete then removes it from Redis.
func TestRedisStaleness(t *testing.T) {
	type outage struct {
		name  string
		start func(t *testing.T, px *proxy)
		end   func(t *testing.T, px *proxy)
	}
	var (
		refused = outage{"connections refused",
			func(t *testing.T, px *proxy) { px.set(proxyDown) },
			func(t *testing.T, px *proxy) { px.set(proxyUp) }}
		blackhole = outage{"calls time out",
			func(t *testing.T, px *proxy) { px.set(proxyBlackhole) },
			func(t *testing.T, px *proxy) { px.set(proxyUp) }}
		// Reads still work, writes hang: the stale entry is right there
		// to be read, which makes it the hardest case for the guard.
		writesPaused = outage{"writes paused",
			func(t *testing.T, px *proxy) {
				if err := shared.Client().Do(context.Background(), "CLIENT", "PAUSE", 20000, "WRITE").Err(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { shared.Client().Do(context.Background(), "CLIENT", "UNPAUSE") })
			},
			func(t *testing.T, px *proxy) {
				if err := shared.Client().Do(context.Background(), "CLIENT", "UNPAUSE").Err(); err != nil {
					t.Fatal(err)
				}
			}}
	)
	const key, other = "uploads/cat.jpg", "uploads/dog.jpg"
	writes := map[string]func(s *Redis){
		"Delete":     func(s *Redis) { s.Delete(context.Background(), key) },
		"Set":        func(s *Redis) { s.Set(context.Background(), meta(key, "v2")) },
		"SetMissing": func(s *Redis) { s.SetMissing(context.Background(), key) },
	}
	for _, tc := range []struct {
		outage     outage
		write      string
		background bool // recovery without traffic, by the background flush
	}{
		{refused, "Delete", true},
		{refused, "Set", false},
		{refused, "SetMissing", true},
		{blackhole, "Delete", false},
		{blackhole, "Set", true},
		{writesPaused, "Delete", false},
		{writesPaused, "SetMissing", true},
	} {
		recovery := "traffic"
		if tc.background {
			recovery = "background"
		}
		t.Run(fmt.Sprintf("%s/%s/%s", tc.outage.name, tc.write, recovery), func(t *testing.T) {
			flushShared(t)
			px := startProxy(t, shared.Addr)
			flushEvery := time.Hour // only traffic flushes
			if tc.background {
				flushEvery = defaultFlushEvery
			}
			var logs logBuffer
			s := newTestRedis(t, px.url(), Options{Timeout: testTimeout, Logger: logs.logger()}, defaultMaxPending, flushEvery)
			raw := shared.Client()
			ctx := context.Background()

			s.Set(ctx, meta(key, "v1"))
			s.Set(ctx, meta(other, "o1"))
			if m, l := s.Get(ctx, key); l != Hit || m.ETag != "v1" {
				t.Fatalf("Get before the outage = %v %q, want hit v1", l, m.ETag)
			}
			v1, err := raw.Get(ctx, MetaPrefix+key).Result()
			if err != nil {
				t.Fatal(err)
			}

			tc.outage.start(t, px)
			start := time.Now()
			writes[tc.write](s)
			if d := time.Since(start); d > testTimeout+slack {
				t.Errorf("%s took %v during the outage; the timeout is %v", tc.write, d, testTimeout)
			}
			if !s.dirty.Load() {
				t.Fatalf("%s did not fail: the outage did not work", tc.write)
			}
			// Redis still holds v1: exactly what must not be served.
			if got, _ := raw.Get(ctx, MetaPrefix+key).Result(); got != v1 {
				t.Fatalf("Redis lost the old entry during the outage (holds %q); the test proves nothing", got)
			}
			for _, k := range []string{key, other} {
				start := time.Now()
				if m, l := s.Get(ctx, k); l != Miss {
					t.Errorf("Get(%q) during the outage = %v %q, want miss: writes pend", k, l, m.ETag)
				}
				if d := time.Since(start); d > testTimeout+slack {
					t.Errorf("Get(%q) took %v during the outage", k, d)
				}
			}

			tc.outage.end(t, px)
			deadline := time.Now().Add(10 * time.Second)
			if tc.background {
				// No calls: the background flush alone deletes the entry.
				for raw.Exists(ctx, MetaPrefix+key).Val() != 0 || s.dirty.Load() {
					if time.Now().After(deadline) {
						t.Fatalf("the background flush did not delete %s within 10s:\n%s", MetaPrefix+key, logs.String())
					}
					time.Sleep(20 * time.Millisecond)
				}
			} else {
				// Calls flush; none of them may see v1 meanwhile.
				for {
					if m, l := s.Get(ctx, key); l != Miss {
						t.Fatalf("Get(%q) during recovery = %v %q, want miss", key, l, m.ETag)
					}
					if _, l := s.Get(ctx, other); l == Hit {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the store did not use Redis again within 10s:\n%s", logs.String())
					}
					time.Sleep(20 * time.Millisecond)
				}
				if n := raw.Exists(ctx, MetaPrefix+key).Val(); n != 0 {
					t.Errorf("%s still in Redis after the flush", MetaPrefix+key)
				}
			}
			if m, l := s.Get(ctx, key); l != Miss {
				t.Errorf("Get(%q) after recovery = %v %q, want miss", key, l, m.ETag)
			}
			// Redis is used again: the untouched entry is served, new ones
			// are stored.
			if m, l := s.Get(ctx, other); l != Hit || m.ETag != "o1" {
				t.Errorf("Get(%q) after recovery = %v %q, want hit o1", other, l, m.ETag)
			}
			s.Set(ctx, meta(key, "v3"))
			if m, l := s.Get(ctx, key); l != Hit || m.ETag != "v3" {
				t.Errorf("Get(%q) after a new Set = %v %q, want hit v3", key, l, m.ETag)
			}
		})
	}
}

// TestRedisManyPending covers the flush of many pending keys: batched DELs
// under the bound, and past it a SCAN of every prism:meta:* key.
func TestRedisManyPending(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxPending int
		failed     int // keys whose Delete fails
		extra      int // other prism:meta:* keys in Redis
		wantAll    bool
	}{
		{"under the bound, in batches", defaultMaxPending, 2*delBatch + 7, 0, false},
		{"over the bound, every key", 3, 5, 2*scanCount + 17, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flushShared(t)
			px := startProxy(t, shared.Addr)
			var logs logBuffer
			s := newTestRedis(t, px.url(), Options{Timeout: testTimeout, Logger: logs.logger()}, tc.maxPending, defaultFlushEvery)
			raw := shared.Client()
			ctx := context.Background()

			pipe := raw.Pipeline()
			for i := range tc.failed {
				pipe.Set(ctx, fmt.Sprintf("%sfailed/%d.jpg", MetaPrefix, i), `{"key":"x"}`, time.Hour)
			}
			for i := range tc.extra {
				pipe.Set(ctx, fmt.Sprintf("%sextra/%d.jpg", MetaPrefix, i), `{"key":"x"}`, time.Hour)
			}
			pipe.Set(ctx, "prism:var:keep", "1", time.Hour) // not metadata: stays
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
			s.Set(ctx, meta("other.jpg", "o1"))

			px.set(proxyDown)
			var wg sync.WaitGroup
			for w := range 8 { // concurrent, as in production (and faster)
				wg.Go(func() {
					for i := w; i < tc.failed; i += 8 {
						s.Delete(ctx, fmt.Sprintf("failed/%d.jpg", i))
					}
				})
			}
			wg.Wait()
			s.mu.Lock()
			all, n := s.all, len(s.pending)
			s.mu.Unlock()
			if all != tc.wantAll || (!all && n != tc.failed) {
				t.Fatalf("after %d failed deletes: all = %v, %d pending; want all = %v", tc.failed, all, n, tc.wantAll)
			}
			if _, l := s.Get(ctx, "other.jpg"); l != Miss {
				t.Errorf("Get during the outage = %v, want miss", l)
			}

			px.set(proxyUp)
			deadline := time.Now().Add(15 * time.Second)
			for s.dirty.Load() {
				if time.Now().After(deadline) {
					t.Fatalf("still pending 15s after recovery:\n%s", logs.String())
				}
				s.Get(ctx, "other.jpg") // traffic helps, where it can
				time.Sleep(20 * time.Millisecond)
			}
			left := 0
			iter := raw.Scan(ctx, 0, MetaPrefix+"failed/*", 1000).Iterator()
			for iter.Next(ctx) {
				left++
			}
			if left != 0 {
				t.Errorf("%d of the %d keys whose Delete failed are still in Redis", left, tc.failed)
			}
			wantOther := int64(1)
			if tc.wantAll {
				wantOther = 0
				if n := countKeys(t, raw, MetaPrefix+"*"); n != 0 {
					t.Errorf("%d prism:meta:* keys left after a full flush", n)
				}
				if !strings.Contains(logs.String(), "too many keys pending") {
					t.Errorf("the overflow was not logged:\n%s", logs.String())
				}
			} else if n := countKeys(t, raw, MetaPrefix+"*"); n != 1 {
				t.Errorf("%d prism:meta:* keys left, want only other.jpg's", n)
			}
			if n := raw.Exists(ctx, MetaPrefix+"other.jpg").Val(); n != wantOther {
				t.Errorf("EXISTS prism:meta:other.jpg = %d, want %d", n, wantOther)
			}
			if n := raw.Exists(ctx, "prism:var:keep").Val(); n != 1 {
				t.Errorf("a key outside prism:meta: was deleted")
			}
			s.Set(ctx, meta("new.jpg", "n1"))
			if _, l := s.Get(ctx, "new.jpg"); l != Hit {
				t.Errorf("Get after recovery = %v, want hit", l)
			}
		})
	}
}

func countKeys(t *testing.T, c *redis.Client, pattern string) int {
	t.Helper()
	n := 0
	iter := c.Scan(context.Background(), 0, pattern, 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRedisSharedMetrics has two stores count their failures in one
// counter, as two stores in one process would, and their lookups and call
// times beside it.
func TestRedisSharedMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", testutil.FreePort(t))
	var logs logBuffer
	m := NewMetrics(reg)
	o := Options{Timeout: testTimeout, Metrics: m, Logger: logs.logger()}
	a := newTestRedis(t, url, o, defaultMaxPending, defaultFlushEvery)
	b := newTestRedis(t, url, o, defaultMaxPending, defaultFlushEvery)
	a.Get(context.Background(), "x")
	b.Get(context.Background(), "x")
	if n := errorCount(t, reg, "get"); n != 2 {
		t.Errorf(`prism_redis_errors_total{op="get"} = %v, want 2`, n)
	}
	if n := errorCount(t, reg, "set"); n != 0 {
		t.Errorf(`prism_redis_errors_total{op="set"} = %v, want 0`, n)
	}
	if n := promtestutil.ToFloat64(m.requests.WithLabelValues(layerMetadata, resultError)); n != 2 {
		t.Errorf(`prism_cache_requests_total{layer="metadata",result="error"} = %v, want 2`, n)
	}
	if n := promtestutil.CollectAndCount(m.redisDuration, "prism_redis_duration_seconds"); n != 4 {
		t.Errorf("prism_redis_duration_seconds has %d series, want one per operation", n)
	}
	if n := opValue(t, reg, "prism_redis_duration_seconds", opGet); n != 2 {
		t.Errorf(`prism_redis_duration_seconds{op="get"} counted %v calls, want 2`, n)
	}
}
