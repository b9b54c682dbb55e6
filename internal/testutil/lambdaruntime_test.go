package testutil

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeFunction speaks the Runtime API the way a function does.
type fakeFunction struct {
	t    *testing.T
	base string
}

func newFakeFunction(t *testing.T, rt *LambdaRuntime) *fakeFunction {
	return &fakeFunction{t: t, base: "http://" + rt.Addr + "/2018-06-01/runtime/"}
}

// next waits for an event and returns its request ID, headers and payload.
func (f *fakeFunction) next() (string, http.Header, []byte) {
	f.t.Helper()
	res, err := http.Get(f.base + "invocation/next")
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		f.t.Fatalf("next: %d %s", res.StatusCode, body)
	}
	return res.Header.Get("Lambda-Runtime-Aws-Request-Id"), res.Header, body
}

func (f *fakeFunction) post(path string, body []byte, header ...string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.base+path, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

type invokeResult struct {
	response []byte
	err      error
}

func invokeAsync(rt *LambdaRuntime, ctx context.Context, payload string) chan invokeResult {
	ch := make(chan invokeResult, 1)
	go func() {
		b, err := rt.Invoke(ctx, []byte(payload))
		ch <- invokeResult{b, err}
	}()
	return ch
}

func TestLambdaRuntime(t *testing.T) {
	rt := StartLambdaRuntime(t)
	rt.Timeout = 30 * time.Second
	fn := newFakeFunction(t, rt)
	ctx := context.Background()

	if env := strings.Join(rt.Env(), "\n"); !strings.Contains(env, "AWS_LAMBDA_RUNTIME_API="+rt.Addr) || !strings.Contains(env, "AWS_LAMBDA_FUNCTION_NAME=prism") {
		t.Errorf("Env() = %s", env)
	}

	t.Run("response", func(t *testing.T) {
		done := invokeAsync(rt, ctx, `{"n":1}`)
		start := time.Now()
		id, h, payload := fn.next()
		if string(payload) != `{"n":1}` || id == "" {
			t.Fatalf("next gave %q for request %q", payload, id)
		}
		ms, err := strconv.ParseInt(h.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.UnixMilli(ms).Sub(start); d < 29*time.Second || d > 31*time.Second {
			t.Errorf("deadline in %v, want the 30 s timeout", d)
		}
		if arn := h.Get("Lambda-Runtime-Invoked-Function-Arn"); arn != rt.FunctionARN() || !strings.HasSuffix(arn, ":function:prism") {
			t.Errorf("function ARN %q", arn)
		}
		if status, body := fn.post("invocation/"+id+"/response", []byte(`{"ok":true}`)); status != http.StatusAccepted {
			t.Fatalf("response: %d %s", status, body)
		}
		if r := <-done; r.err != nil || string(r.response) != `{"ok":true}` {
			t.Errorf("Invoke = %q, %v", r.response, r.err)
		}
		// A second answer to the same invocation is refused.
		if status, _ := fn.post("invocation/"+id+"/response", []byte(`{}`)); status != http.StatusBadRequest {
			t.Errorf("second response answered %d, want 400", status)
		}
	})

	t.Run("queued in order", func(t *testing.T) {
		first := invokeAsync(rt, ctx, `1`)
		time.Sleep(50 * time.Millisecond)
		second := invokeAsync(rt, ctx, `2`)
		for _, want := range []string{"1", "2"} {
			id, _, payload := fn.next()
			if string(payload) != want {
				t.Fatalf("event %q, want %q", payload, want)
			}
			fn.post("invocation/"+id+"/response", []byte(`"`+want+`"`))
		}
		if r := <-first; string(r.response) != `"1"` {
			t.Errorf("first = %q, %v", r.response, r.err)
		}
		if r := <-second; string(r.response) != `"2"` {
			t.Errorf("second = %q, %v", r.response, r.err)
		}
	})

	t.Run("function error", func(t *testing.T) {
		done := invokeAsync(rt, ctx, `{}`)
		id, _, _ := fn.next()
		status, _ := fn.post("invocation/"+id+"/error", []byte(`{"errorMessage":"boom","errorType":"errorString"}`),
			"Lambda-Runtime-Function-Error-Type", "errorString")
		if status != http.StatusAccepted {
			t.Fatalf("error: %d", status)
		}
		r := <-done
		var le *LambdaError
		if !errors.As(r.err, &le) || le.Type != "errorString" || le.Message != "boom" || le.Init {
			t.Errorf("Invoke error = %v, want the function's errorString boom", r.err)
		}
	})

	t.Run("response too large", func(t *testing.T) {
		done := invokeAsync(rt, ctx, `{}`)
		id, _, _ := fn.next()
		status, body := fn.post("invocation/"+id+"/response", bytes.Repeat([]byte("x"), LambdaMaxResponseBytes+1))
		if status != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized response answered %d %s, want 413", status, body)
		}
		var le *LambdaError
		if r := <-done; !errors.As(r.err, &le) || le.Type != "Function.ResponseSizeTooLarge" {
			t.Errorf("Invoke error = %v, want Function.ResponseSizeTooLarge", r.err)
		}
		// Exactly the limit is accepted.
		done = invokeAsync(rt, ctx, `{}`)
		id, _, _ = fn.next()
		if status, _ := fn.post("invocation/"+id+"/response", bytes.Repeat([]byte("x"), LambdaMaxResponseBytes)); status != http.StatusAccepted {
			t.Errorf("a response of exactly the limit answered %d", status)
		}
		if r := <-done; r.err != nil || len(r.response) != LambdaMaxResponseBytes {
			t.Errorf("Invoke = %d bytes, %v", len(r.response), r.err)
		}
	})

	t.Run("unknown request", func(t *testing.T) {
		if status, _ := fn.post("invocation/nope/response", []byte(`{}`)); status != http.StatusBadRequest {
			t.Errorf("response to an unknown request answered %d, want 400", status)
		}
	})

	t.Run("caller gives up", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := rt.Invoke(cctx, []byte(`"abandoned"`)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Invoke = %v, want the deadline", err)
		}
		// The abandoned event is never delivered: the next one is.
		done := invokeAsync(rt, ctx, `"live"`)
		id, _, payload := fn.next()
		if string(payload) != `"live"` {
			t.Errorf("next gave %s, want the live event", payload)
		}
		fn.post("invocation/"+id+"/response", []byte(`1`))
		<-done
	})
}

func TestLambdaRuntimeInitError(t *testing.T) {
	rt := StartLambdaRuntime(t)
	fn := newFakeFunction(t, rt)
	done := invokeAsync(rt, context.Background(), `{}`)
	status, _ := fn.post("init/error", []byte(`{"errorMessage":"bad config","errorType":"Runtime.InitError"}`),
		"Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
	if status != http.StatusAccepted {
		t.Fatalf("init error answered %d", status)
	}
	var le *LambdaError
	if r := <-done; !errors.As(r.err, &le) || !le.Init || le.Message != "bad config" {
		t.Errorf("Invoke error = %v, want the init error", r.err)
	}
	if err := rt.WaitReady(context.Background()); err == nil || !strings.Contains(err.Error(), "bad config") {
		t.Errorf("WaitReady = %v, want the init error", err)
	}
}

// TestLambdaRuntimeClose checks that closing the runtime releases a
// function waiting for an event and a caller waiting for an answer.
func TestLambdaRuntimeClose(t *testing.T) {
	rt, err := NewLambdaRuntime()
	if err != nil {
		t.Fatal(err)
	}
	fn := newFakeFunction(t, rt)
	waiting := make(chan int, 1)
	go func() {
		res, err := http.Get(fn.base + "invocation/next")
		if err != nil {
			waiting <- 0
			return
		}
		res.Body.Close()
		waiting <- res.StatusCode
	}()
	if err := rt.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	rt.Close()
	select {
	case status := <-waiting:
		if status == http.StatusOK {
			t.Errorf("next answered 200 after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("next still waits after Close")
	}
	if _, err := rt.Invoke(context.Background(), []byte(`{}`)); err == nil {
		t.Errorf("Invoke after Close succeeded")
	}
}

// TestLambdaEvent checks that every template parses once its placeholders
// have values, and that values are JSON-escaped.
func TestLambdaEvent(t *testing.T) {
	vars := map[string]string{
		"METHOD": "GET", "PATH": `/a "quoted" \ key.jpg`, "QUERY": "w=1", "STAGE": "$default", "PROXY": "a",
		"BUCKET": "b", "KEY": "a+b.jpg",
	}
	for _, name := range []string{"function-url.json", "apigw-v2.json", "alb.json", "alb-multi-value.json", "s3-object-created.json", "s3-object-removed.json"} {
		ev := LambdaEvent(t, name, vars)
		if len(ev) == 0 {
			t.Errorf("%s: empty", name)
		}
	}
	ev := LambdaEvent(t, "function-url.json", vars)
	if ev["rawPath"] != `/a "quoted" \ key.jpg` {
		t.Errorf("rawPath %q", ev["rawPath"])
	}
	rec := LambdaEvent(t, "s3-object-created.json", vars)["Records"].([]any)[0].(map[string]any)
	if s3 := rec["s3"].(map[string]any); s3["object"].(map[string]any)["key"] != "a+b.jpg" || s3["bucket"].(map[string]any)["arn"] != "arn:aws:s3:::b" {
		t.Errorf("s3 %v", s3)
	}
}
