package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prism-image/prism/internal/testutil"
)

// delta is an expected change of one series between two scrapes.
type delta struct {
	name   string
	labels testutil.Labels
	want   float64
}

// checkDeltas compares each series' change from before to after, and
// each family's total change with the sum of its expected ones: a series
// that moved without being expected fails too.
func checkDeltas(t *testing.T, before, after testutil.Scrape, deltas []delta) {
	t.Helper()
	totals := map[string]float64{}
	for _, d := range deltas {
		if !after.Has(d.name, d.labels) {
			t.Errorf("%s%s is not exported", d.name, d.labels)
			continue
		}
		if got := after.Value(d.name, d.labels) - before.Value(d.name, d.labels); got != d.want {
			t.Errorf("%s%s grew by %v, want %v", d.name, d.labels, got, d.want)
		}
		totals[d.name] += d.want
	}
	for name, want := range totals {
		if got := after.Total(name, nil) - before.Total(name, nil); got != want {
			t.Errorf("%s grew by %v over all its series, want %v", name, got, want)
		}
	}
}

// A known mix of requests moves the metrics listener's series by exactly
// what it should, each CloudWatch EMF line has the specification's
// structure, and the scrapes themselves are not counted.
func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	small, big := image(t, "flowers.jpeg"), image(t, "pexels-magda-ehlers-5141x3434.jpg")
	for name, data := range map[string][]byte{"img/flowers.jpeg": small, "img/big.jpg": big} {
		if err := os.MkdirAll(filepath.Join(dir, "img"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// One worker and the shortest queue, for the 429s below.
	p := startServer(t, "PRISM_STORAGE=file://"+dir, "PRISM_API_KEYS="+apiKey,
		"PRISM_WORKERS=1", "PRISM_QUEUE=1", "PRISM_CLOUDWATCH_EMF=true", "PRISM_CLOUDWATCH_NAMESPACE=PrismTest")
	before := scrape(t, p)

	miss := get(t, p.URL+"/img/flowers.jpeg?w=123")
	if d := testutil.DecodeImage(t, miss.body); miss.StatusCode != http.StatusOK || d.Format != "jpeg" || d.Width != 123 {
		t.Fatalf("miss: %d, %s %d×%d", miss.StatusCode, d.Format, d.Width, d.Height)
	}
	hit := get(t, p.URL+"/img/flowers.jpeg?w=123")
	notModified := get(t, p.URL+"/img/flowers.jpeg?w=123", "If-None-Match", miss.Header.Get("ETag"))
	missing := get(t, p.URL+"/img/none.jpg?w=100")
	invalid := get(t, p.URL+"/img/flowers.jpeg?w=abc")
	upload := send(t, http.MethodPost, p.URL+"/v1/images?key=up/cat.jpg", apiKey, "image/jpeg", small)
	health := get(t, p.URL+"/healthz")
	metricsOnImagePort := get(t, p.URL+"/metrics")
	for _, c := range []struct {
		name  string
		res   response
		code  int
		cache string
	}{
		{"miss", miss, 200, "miss"}, {"hit", hit, 200, "hit-memory"}, {"304", notModified, 304, "hit-metadata"},
		{"404", missing, 404, ""}, {"400", invalid, 400, ""}, {"upload", upload, 201, ""}, {"health", health, 200, ""},
		{"/metrics on the image port", metricsOnImagePort, 404, ""},
	} {
		if c.res.StatusCode != c.code || c.res.Header.Get("X-Prism-Cache") != c.cache {
			t.Fatalf("%s: %d, X-Prism-Cache %q; want %d, %q", c.name, c.res.StatusCode, c.res.Header.Get("X-Prism-Cache"), c.code, c.cache)
		}
	}
	if ct := metricsOnImagePort.Header.Get("Content-Type"); ct != "application/json" || bytes.Contains(metricsOnImagePort.body, []byte("prism_")) {
		t.Errorf("/metrics on the image port answered %s: %s", ct, metricsOnImagePort.body)
	}
	// Nothing of the scrape above moves the request series.
	scrape(t, p)
	after := scrape(t, p)

	const req, dur = "prism_http_requests_total", "prism_http_request_duration_seconds"
	route := func(route, method, code, cache string) testutil.Labels {
		return testutil.Labels{"route": route, "method": method, "code": code, "cache": cache}
	}
	byLayer := func(route, cache string) testutil.Labels { return testutil.Labels{"route": route, "cache": cache} }
	stage := func(s string) delta {
		return delta{"prism_render_duration_seconds", testutil.Labels{"stage": s, "format": "jpeg"}, 1}
	}
	cacheReq := func(layer, result string, n float64) delta {
		return delta{"prism_cache_requests_total", testutil.Labels{"layer": layer, "result": result}, n}
	}
	storageOp := func(op string, n float64) delta {
		return delta{"prism_storage_duration_seconds", testutil.Labels{"backend": "file", "op": op}, n}
	}
	checkDeltas(t, before, after, []delta{
		{req, route("transform", "GET", "200", "miss"), 1},
		{req, route("transform", "GET", "200", "hit-memory"), 1},
		{req, route("transform", "GET", "304", "hit-metadata"), 1},
		{req, route("transform", "GET", "404", "none"), 1},
		{req, route("transform", "GET", "400", "none"), 1},
		{req, route("upload", "POST", "201", "none"), 1},
		{req, route("health", "GET", "200", "none"), 1},
		{req, route("original", "GET", "404", "none"), 1},
		{dur, byLayer("transform", "miss"), 1},
		{dur, byLayer("transform", "hit-memory"), 1},
		{dur, byLayer("transform", "hit-metadata"), 1},
		{dur, byLayer("transform", "none"), 2},
		{dur, byLayer("upload", "none"), 1},
		{dur, byLayer("health", "none"), 1},
		{dur, byLayer("original", "none"), 1},
		stage("queue"), stage("fetch"), stage("decode"), stage("process"), stage("encode"),
		{"prism_output_bytes_total", testutil.Labels{"format": "jpeg"}, float64(len(miss.body))},
		{"prism_source_bytes", nil, 1},
		{"prism_pipeline_runs_total", nil, 1},
		cacheReq("memory", "miss", 1), cacheReq("memory", "hit", 1),
		// The miss, the missing key and the key "metrics" miss; the hit
		// and the 304 hit. The upload writes, never looks up.
		cacheReq("metadata", "miss", 3), cacheReq("metadata", "hit", 2),
		// The miss: a stat to name the variant, a read, a stat before its
		// metadata is cached; the missing key's stat; the upload's stat
		// and put; the key "metrics" opened.
		storageOp("stat", 4), storageOp("open", 2), storageOp("put", 1),
		{"prism_render_rejected_total", testutil.Labels{"reason": "queue_full"}, 0},
	})
	if got := after.Sum("prism_source_bytes", nil) - before.Sum("prism_source_bytes", nil); got != float64(len(small)) {
		t.Errorf("prism_source_bytes sum grew by %v, want %d", got, len(small))
	}
	for _, s := range []string{"prism_render_in_flight", "prism_render_queued"} {
		if !after.Has(s, nil) || after.Value(s, nil) != 0 {
			t.Errorf("%s = %v at rest, want 0", s, after.Value(s, nil))
		}
	}
	if v := after.Value("prism_cache_memory_bytes", nil); v < float64(len(miss.body)) {
		t.Errorf("prism_cache_memory_bytes = %v with a %d-byte variant cached", v, len(miss.body))
	}
	build := testutil.Labels{"version": "", "go_version": runtime.Version(), "libvips_version": testutil.VipsVersion()}
	for _, m := range after["prism_build_info"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "version" {
				build["version"] = l.GetValue()
			}
		}
	}
	if build["version"] == "" || after.Value("prism_build_info", build) != 1 {
		t.Errorf("prism_build_info: no series %s = 1 in %v", build, after["prism_build_info"])
	}
	for _, family := range []string{"go_goroutines", "process_resident_memory_bytes", "prism_libvips_memory_bytes"} {
		if _, ok := after[family]; !ok {
			t.Errorf("%s is not exported", family)
		}
	}

	// Concurrent misses beyond one worker and one place in the queue: the
	// rest are refused at once, and counted as such.
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := get(t, fmt.Sprintf("%s/img/big.jpg?w=%d", p.URL, 300+i))
			if res.StatusCode == http.StatusOK {
				if d := testutil.DecodeImage(t, res.body); d.Width != 300+i {
					t.Errorf("w=%d answered %d px wide", 300+i, d.Width)
				}
			}
			mu.Lock()
			codes[res.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[http.StatusTooManyRequests] == 0 || codes[http.StatusOK]+codes[http.StatusTooManyRequests] != 6 {
		t.Fatalf("6 concurrent misses with one worker and a queue of one: %v, want 200s and at least one 429", codes)
	}
	overloaded := scrape(t, p)
	n200, n429 := float64(codes[http.StatusOK]), float64(codes[http.StatusTooManyRequests])
	checkDeltas(t, after, overloaded, []delta{
		{req, route("transform", "GET", "200", "miss"), n200},
		{req, route("transform", "GET", "429", "none"), n429},
		{dur, byLayer("transform", "miss"), n200},
		{dur, byLayer("transform", "none"), n429},
		{"prism_render_rejected_total", testutil.Labels{"reason": "queue_full"}, n429},
		{"prism_render_rejected_total", testutil.Labels{"reason": "timeout"}, 0},
		{"prism_render_rejected_total", testutil.Labels{"reason": "too_large"}, 0},
		{"prism_pipeline_runs_total", nil, n200},
	})

	// The health checks that waited for the server to start wrote lines too.
	started := int(before.Value(req, route("health", "GET", "200", "none")))
	checkEMFLines(t, p, map[string]int{
		"transform 200 miss": 1 + int(n200), "transform 200 hit-memory": 1, "transform 304 hit-metadata": 1,
		"transform 404 none": 1, "transform 400 none": 1, "transform 429 none": int(n429),
		"upload 201 none": 1, "health 200 none": started + 1, "original 404 none": 1,
	}, miss)
}

// checkEMFLines checks every EMF line p wrote against the specification,
// counts them by route, code and cache layer, and checks the one of the
// first render: its stages, its bytes, and the request log line beside it.
func checkEMFLines(t *testing.T, p *testutil.Process, want map[string]int, rendered response) {
	t.Helper()
	id := rendered.Header.Get("X-Request-ID")
	var got map[string]int
	var renderLine map[string]any
	// Log lines reach the output up to 100 ms after their answers.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, renderLine = map[string]int{}, nil
		for _, line := range strings.Split(p.Output(), "\n") {
			if !strings.Contains(line, `"_aws"`) {
				continue
			}
			root, err := testutil.CheckEMF([]byte(line))
			if err != nil {
				t.Fatalf("%v:\n%s", err, line)
			}
			directive := root["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
			if directive["Namespace"] != "PrismTest" {
				t.Errorf("namespace %v, want PrismTest", directive["Namespace"])
			}
			got[fmt.Sprintf("%v %v %v", root["Route"], root["Code"], root["Cache"])]++
			if root["request_id"] == id {
				renderLine = root
			}
		}
		if fmt.Sprint(got) == fmt.Sprint(want) || time.Now().After(deadline) {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("EMF lines by route, code and cache: %v, want %v", got, want)
	}
	if renderLine == nil {
		t.Fatalf("no EMF line with the render's request ID %s", id)
	}
	if renderLine["OutputBytes"] != float64(len(rendered.body)) || renderLine["Requests"] != 1.0 || renderLine["Status5xx"] != 0.0 {
		t.Errorf("the render's EMF line: %v", renderLine)
	}
	// Each metric under the dimension sets the README lists.
	requests := "[[Service] [Service Route] [Service Route Cache] [Service Route Code]]"
	times := "[[Service] [Service Route] [Service Route Cache]]"
	work := "[[Service] [Service Route]]"
	wantSets := map[string]string{
		"Requests": requests, "Duration": times, "Status5xx": times, "Status429": times, "OutputBytes": work,
		"QueueTime": work, "FetchTime": work, "DecodeTime": work, "ProcessTime": work, "EncodeTime": work,
	}
	gotSets := map[string]string{}
	for _, d := range renderLine["_aws"].(map[string]any)["CloudWatchMetrics"].([]any) {
		d := d.(map[string]any)
		for _, m := range d["Metrics"].([]any) {
			gotSets[m.(map[string]any)["Name"].(string)] = fmt.Sprint(d["Dimensions"])
		}
	}
	if fmt.Sprint(gotSets) != fmt.Sprint(wantSets) {
		t.Errorf("dimension sets by metric: %v\nwant %v", gotSets, wantSets)
	}
	logLine := waitForLog(t, p, func(e map[string]any) bool { return e["msg"] == "request" && e["request_id"] == id })
	for _, field := range []string{"queue_ms", "fetch_ms", "decode_ms", "process_ms", "encode_ms"} {
		metric := strings.ToUpper(field[:1]) + strings.TrimSuffix(field[1:], "_ms") + "Time"
		if _, ok := logLine[field].(float64); !ok || renderLine[metric] != logLine[field] {
			t.Errorf("%s: log %v, EMF %s %v", field, logLine[field], metric, renderLine[metric])
		}
	}
	if logLine["route"] != "transform" || logLine["cache"] != "miss" || logLine["output_bytes"] != float64(len(rendered.body)) {
		t.Errorf("the render's log line: %v", logLine)
	}
}

// Every response carries X-Request-ID: the client's when it is sane, else
// a new one; the request log line carries it too.
func TestRequestID(t *testing.T) {
	p := backends[0].proc
	generated := regexp.MustCompile(`^[A-Z2-7]{26}$`)
	tests := []struct {
		name, sent string
		echoed     bool
	}{
		{"none", "", false},
		{"a UUID", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"an AWS trace root", "Root=1-5759e988-bd862e3fe1be46a994272793", true},
		{"a space", "a b", false},
		{"a quote", `x"y`, false},
		{"128 bytes", strings.Repeat("a", 128), true},
		{"129 bytes", strings.Repeat("a", 129), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, p.URL+"/img/flowers.jpeg?w=20&rid="+strconv.Itoa(len(tt.sent)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.sent != "" {
				req.Header["X-Request-Id"] = []string{tt.sent}
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			id := res.Header.Get("X-Request-ID")
			switch {
			case tt.echoed && id != tt.sent:
				t.Errorf("X-Request-ID %q, want the client's %q", id, tt.sent)
			case !tt.echoed && !generated.MatchString(id):
				t.Errorf("X-Request-ID %q, want a new one", id)
			}
			waitForLog(t, p, func(e map[string]any) bool { return e["msg"] == "request" && e["request_id"] == id })
		})
	}
}

// promtool, Prometheus' own linter, passes a live scrape.
func TestMetricsLint(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is missing: make test installs Debian's prometheus package, which ships it")
	}
	get(t, backends[0].proc.URL+"/img/flowers.jpeg?w=31")
	res, err := http.Get(backends[0].proc.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := readAll(res)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// Every metric the Grafana dashboard queries is in a live scrape.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testutil.Root(), "deploy", "grafana", "prism.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dashboard any
	if err := json.Unmarshal(data, &dashboard); err != nil {
		t.Fatalf("deploy/grafana/prism.json: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(dashboard)
	if len(exprs) < 10 {
		t.Fatalf("%d queries in the dashboard", len(exprs))
	}
	live := scrape(t, backends[1].proc) // the S3 one, with Redis
	name := regexp.MustCompile(`\b(?:prism|go|process)_[a-zA-Z0-9_]+`)
	for _, expr := range exprs {
		for _, m := range name.FindAllString(expr, -1) {
			family := m
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(m, suffix); ok && live[base] != nil && live[base].GetType().String() == "HISTOGRAM" {
					family = base
				}
			}
			if _, ok := live[family]; !ok {
				t.Errorf("the dashboard queries %s, which no scrape has: %s", m, expr)
			}
		}
	}
}

// A client that leaves before its answer is no failure: logged and counted
// as 499, never as a 5xx, a timeout or a storage error.
func TestClientGone(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "photo.jpg"), image(t, "pexels-magda-ehlers-5141x3434.jpg"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServer(t, "PRISM_STORAGE=file://"+dir)
	before := scrape(t, p)
	// Seconds of PNG work; the client gives up long before.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/photo.jpg?lb=5000,3400&fm=png", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := client.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("answered %d within 300 ms: the test proves nothing", res.StatusCode)
	}
	line := waitForLog(t, p, func(e map[string]any) bool { return e["msg"] == "request" && e["key"] == "photo.jpg" })
	if line["status"] != float64(499) {
		t.Errorf("logged status %v, want 499", line["status"])
	}
	after := scrape(t, p)
	labels := testutil.Labels{"route": "transform", "method": "GET", "code": "499", "cache": "none"}
	if n := after.Value("prism_http_requests_total", labels) - before.Value("prism_http_requests_total", labels); n != 1 {
		t.Errorf("prism_http_requests_total%s grew by %v, want 1", labels, n)
	}
	for _, code := range []string{"500", "502", "503", "504"} {
		for _, m := range after["prism_http_requests_total"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code && m.GetCounter().GetValue() > 0 {
					t.Errorf("a %s was counted", code)
				}
			}
		}
	}
	for _, family := range []string{"prism_render_rejected_total", "prism_storage_errors_total"} {
		if n := after.Total(family, nil) - before.Total(family, nil); n != 0 {
			t.Errorf("%s grew by %v", family, n)
		}
	}
}
