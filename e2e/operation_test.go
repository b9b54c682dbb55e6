package e2e

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prism-image/prism/internal/testutil"
)

func startServer(t *testing.T, env ...string) *testutil.Process {
	t.Helper()
	p, err := testutil.StartServer(serverBin, env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func TestSourceByteLimit(t *testing.T) {
	p := startServer(t, "PRISM_STORAGE=file://"+fileRoot, "PRISM_MAX_SOURCE_BYTES=100000")
	if res := get(t, p.URL+"/img/flowers.jpeg?w=100"); res.StatusCode != http.StatusOK { // 85 kB
		t.Errorf("source under the byte limit: status %d", res.StatusCode)
	}
	res := get(t, p.URL+"/img/2569067123_aca715a2ee_o.jpg?w=100") // 829 kB
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(res.body), `"source_too_large"`) {
		t.Errorf("source over the byte limit: status %d %s", res.StatusCode, res.body)
	}
	if n := scrape(t, p).Value("prism_render_rejected_total", testutil.Labels{"reason": "too_large"}); n != 1 {
		t.Errorf(`prism_render_rejected_total{reason="too_large"} = %v, want 1`, n)
	}
	// Originals are streamed, never buffered, so the limit does not apply.
	if res := get(t, p.URL+"/img/2569067123_aca715a2ee_o.jpg"); res.StatusCode != http.StatusOK {
		t.Errorf("original over the transform limit: status %d", res.StatusCode)
	}
}

func TestPixelLimitSetting(t *testing.T) {
	p := startServer(t, "PRISM_STORAGE=file://"+fileRoot, "PRISM_MAX_SOURCE_PIXELS=100000")
	if res := get(t, p.URL+"/img/320x240.jpg?w=10"); res.StatusCode != http.StatusOK {
		t.Errorf("76,800 px under a 100,000 px limit: status %d", res.StatusCode)
	}
	if res := get(t, p.URL+"/img/flowers.jpeg?w=10"); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("2 MP over a 100,000 px limit: status %d", res.StatusCode)
	}
}

// An S3 endpoint that refuses connections is a storage failure (502); one
// that accepts and never answers is a storage timeout (504).
func TestStorageFailures(t *testing.T) {
	closed := testutil.FreePort(t)
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	tests := []struct {
		name, endpoint string
		status         int
		code           string
	}{
		{"refused", "http://127.0.0.1:" + itoa(closed), http.StatusBadGateway, "storage_error"},
		{"silent", "http://" + hang.Addr().String(), http.StatusGatewayTimeout, "storage_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append(minio.Env(), "AWS_ENDPOINT_URL_S3="+tt.endpoint, "PRISM_STORAGE_TIMEOUT=1s", "AWS_MAX_ATTEMPTS=1")
			p := startServer(t, env...)
			before := scrape(t, p)
			for _, path := range []string{"/img/flowers.jpeg?w=100", "/img/flowers.jpeg"} {
				start := time.Now()
				res := get(t, p.URL+path)
				if res.StatusCode != tt.status || !strings.Contains(string(res.body), `"`+tt.code+`"`) {
					t.Errorf("%s: status %d %s, want %d %s", path, res.StatusCode, res.body, tt.status, tt.code)
				}
				if got := res.Header.Get("Cache-Control"); got != "public, max-age=10, s-maxage=10" {
					t.Errorf("%s: Cache-Control %q", path, got)
				}
				if d := time.Since(start); d > 15*time.Second {
					t.Errorf("%s took %v", path, d)
				}
			}
			// The transform's stat and the original's open failed.
			after := scrape(t, p)
			for _, op := range []string{"stat", "open"} {
				l := testutil.Labels{"backend": "s3", "op": op}
				if n := after.Value("prism_storage_errors_total", l) - before.Value("prism_storage_errors_total", l); n != 1 {
					t.Errorf("prism_storage_errors_total%s grew by %v, want 1", l, n)
				}
				if n := after.Value("prism_storage_duration_seconds", l) - before.Value("prism_storage_duration_seconds", l); n != 1 {
					t.Errorf("prism_storage_duration_seconds%s counted %v calls, want 1", l, n)
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// SIGTERM lets the request in flight finish, then the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	p := startServer(t, "PRISM_STORAGE=file://"+fileRoot)
	type result struct {
		res *http.Response
		err error
	}
	done := make(chan result, 1)
	go func() {
		// A deliberately slow transform: a large AVIF of the 17.6 MP photo.
		res, err := client.Get(p.URL + "/img/pexels-magda-ehlers-5141x3434.jpg?w=3000&fm=avif&q=90")
		if err == nil {
			_, err = readAll(res)
		}
		done <- result{res, err}
	}()
	time.Sleep(400 * time.Millisecond)
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.res.StatusCode != http.StatusOK {
		t.Fatalf("in-flight request during shutdown: %v %v", r.res, r.err)
	}
	if err := p.Cmd.Wait(); err != nil {
		t.Fatalf("server exit: %v\n%s", err, p.Output())
	}
	if !strings.Contains(p.Output(), `"msg":"draining"`) {
		t.Errorf("the request finished before SIGTERM arrived, so draining was not exercised:\n%s", p.Output())
	}
}

// Every setting `server --help` lists is in the README's table, and the
// other way round.
func TestSettingsDocumented(t *testing.T) {
	out, err := exec.Command(serverBin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("server --help: %v\n%s", err, out)
	}
	readme, err := os.ReadFile(filepath.Join(testutil.Root(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	vars := regexp.MustCompile(`PRISM_[A-Z0-9_]+`)
	listed := map[string]bool{}
	for _, v := range vars.FindAllString(string(out), -1) {
		listed[v] = true
		if !strings.Contains(string(readme), "`"+v+"`") {
			t.Errorf("%s is a setting but the README's table does not document it", v)
		}
	}
	if len(listed) < 10 {
		t.Fatalf("server --help lists only %d settings:\n%s", len(listed), out)
	}
	table := regexp.MustCompile("(?m)^\\| `(PRISM_[A-Z0-9_]+)`")
	for _, m := range table.FindAllStringSubmatch(string(readme), -1) {
		if !listed[m[1]] {
			t.Errorf("the README documents %s, which server --help does not list", m[1])
		}
	}
}
