package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prism-image/prism/internal/testutil"
)

// memoryBudget is what one server with two workers may hold resident under
// any of the hostile requests below.
const memoryBudget = 700 << 20

// hostileServer serves a folder holding files, with two workers, glibc
// arenas bounded as in production, Redis for metadata, and env.
func hostileServer(t *testing.T, files map[string][]byte, env ...string) *testutil.Process {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return startServer(t, append([]string{
		"PRISM_STORAGE=file://" + dir, "PRISM_WORKERS=2", "MALLOC_ARENA_MAX=2", "PRISM_REDIS_URL=" + redis.URL(),
	}, env...)...)
}

// Tiny files and plain URLs that would cost a careless server gigabytes or
// minutes get a clear answer, within the memory budget, and leave the CPU
// idle once answered.
func TestHostileInputs(t *testing.T) {
	p := hostileServer(t, map[string][]byte{
		"dot.png":    testutil.TinyPNG(t),
		"dot-2.png":  testutil.TinyPNG(t),
		"frames.gif": testutil.TinyFramesGIF(t, 100),
		"blur.svg":   testutil.BlurSVG(7000, 2),
		"bomb-a.gif": testutil.BombGIF(t, 7000),
		"bomb-b.gif": testutil.BombGIF(t, 7000),
	})
	tests := []struct {
		name  string
		paths []string // requested at once
		want  want
	}{
		{"1x1 letterboxed to 8192x8192, every format", []string{
			"/dot.png?lb=8192,8192&fm=jpeg", "/dot.png?lb=8192,8192&fm=png", "/dot.png?lb=8192,8192&fm=webp",
			"/dot.png?lb=8192,8192&fm=avif", "/dot.png?lb=8192,8192&fm=gif",
		}, want{status: 422, code: "output_too_large"}},
		// Each would hold about 350 MB: they run one after the other.
		{"1x1 letterboxed to 5000x5000 in AVIF, twice at once", []string{"/dot.png?lb=5000,5000&fm=avif", "/dot-2.png?lb=5000,5000&fm=avif"},
			want{status: 200, width: 5000, height: 5000, frames: 1}},
		{"1x1 letterboxed to 5000x5000 in GIF, twice at once", []string{"/dot.png?lb=5000,5000&fm=gif", "/dot-2.png?lb=5000,5000&fm=gif"},
			want{status: 200, width: 5000, height: 5000, frames: 1}},
		{"100 frames of 1x1 letterboxed to 2048x2048", []string{"/frames.gif?lb=2048,2048", "/frames.gif?lb=2048,2048&fm=webp"},
			want{status: 422, code: "output_too_large"}},
		{"100 frames of 1x1 letterboxed to 8192x8192", []string{"/frames.gif?lb=8192,8192", "/frames.gif?lb=8192,8192&fm=webp"},
			want{status: 422, code: "output_too_large"}},
		{"100 frames of 1x1 letterboxed within the bounds", []string{"/frames.gif?lb=200,200"},
			want{status: 200, format: "gif", width: 200, height: 200, frames: 100}},
		{"7000x7000 blurred SVG at w=64", []string{"/blur.svg?w=64"},
			want{status: 200, format: "png", width: 64, height: 64, frames: 1}},
		{"7000x7000 blurred SVG at its declared size", []string{"/blur.svg?fm=png", "/blur.svg?fm=webp"},
			want{status: 422, code: "source_too_large"}},
		{"four metadata requests of a fresh 7000x7000 LZW bomb", []string{
			"/v1/images/bomb-a.gif", "/v1/images/bomb-a.gif", "/v1/images/bomb-a.gif", "/v1/images/bomb-a.gif",
		}, want{status: 200, format: "gif", width: 7000, height: 7000, frames: 1}},
		{"four transforms of a fresh 7000x7000 LZW bomb", []string{
			"/bomb-b.gif?w=100", "/bomb-b.gif?w=200", "/bomb-b.gif?w=300", "/bomb-b.gif?w=400",
		}, want{status: 200, format: "gif", frames: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostileRequests(t, p, tt.paths, tt.want, time.Second)
		})
	}
}

// Renders past PRISM_TIMEOUT are stopped: a 503, and the CPU idle at once.
// libvips stops at its next tile; an SVG is drawn in a child process, which
// is killed.
func TestHostileDeadline(t *testing.T) {
	photo := testutil.ReadTestImage(t, "pexels-magda-ehlers-5141x3434.jpg")
	p := hostileServer(t, map[string][]byte{
		"photo.jpg": photo, "photo-2.jpg": photo,
		"blurs.svg": testutil.BlurSVG(1900, 60), // within the SVG limit: minutes of librsvg
	}, "PRISM_TIMEOUT=500ms")
	// 48 MP of PNG: two seconds of work each.
	hostileRequests(t, p, []string{"/photo.jpg?lb=8000,6000&fm=png", "/photo-2.jpg?lb=8000,6000&fm=png"},
		want{status: 503, code: "unavailable"}, time.Second)
	hostileRequests(t, p, []string{"/blurs.svg?fm=png", "/blurs.svg?w=1000"}, want{status: 503, code: "unavailable"}, time.Second)
	for deadline := time.Now().Add(time.Second); len(testutil.Children(t, p.Cmd.Process.Pid)) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("SVG rasterisers still running a second after the 503: %v", testutil.Children(t, p.Cmd.Process.Pid))
		}
	}
	if n := scrape(t, p).Value("prism_render_rejected_total", testutil.Labels{"reason": "timeout"}); n != 4 {
		t.Errorf(`prism_render_rejected_total{reason="timeout"} = %v after four 503s, want 4`, n)
	}
}

// want is what every answer to a hostile request must be.
type want struct {
	status        int
	code          string // of an error
	format        string // of an image; "": the one fm= asks for
	width, height int    // 0: any
	frames        int
}

// hostileRequests sends paths to p at once and checks every answer, the
// peak memory they cost, and that the server is idle within idle of the
// last answer.
func hostileRequests(t *testing.T, p *testutil.Process, paths []string, w want, idle time.Duration) {
	t.Helper()
	pid := p.Cmd.Process.Pid
	testutil.TimeToIdle(t, pid, 30*time.Second)
	testutil.ResetPeakRSS(t, pid)
	var wg sync.WaitGroup
	for _, path := range paths {
		wg.Go(func() { checkAnswer(t, get(t, p.URL+path), path, w) })
	}
	wg.Wait()
	if took := testutil.TimeToIdle(t, pid, 30*time.Second); took > idle {
		t.Errorf("the server was busy %v after answering, want at most %v", took, idle)
	}
	if peak := testutil.PeakRSS(t, pid); peak > memoryBudget {
		t.Errorf("peak RSS %d MB, over the budget of %d MB", peak>>20, memoryBudget>>20)
	} else {
		t.Logf("peak RSS %d MB", peak>>20)
	}
}

// checkAnswer checks one answer: an error's status and code, or an image's
// format (by default the one fm= asks for), size and frames (metadata JSON
// for /v1/images/).
func checkAnswer(t *testing.T, res response, path string, w want) {
	t.Helper()
	status, code, format, width, height, frames := w.status, w.code, w.format, w.width, w.height, w.frames
	if res.StatusCode != status {
		t.Errorf("%s: status %d, want %d: %.300s", path, res.StatusCode, status, res.body)
		return
	}
	switch {
	case status >= 400:
		var body struct{ Error struct{ Code string } }
		if err := json.Unmarshal(res.body, &body); err != nil || body.Error.Code != code {
			t.Errorf("%s: body %s, want code %s", path, res.body, code)
		}
	case strings.HasPrefix(path, "/v1/images/"):
		var m struct {
			Width, Height, Frames int
			Format                string
		}
		if err := json.Unmarshal(res.body, &m); err != nil || m.Format != format || m.Width != width || m.Height != height || m.Frames != frames {
			t.Errorf("%s: metadata %s", path, res.body)
		}
	default:
		if format == "" { // as the path asks
			u, _ := url.Parse(path)
			format = u.Query().Get("fm")
		}
		d := testutil.DecodeImage(t, res.body)
		if d.Format != format || d.Frames != frames || (width > 0 && (d.Width != width || d.Height != height)) {
			t.Errorf("%s: %s %dx%d×%d, want %s %dx%d×%d", path, d.Format, d.Width, d.Height, d.Frames, format, width, height, frames)
		}
	}
}

// SIGTERM during a render that outlives the drain: the request gets a 503,
// the work is stopped, libvips shuts down after it, and the process exits
// 0 with nothing left running.
func TestShutdownDuringRender(t *testing.T) {
	p := hostileServer(t, map[string][]byte{"photo.jpg": testutil.ReadTestImage(t, "pexels-magda-ehlers-5141x3434.jpg")},
		"PRISM_SHUTDOWN_TIMEOUT=500ms", "PRISM_TIMEOUT=60s")
	pid := p.Cmd.Process.Pid
	cpu := testutil.CPUTime(t, pid)
	answered := make(chan response, 1)
	go func() { answered <- get(t, p.URL+"/photo.jpg?lb=8000,6000&fm=png") }()
	// Two seconds of work: signal once a few hundred milliseconds are done.
	for testutil.CPUTime(t, pid)-cpu < 300*time.Millisecond {
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res := <-answered
	checkAnswer(t, res, "the render in flight", want{status: http.StatusServiceUnavailable, code: "unavailable"})
	exited := make(chan error, 1)
	go func() { exited <- p.Cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, p.Output())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5 s after SIGTERM:\n%s", p.Output())
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("shutdown took %v with a 500 ms drain", took)
	}
	out := p.Output()
	for _, bad := range []string{"SIGSEGV", "panic", "fatal error"} {
		if strings.Contains(out, bad) {
			t.Errorf("the output mentions %s:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, `"msg":"stopped"`) || !strings.Contains(out, "stopping the image work still in progress") {
		t.Errorf("the shutdown did not go as designed:\n%s", out)
	}
}
