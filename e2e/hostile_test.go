package e2e

import (
	"encoding/json"
	"net/http"
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
// minutes get a clear answer, within the memory budget; work stopped at
// its deadline leaves the CPU idle at once.
func TestHostileInputs(t *testing.T) {
	p := hostileServer(t, map[string][]byte{
		"dot.png":     testutil.TinyPNG(t),
		"frames.gif":  testutil.TinyFramesGIF(t, 100),
		"blur.svg":    testutil.BlurSVG(7000),
		"bomb-a.gif":  testutil.BombGIF(t, 7000),
		"bomb-b.gif":  testutil.BombGIF(t, 7000),
		"photo.jpg":   testutil.ReadTestImage(t, "pexels-magda-ehlers-5141x3434.jpg"),
		"photo-2.jpg": testutil.ReadTestImage(t, "pexels-magda-ehlers-5141x3434.jpg"),
	}, "PRISM_TIMEOUT=2s")
	pid := p.Cmd.Process.Pid
	type want struct {
		status        int
		code          string // of an error
		format        string // of an image
		width, height int
		frames        int
	}
	tests := []struct {
		name  string
		paths []string // requested at once
		want  want
		// idle bounds the time from the last answer until the server's CPU
		// is idle: work stopped at its deadline must not go on.
		idle time.Duration
	}{
		{"1x1 letterboxed to 8192x8192, every format", []string{
			"/dot.png?lb=8192,8192&fm=jpeg", "/dot.png?lb=8192,8192&fm=png", "/dot.png?lb=8192,8192&fm=webp",
			"/dot.png?lb=8192,8192&fm=avif", "/dot.png?lb=8192,8192&fm=gif",
		}, want{status: 422, code: "output_too_large"}, time.Second},
		{"100 frames of 1x1 letterboxed to 2048x2048", []string{"/frames.gif?lb=2048,2048", "/frames.gif?lb=2048,2048&fm=webp"},
			want{status: 422, code: "output_too_large"}, time.Second},
		{"100 frames of 1x1 letterboxed to 8192x8192", []string{"/frames.gif?lb=8192,8192", "/frames.gif?lb=8192,8192&fm=webp"},
			want{status: 422, code: "output_too_large"}, time.Second},
		{"100 frames of 1x1 letterboxed within the bounds", []string{"/frames.gif?lb=200,200"},
			want{status: 200, format: "gif", width: 200, height: 200, frames: 100}, time.Second},
		{"7000x7000 blurred SVG at w=64", []string{"/blur.svg?w=64"},
			want{status: 200, format: "png", width: 64, height: 64, frames: 1}, time.Second},
		{"7000x7000 blurred SVG at its declared size", []string{"/blur.svg?fm=png", "/blur.svg?fm=webp"},
			want{status: 422, code: "source_too_large"}, time.Second},
		{"four metadata requests of a fresh 7000x7000 LZW bomb", []string{
			"/v1/images/bomb-a.gif", "/v1/images/bomb-a.gif", "/v1/images/bomb-a.gif", "/v1/images/bomb-a.gif",
		}, want{status: 200, format: "gif", width: 7000, height: 7000, frames: 1}, time.Second},
		{"four transforms of a fresh 7000x7000 LZW bomb", []string{
			"/bomb-b.gif?w=100", "/bomb-b.gif?w=200", "/bomb-b.gif?w=300", "/bomb-b.gif?w=400",
		}, want{status: 200, format: "gif", frames: 1}, time.Second},
		{"renders past their deadline", []string{"/photo.jpg?lb=8000,6000&fm=png", "/photo-2.jpg?lb=8000,6000&fm=png"},
			want{status: 503, code: "unavailable"}, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.TimeToIdle(t, pid, 30*time.Second)
			testutil.ResetPeakRSS(t, pid)
			var wg sync.WaitGroup
			for _, path := range tt.paths {
				wg.Go(func() {
					checkAnswer(t, get(t, p.URL+path), path, tt.want.status, tt.want.code, tt.want.format, tt.want.width, tt.want.height, tt.want.frames)
				})
			}
			wg.Wait()
			if idle := testutil.TimeToIdle(t, pid, 30*time.Second); idle > tt.idle {
				t.Errorf("the server was busy %v after answering, want at most %v", idle, tt.idle)
			}
			if peak := testutil.PeakRSS(t, pid); peak > memoryBudget {
				t.Errorf("peak RSS %d MB, over the budget of %d MB", peak>>20, memoryBudget>>20)
			} else {
				t.Logf("peak RSS %d MB", peak>>20)
			}
		})
	}
}

// checkAnswer checks one answer: an error's status and code, or an image's
// format, size and frames (metadata JSON for /v1/images/).
func checkAnswer(t *testing.T, res response, path string, status int, code, format string, width, height, frames int) {
	t.Helper()
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
	answered := make(chan response, 1)
	go func() { answered <- get(t, p.URL+"/photo.jpg?lb=8000,6000&fm=png") }()
	time.Sleep(700 * time.Millisecond) // the render is under way
	start := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res := <-answered
	checkAnswer(t, res, "the render in flight", http.StatusServiceUnavailable, "unavailable", "", 0, 0, 0)
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
