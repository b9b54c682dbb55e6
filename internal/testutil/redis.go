package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStartTimeout bounds the wait for a fresh redis-server to answer PING.
const redisStartTimeout = 15 * time.Second

// Redis is a running redis-server on a loopback port, with nothing persisted:
// its data lives as long as the process.
type Redis struct {
	Addr string // 127.0.0.1:port

	bin  string
	port int
	dir  string // --dir, and where the server's log goes

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil once killed
	exited chan struct{} // closed when cmd has exited

	clientOnce sync.Once
	client     *redis.Client
}

// StartRedis starts a redis-server for the duration of t. It fails t, rather
// than skipping it, when the redis-server binary is missing: a test that
// silently skips is a test nobody runs.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r, stop, err := StartRedisServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return r
}

// StartRedisServer is StartRedis for callers without a testing.TB, such as
// TestMain. The caller must call stop, which kills the server and removes
// its directory.
func StartRedisServer() (r *Redis, stop func(), err error) {
	bin, err := redisBinary()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "prism-redis-")
	if err != nil {
		return nil, nil, fmt.Errorf("testutil: %w", err)
	}
	// The port is free when chosen but may be taken before redis-server
	// binds it; a server that exits during start-up is retried on a new one.
	for range 3 {
		var port int
		if port, err = freePort(); err != nil {
			os.RemoveAll(dir)
			return nil, nil, fmt.Errorf("testutil: %w", err)
		}
		r = &Redis{Addr: "127.0.0.1:" + strconv.Itoa(port), bin: bin, port: port, dir: dir}
		if err = r.start(); !errors.Is(err, errRedisExited) {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			r.Kill()
			r.clientOnce.Do(func() {}) // a later Client call makes none
			if r.client != nil {
				r.client.Close()
			}
			os.RemoveAll(dir)
		})
	}
	return r, stop, nil
}

// redisBinary finds redis-server in PATH, /usr/bin or /usr/sbin.
func redisBinary() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/bin", "/usr/sbin"} {
		p := filepath.Join(d, "redis-server")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("testutil: the redis-server binary is not in PATH nor in /usr/bin or /usr/sbin: run `make test`, which installs redis-server")
}

var errRedisExited = errors.New("redis-server exited during start-up")

// start runs the server on r.port and waits until it answers PING.
func (r *Redis) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return fmt.Errorf("testutil: redis-server at %s is already running", r.Addr)
	}
	logPath := filepath.Join(r.dir, "redis.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testutil: %w", err)
	}
	cmd := exec.Command(r.bin,
		"--save", "",
		"--appendonly", "no",
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(r.port),
		"--dir", r.dir,
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("testutil: starting redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	if err := waitPong(r.Addr, exited); err != nil {
		killGroup(cmd.Process)
		<-exited
		log, _ := os.ReadFile(logPath)
		if errors.Is(err, errRedisExited) {
			return fmt.Errorf("testutil: redis-server at %s: %w\nredis log:\n%s", r.Addr, err, tail(log, 4096))
		}
		return fmt.Errorf("testutil: redis-server at %s: %v\nredis log:\n%s", r.Addr, err, tail(log, 4096))
	}
	r.cmd, r.exited = cmd, exited
	return nil
}

// waitPong polls addr with PING until it answers PONG, the process exits or
// redisStartTimeout passes.
func waitPong(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(redisStartTimeout)
	for {
		err := ping(addr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG after %v (last error: %v)", redisStartTimeout, err)
		}
		select {
		case <-exited:
			return errRedisExited
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping sends one inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// URL is the server's address as a redis:// URL on database 0, the form
// PRISM_REDIS_URL takes.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// Kill kills the server with SIGKILL and waits for it to exit. Its data is
// lost. Killing a server that is not running does nothing.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	killGroup(r.cmd.Process)
	<-r.exited
	r.cmd, r.exited = nil, nil
}

// Restart starts the server again, after Kill, on the same port and with the
// same flags, and waits until it answers PING. It starts empty: nothing was
// saved.
func (r *Redis) Restart() error {
	return r.start()
}

// Client returns a go-redis client for the server, for assertions on what it
// holds. It is closed when the server is stopped, and reconnects by itself
// after a Restart.
func (r *Redis) Client() *redis.Client {
	r.clientOnce.Do(func() {
		r.client = redis.NewClient(&redis.Options{Addr: r.Addr})
	})
	return r.client
}
