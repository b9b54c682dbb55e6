package testutil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Lambda Runtime API paths, as AWS documents them.
const (
	lambdaAPIVersion = "/2018-06-01"
	lambdaNextPath   = lambdaAPIVersion + "/runtime/invocation/next"
)

// LambdaMaxResponseBytes is the largest response the runtime accepts, as
// Lambda's own (6 MB for a synchronous invocation); a larger one is a 413.
const LambdaMaxResponseBytes = 6 << 20

// LambdaRuntime is a Lambda Runtime API server for a function process under
// test: the process polls it for events as it would in Lambda
// (AWS_LAMBDA_RUNTIME_API), and Invoke hands it one and waits for its
// answer. It implements next invocation, response, error and init error.
type LambdaRuntime struct {
	// Addr is host:port, the value of AWS_LAMBDA_RUNTIME_API.
	Addr string
	// FunctionName names the function in Env and in the invoked ARN.
	FunctionName string
	// Timeout sets each invocation's deadline (Lambda-Runtime-Deadline-Ms);
	// 5 minutes unless changed before the first Invoke.
	Timeout time.Duration
	// MaxResponseBytes bounds a response; LambdaMaxResponseBytes unless
	// changed before the first Invoke.
	MaxResponseBytes int

	srv    *http.Server
	queue  chan *lambdaInvocation
	closed chan struct{}
	ready  chan struct{} // closed at the first request for an event

	mu        sync.Mutex
	inflight  map[string]*lambdaInvocation
	initErr   *LambdaError
	initDone  chan struct{} // closed when initErr is set
	closeOnce sync.Once
	readyOnce sync.Once
}

type lambdaInvocation struct {
	id       string
	payload  []byte
	done     chan struct{}
	once     sync.Once
	response []byte
	err      error
}

func (inv *lambdaInvocation) finish(response []byte, err error) bool {
	finished := false
	inv.once.Do(func() {
		inv.response, inv.err, finished = response, err, true
		close(inv.done)
	})
	return finished
}

// LambdaError is an invocation that failed: the error the function
// reported (Type is its errorType, e.g. "errorString" for a Go error), or
// the runtime's own verdict (Type "Function.ResponseSizeTooLarge").
type LambdaError struct {
	Type       string          `json:"errorType"`
	Message    string          `json:"errorMessage"`
	StackTrace json.RawMessage `json:"stackTrace,omitempty"`
	Init       bool            `json:"-"` // reported through /runtime/init/error
}

func (e *LambdaError) Error() string {
	if e.Init {
		return fmt.Sprintf("lambda init error %s: %s", e.Type, e.Message)
	}
	return fmt.Sprintf("lambda function error %s: %s", e.Type, e.Message)
}

// StartLambdaRuntime starts a runtime on a free loopback port, stopped when
// the test ends.
func StartLambdaRuntime(t testing.TB) *LambdaRuntime {
	t.Helper()
	rt, err := NewLambdaRuntime()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// NewLambdaRuntime starts a runtime on a free loopback port. Close stops it.
func NewLambdaRuntime() (*LambdaRuntime, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testutil: %w", err)
	}
	rt := &LambdaRuntime{
		Addr:             ln.Addr().String(),
		FunctionName:     "prism",
		Timeout:          5 * time.Minute,
		MaxResponseBytes: LambdaMaxResponseBytes,
		queue:            make(chan *lambdaInvocation, 1024),
		closed:           make(chan struct{}),
		ready:            make(chan struct{}),
		inflight:         map[string]*lambdaInvocation{},
		initDone:         make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+lambdaNextPath, rt.next)
	mux.HandleFunc("POST "+lambdaAPIVersion+"/runtime/invocation/{id}/response", rt.response)
	mux.HandleFunc("POST "+lambdaAPIVersion+"/runtime/invocation/{id}/error", rt.invocationError)
	mux.HandleFunc("POST "+lambdaAPIVersion+"/runtime/init/error", rt.initError)
	rt.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go rt.srv.Serve(ln)
	return rt, nil
}

// Close stops the runtime: requests waiting for an event are answered 500
// and pending Invoke calls fail.
func (rt *LambdaRuntime) Close() {
	rt.closeOnce.Do(func() {
		close(rt.closed)
		rt.srv.Close()
	})
}

// FunctionARN is the ARN the runtime says was invoked.
func (rt *LambdaRuntime) FunctionARN() string {
	return "arn:aws:lambda:us-east-1:123456789012:function:" + rt.FunctionName
}

// Env is the environment Lambda gives a function process, pointed at rt.
func (rt *LambdaRuntime) Env() []string {
	return []string{
		"AWS_LAMBDA_RUNTIME_API=" + rt.Addr,
		"AWS_LAMBDA_FUNCTION_NAME=" + rt.FunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=2048",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + rt.FunctionName,
		"AWS_LAMBDA_LOG_STREAM_NAME=2026/11/22/[$LATEST]" + randomHex(16),
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"_HANDLER=bootstrap",
	}
}

// Invoke queues payload as the next event and waits for the function's
// answer. A function error, the runtime refusing the response, or an init
// error is a *LambdaError; ctx bounds the wait.
func (rt *LambdaRuntime) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	inv := &lambdaInvocation{id: newRequestID(), payload: payload, done: make(chan struct{})}
	select {
	case rt.queue <- inv:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-inv.done:
		return inv.response, inv.err
	case <-rt.initDone:
		return nil, rt.InitError()
	case <-rt.closed:
		return nil, errors.New("testutil: the Lambda runtime is closed")
	case <-ctx.Done():
		inv.finish(nil, ctx.Err()) // not delivered, or the answer is ignored
		return nil, ctx.Err()
	}
}

// InitError is what the function reported through /runtime/init/error, or
// nil.
func (rt *LambdaRuntime) InitError() error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.initErr == nil {
		return nil
	}
	return rt.initErr
}

// WaitReady waits until the function asks for its first event (it has
// initialised), or reports an init error (returned).
func (rt *LambdaRuntime) WaitReady(ctx context.Context) error {
	select {
	case <-rt.ready:
		return nil
	case <-rt.initDone:
		return rt.InitError()
	case <-rt.closed:
		return errors.New("testutil: the Lambda runtime is closed")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (rt *LambdaRuntime) next(w http.ResponseWriter, r *http.Request) {
	rt.readyOnce.Do(func() { close(rt.ready) })
	for {
		select {
		case inv := <-rt.queue:
			select {
			case <-inv.done: // given up by its caller
				continue
			default:
			}
			rt.mu.Lock()
			rt.inflight[inv.id] = inv
			rt.mu.Unlock()
			deadline := time.Now().Add(rt.Timeout)
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(deadline.UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", rt.FunctionARN())
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-"+randomHex(4)+"-"+randomHex(12)+";Parent="+randomHex(8)+";Sampled=0")
			w.WriteHeader(http.StatusOK)
			w.Write(inv.payload)
			return
		case <-rt.closed:
			http.Error(w, "runtime closed", http.StatusInternalServerError)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// take removes the invocation id from those in flight.
func (rt *LambdaRuntime) take(w http.ResponseWriter, id string) *lambdaInvocation {
	rt.mu.Lock()
	inv := rt.inflight[id]
	delete(rt.inflight, id)
	rt.mu.Unlock()
	if inv == nil {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation "+id+" is in flight")
	}
	return inv
}

func (rt *LambdaRuntime) response(w http.ResponseWriter, r *http.Request) {
	inv := rt.take(w, r.PathValue("id"))
	if inv == nil {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(rt.MaxResponseBytes)+1))
	if err != nil {
		inv.finish(nil, fmt.Errorf("testutil: reading the response: %w", err))
		writeRuntimeError(w, http.StatusBadRequest, "InvalidResponse", err.Error())
		return
	}
	if len(body) > rt.MaxResponseBytes {
		msg := fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", rt.MaxResponseBytes)
		inv.finish(nil, &LambdaError{Type: "Function.ResponseSizeTooLarge", Message: msg})
		writeRuntimeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", msg)
		return
	}
	inv.finish(body, nil)
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"OK"}`)
}

func (rt *LambdaRuntime) invocationError(w http.ResponseWriter, r *http.Request) {
	inv := rt.take(w, r.PathValue("id"))
	if inv == nil {
		return
	}
	inv.finish(nil, readLambdaError(r))
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"OK"}`)
}

func (rt *LambdaRuntime) initError(w http.ResponseWriter, r *http.Request) {
	e := readLambdaError(r)
	e.Init = true
	rt.mu.Lock()
	first := rt.initErr == nil
	if first {
		rt.initErr = e
	}
	rt.mu.Unlock()
	if !first {
		writeRuntimeError(w, http.StatusForbidden, "InvalidStateTransition", "init error already reported")
		return
	}
	close(rt.initDone)
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"OK"}`)
}

// readLambdaError reads an error document; its type may also come in the
// Lambda-Runtime-Function-Error-Type header.
func readLambdaError(r *http.Request) *LambdaError {
	e := &LambdaError{}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(body, e); err != nil {
		e.Message = string(body)
	}
	if e.Type == "" {
		e.Type = r.Header.Get("Lambda-Runtime-Function-Error-Type")
	}
	if e.Type == "" {
		e.Type = "Unhandled"
	}
	return e
}

func writeRuntimeError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"errorType": errType, "errorMessage": msg})
}

// newRequestID is a random UUID (version 4), like Lambda's request IDs.
func newRequestID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// LambdaProcess is a function process started by StartLambda.
type LambdaProcess struct {
	Cmd    *exec.Cmd
	out    *SyncBuffer
	exited chan struct{}
	stop   sync.Once
}

// Output is everything the process wrote to stdout and stderr so far.
func (p *LambdaProcess) Output() string { return p.out.String() }

// Exited is closed when the process has exited.
func (p *LambdaProcess) Exited() <-chan struct{} { return p.exited }

// Stop kills the process and waits for it.
func (p *LambdaProcess) Stop() {
	p.stop.Do(func() {
		killGroup(p.Cmd.Process)
		<-p.exited
	})
}

// StartLambda starts the function binary bin against rt, with rt.Env()
// and env, and waits until it asks for its first event. It fails with the
// function's init error, or its output, when it does not get that far.
func StartLambda(bin string, rt *LambdaRuntime, env ...string) (*LambdaProcess, error) {
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), rt.Env()...), env...)
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &LambdaProcess{Cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := rt.WaitReady(ctx); err != nil {
		p.Stop()
		if ie := rt.InitError(); ie != nil {
			return nil, fmt.Errorf("%s: %w\n%s", bin, ie, out.String())
		}
		return nil, fmt.Errorf("%s did not ask for an event (%v):\n%s", bin, err, out.String())
	}
	return p, nil
}

var placeholder = regexp.MustCompile(`\$\{([A-Z_]+)\}`)

// LambdaEvent reads the event template testdata/events/<name>, replaces
// each ${NAME} in it with vars[NAME], JSON-escaped, and parses it. Every
// placeholder must have a value.
func LambdaEvent(t testing.TB, name string, vars map[string]string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(Root(), "testdata", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	text := placeholder.ReplaceAllStringFunc(string(raw), func(m string) string {
		v, ok := vars[m[2:len(m)-1]]
		if !ok {
			missing = append(missing, m)
			return m
		}
		b, _ := json.Marshal(v)
		return string(b[1 : len(b)-1])
	})
	if len(missing) > 0 {
		t.Fatalf("testutil: %s: no value for %s", name, strings.Join(missing, ", "))
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(text), &ev); err != nil {
		t.Fatalf("testutil: %s: %v", name, err)
	}
	return ev
}
