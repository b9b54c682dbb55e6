package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/prism-image/prism/internal/testutil"
)

// pipelineRuns reads prism_pipeline_runs_total from a server's metrics.
func pipelineRuns(t *testing.T, p *testutil.Process) int {
	t.Helper()
	s := scrape(t, p)
	if !s.Has("prism_pipeline_runs_total", nil) {
		t.Fatal("no prism_pipeline_runs_total in the metrics")
	}
	return int(s.Value("prism_pipeline_runs_total", nil))
}

// scrape reads a server's metrics listener.
func scrape(t *testing.T, p *testutil.Process) testutil.Scrape {
	t.Helper()
	s, err := testutil.ScrapeMetrics(p.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Many identical requests at once render once, and all get the same bytes.
func TestSingleflight(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		u := b.proc.URL + "/img/pexels-magda-ehlers-5141x3434.jpg?w=1234&fm=webp&utm=" + b.name
		before := pipelineRuns(t, b.proc)
		const n = 16
		bodies := make([][]byte, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := get(t, u)
				if res.StatusCode != http.StatusOK {
					t.Errorf("status %d", res.StatusCode)
				}
				bodies[i] = res.body
			}()
		}
		wg.Wait()
		if runs := pipelineRuns(t, b.proc) - before; runs != 1 {
			t.Errorf("%d identical requests ran the pipeline %d times, want once", n, runs)
		}
		for i := range bodies {
			if !bytes.Equal(bodies[i], bodies[0]) {
				t.Fatalf("request %d got different bytes", i)
			}
		}
		if d := testutil.DecodeImage(t, bodies[0]); d.Format != "webp" || d.Width != 1234 {
			t.Errorf("got %s %d wide", d.Format, d.Width)
		}
		if res := get(t, u); res.Header.Get("X-Prism-Cache") != "hit-memory" {
			t.Errorf("a repeat is served by %q, want hit-memory", res.Header.Get("X-Prism-Cache"))
		}
		if runs := pipelineRuns(t, b.proc) - before; runs != 1 {
			t.Errorf("a cached repeat ran the pipeline (%d runs)", runs)
		}
	})
}

// With one worker and a queue of one, a burst of distinct work is answered
// 429 beyond the queue, fast, and never 5xx.
func TestQueueFull(t *testing.T) {
	p := startServer(t, "PRISM_STORAGE=file://"+fileRoot, "PRISM_WORKERS=1", "PRISM_QUEUE=1")
	const n = 8
	statuses := make([]int, n)
	retry := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := get(t, fmt.Sprintf("%s/img/pexels-magda-ehlers-5141x3434.jpg?w=%d&fm=avif", p.URL, 2000+i))
			statuses[i], retry[i] = res.StatusCode, res.Header.Get("Retry-After")
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for i, s := range statuses {
		count[s]++
		if s == http.StatusTooManyRequests && retry[i] == "" {
			t.Error("429 without Retry-After")
		}
	}
	if count[http.StatusTooManyRequests] == 0 || count[http.StatusOK] == 0 || count[200]+count[429] != n {
		t.Errorf("statuses %v: want some 200 and some 429, nothing else", count)
	}
}

// A transform that cannot finish within PRISM_TIMEOUT is a 503.
func TestTimeout(t *testing.T) {
	p := startServer(t, "PRISM_STORAGE=file://"+fileRoot, "PRISM_TIMEOUT=100ms")
	start := time.Now()
	res := get(t, p.URL+"/img/pexels-magda-ehlers-5141x3434.jpg?w=5000&fm=avif&q=95")
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Errorf("status %d, Retry-After %q: %s", res.StatusCode, res.Header.Get("Retry-After"), res.body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the 503 took %v", d)
	}
}

// Rendered variants survive in the derived store, are shared by every
// process, and are purged with their source.
func TestDerivedStore(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		env := []string{"PRISM_STORAGE=file://" + fileRoot, "PRISM_API_KEYS=" + apiKey, "PRISM_DERIVED_URL=file://" + dir}
		key := "derived/cat.jpg"
		stored := func() []string {
			names, _ := filepath.Glob(filepath.Join(dir, "derived", "cat.jpg", "*"))
			return names
		}
		testDerived(t, env, key, stored, false)
	})
	t.Run("s3+redis", func(t *testing.T) {
		r := testutil.StartRedis(t)
		env := append(minio.Env(), "PRISM_API_KEYS="+apiKey, "PRISM_REDIS_URL="+r.URL(),
			"PRISM_DERIVED_URL=s3://"+minio.Bucket+"/derived")
		key := "derived/cat.jpg"
		stored := func() []string {
			out, err := minio.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{
				Bucket: aws.String(minio.Bucket), Prefix: aws.String("derived/" + key + "/"),
			})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, o := range out.Contents {
				names = append(names, *o.Key)
			}
			return names
		}
		testDerived(t, env, key, stored, true)
		if n, _ := r.Client().Exists(t.Context(), "prism:var:"+key).Result(); n != 1 {
			t.Errorf("the Redis index of %s is missing", key)
		}
	})
}

// testDerived checks the derived store of servers started with env. With
// sharedMetadata (Redis), a replace through one process reaches the other
// at once; without, only the process that took it.
func testDerived(t *testing.T, env []string, key string, stored func() []string, sharedMetadata bool) {
	p := startServer(t, env...)
	put := func(file string) {
		t.Helper()
		if res := send(t, "PUT", p.URL+"/v1/images/"+key, apiKey, "image/jpeg", image(t, file)); res.StatusCode/100 != 2 {
			t.Fatalf("upload: %d %s", res.StatusCode, res.body)
		}
	}
	layer := func(p *testutil.Process, wantWidth int) string {
		t.Helper()
		res := get(t, p.URL+"/"+key+"?w=100&fm=webp")
		if d := testutil.DecodeImage(t, res.body); d.Width != 100 || d.Height != wantWidth {
			t.Errorf("variant %dx%d, want 100x%d", d.Width, d.Height, wantWidth)
		}
		return res.Header.Get("X-Prism-Cache")
	}
	waitStored := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(stored()) != n {
			if time.Now().After(deadline) {
				t.Fatalf("derived store holds %v, want %d objects", stored(), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	put("flowers.jpeg") // 1920x1080: 100x56
	if l := layer(p, 56); l != "miss" {
		t.Errorf("first request: %s", l)
	}
	if l := layer(p, 56); l != "hit-memory" {
		t.Errorf("second request: %s", l)
	}
	waitStored(1)
	old := stored()

	// Another process (an empty memory cache) reuses the rendering.
	other := startServer(t, env...)
	if l := layer(other, 56); l != "hit-derived" {
		t.Errorf("another process: %s, want hit-derived", l)
	}

	// Replacing the source makes every rendering of it unreachable, in
	// memory and in the derived store, for both processes.
	put("concert.jpg") // 400x267: 100x67
	if l := layer(p, 67); l != "miss" {
		t.Errorf("after replace: %s, want miss", l)
	}
	if sharedMetadata {
		if l := layer(other, 67); l == "hit-memory" {
			t.Errorf("the other process after replace: %s", l)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		names := stored()
		if !containsAny(names, old) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old renderings still stored after replace: %v", names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func containsAny(haystack, needles []string) bool {
	for _, h := range haystack {
		for _, n := range needles {
			if h == n {
				return true
			}
		}
	}
	return false
}
