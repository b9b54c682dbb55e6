package testutil

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BuildBinary compiles the main package pkg (relative to the repository
// root, e.g. "./cmd/server") into dir and returns the binary's path. Tests
// run the compiled binary, as production does.
func BuildBinary(pkg, dir string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = Root()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// Process is a running server binary.
type Process struct {
	URL string
	// MetricsURL is the Prometheus listener's base URL, for a Prism started
	// by StartServer.
	MetricsURL string
	Cmd        *exec.Cmd
	out        *SyncBuffer
}

// Output is everything the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Stop kills the process, if it still runs, and waits for it.
func (p *Process) Stop() {
	_ = p.Cmd.Process.Kill()
	_ = p.Cmd.Wait()
}

// StartServer runs bin listening on a free loopback port, and its metrics
// on another, with env added to the test's environment (env may set
// PRISM_METRICS_ADDR itself), and waits until GET /healthz answers 200.
func StartServer(bin string, env ...string) (*Process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	metrics := "127.0.0.1:" + strconv.Itoa(port)
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PRISM_METRICS_ADDR="); ok {
			metrics = v
		}
	}
	p, err := Launch(bin, "PRISM_ADDR", "/healthz", append([]string{"PRISM_METRICS_ADDR=" + metrics}, env...)...)
	if err != nil {
		return nil, err
	}
	p.MetricsURL = "http://" + metrics
	return p, nil
}

// Launch runs the server bin with env added to the test's environment,
// telling it a free loopback address in the variable addrVar, and waits
// until GET healthPath answers 200: any server, Prism or a peer.
func Launch(bin, addrVar, healthPath string, env ...string) (*Process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), addrVar+"="+addr), env...)
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{URL: "http://" + addr, Cmd: cmd, out: out}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(p.URL + healthPath)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Stop()
	return nil, fmt.Errorf("%s did not become healthy:\n%s", bin, out.String())
}

// SyncBuffer is a bytes.Buffer safe for one goroutine (or process) to write
// while a test reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
