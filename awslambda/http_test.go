package awslambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/internal/testutil"
	"github.com/prism-image/prism/render"
	"github.com/prism-image/prism/server"
	"github.com/prism-image/prism/storage"
)

// seen is what the stub handler received.
type seen struct {
	Method, Path, RawPath, RequestURI, Query, Host, RemoteAddr, Body string
	Header                                                           http.Header
	ContentLength                                                    int64
	MultiW                                                           []string
}

// stub stands for Prism's handler: /echo answers what it received as
// JSON, /image an image with repeated headers and cookies, /big/* a body of
// ?n= bytes with a variant's headers.
type stub struct{ last seen }

var pngBytes = append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0, 0xff, 0x80}, 100)...)

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.last = seen{
		Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, RequestURI: r.RequestURI, Query: r.URL.RawQuery,
		Host: r.Host, RemoteAddr: r.RemoteAddr, Body: string(body), Header: r.Header, ContentLength: r.ContentLength,
		MultiW: r.URL.Query()["w"],
	}
	h := w.Header()
	switch {
	case r.URL.Path == "/image":
		h.Set("Content-Type", "image/png")
		h.Set("ETag", `"abc"`)
		h.Add("Vary", "Accept")
		h.Add("Vary", "Origin")
		h.Add("Set-Cookie", "a=1; Path=/")
		h.Add("Set-Cookie", "b=2; Path=/")
		w.WriteHeader(http.StatusOK)
		w.Write(pngBytes)
	case strings.HasPrefix(r.URL.Path, "/big/"):
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		h.Set("Content-Type", "image/png")
		h.Set("ETag", `"v1"`)
		h.Set("Cache-Control", "public, max-age=86400, s-maxage=31536000")
		h.Set("Vary", "Accept")
		layer := r.URL.Query().Get("layer")
		h.Set("X-Prism-Cache", layer)
		data := bytes.Repeat([]byte{0xff}, n)
		// As the server does: say what the body is.
		key, _ := url.PathUnescape(strings.TrimPrefix(r.URL.Path, "/"))
		if layer == "original" || layer == "original-svg" {
			w.(server.ResultRecorder).RecordOriginal(key, render.Stream{Scriptable: layer == "original-svg"})
		} else {
			w.(server.ResultRecorder).RecordVariant(render.Result{
				Data: data, ContentType: "image/png", ETag: `"v1"`,
				VariantKey: cache.VariantKey{Source: key, ID: `"v1"`}, Layer: render.Layer(layer),
			})
		}
		w.Write(data)
	case r.URL.Path == "/missing":
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"status":404,"code":"not_found","message":"no such image"}}`)
	default:
		h.Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.last)
	}
}

// fakeDerived records what is put and signs a fake URL.
type fakeDerived struct {
	puts     []cache.VariantKey
	data     []byte
	presign  error
	putError error
}

func (d *fakeDerived) Put(_ context.Context, k cache.VariantKey, v cache.Variant) error {
	d.puts = append(d.puts, k)
	d.data = v.Data
	return d.putError
}

func (d *fakeDerived) PresignGet(_ context.Context, k cache.VariantKey, expiry time.Duration) (string, error) {
	if d.presign != nil {
		return "", d.presign
	}
	return "https://derived.s3.example/" + k.Source + "/" + strings.Trim(k.ID, `"`) + "?X-Amz-Expires=" + strconv.Itoa(int(expiry.Seconds())), nil
}

func invoke(t *testing.T, h *Handler, event any) []byte {
	t.Helper()
	payload, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	return out
}

func functionURLEvent(t *testing.T, method, path, query string) map[string]any {
	return testutil.LambdaEvent(t, "function-url.json", map[string]string{"METHOD": method, "PATH": path, "QUERY": query})
}

func v2(t *testing.T, out []byte) events.LambdaFunctionURLResponse {
	t.Helper()
	var res events.LambdaFunctionURLResponse
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	return res
}

func headerOf(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

func TestLambdaFunctionURLRequest(t *testing.T) {
	s := &stub{}
	h := New(Config{Handler: s})
	ev := functionURLEvent(t, "POST", "/echo/a%20b/c%2Fd.jpg", "w=100&w=300&x=%2C")
	ev["headers"].(map[string]any)["accept"] = "image/avif,image/webp"
	ev["headers"].(map[string]any)["content-type"] = "application/octet-stream"
	ev["cookies"] = []string{"a=1", "b=2"}
	ev["body"] = base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff})
	ev["isBase64Encoded"] = true
	res := v2(t, invoke(t, h, ev))
	if res.StatusCode != 200 || res.IsBase64Encoded {
		t.Fatalf("answer %d, base64 %v: %s", res.StatusCode, res.IsBase64Encoded, res.Body)
	}
	got := s.last
	if got.Method != "POST" || got.Path != "/echo/a b/c/d.jpg" || got.RawPath != "/echo/a%20b/c%2Fd.jpg" || got.Query != "w=100&w=300&x=%2C" {
		t.Errorf("request %s %q (raw %q) ? %q", got.Method, got.Path, got.RawPath, got.Query)
	}
	if got.RequestURI != "/echo/a%20b/c%2Fd.jpg?w=100&w=300&x=%2C" {
		t.Errorf("RequestURI %q", got.RequestURI)
	}
	if strings.Join(got.MultiW, ",") != "100,300" {
		t.Errorf("w values %q, want both", got.MultiW)
	}
	if got.Body != "\x00\x01\x02\xff" || got.ContentLength != 4 || got.Header.Get("Content-Length") != "4" {
		t.Errorf("body %q, ContentLength %d, header %q", got.Body, got.ContentLength, got.Header.Get("Content-Length"))
	}
	if got.Header.Get("Accept") != "image/avif,image/webp" || got.Header.Get("Cookie") != "a=1; b=2" {
		t.Errorf("Accept %q, Cookie %q", got.Header.Get("Accept"), got.Header.Get("Cookie"))
	}
	if got.Host != "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6.lambda-url.us-east-1.on.aws" || got.RemoteAddr != "203.0.113.7:0" {
		t.Errorf("Host %q, RemoteAddr %q", got.Host, got.RemoteAddr)
	}
	if got.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("X-Forwarded-Proto %q", got.Header.Get("X-Forwarded-Proto"))
	}
	if ct := headerOf(res.Headers).Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	// A plain body stays plain.
	ev = functionURLEvent(t, "PUT", "/echo", "")
	ev["body"] = `{"a":"é"}`
	invoke(t, h, ev)
	if s.last.Body != `{"a":"é"}` || s.last.Method != "PUT" {
		t.Errorf("plain body %q", s.last.Body)
	}
	// Broken base64 is a 400 in Prism's shape, and the handler is not run.
	s.last = seen{}
	ev["body"], ev["isBase64Encoded"] = "!!!", true
	res = v2(t, invoke(t, h, ev))
	if res.StatusCode != 400 || !strings.Contains(res.Body, `"code":"invalid_body"`) || s.last.Method != "" {
		t.Errorf("bad base64: %d %s", res.StatusCode, res.Body)
	}
}

func TestLambdaFunctionURLResponse(t *testing.T) {
	h := New(Config{Handler: &stub{}})
	res := v2(t, invoke(t, h, functionURLEvent(t, "GET", "/image", "")))
	if res.StatusCode != 200 || !res.IsBase64Encoded {
		t.Fatalf("answer %d, base64 %v", res.StatusCode, res.IsBase64Encoded)
	}
	body, err := base64.StdEncoding.DecodeString(res.Body)
	if err != nil || !bytes.Equal(body, pngBytes) {
		t.Errorf("body does not decode to the image: %v", err)
	}
	hd := headerOf(res.Headers)
	if hd.Get("Vary") != "Accept, Origin" || hd.Get("Content-Type") != "image/png" || hd.Get("ETag") != `"abc"` {
		t.Errorf("headers %v", res.Headers)
	}
	if hd.Get("Set-Cookie") != "" || strings.Join(res.Cookies, "|") != "a=1; Path=/|b=2; Path=/" {
		t.Errorf("cookies %q, headers %v", res.Cookies, res.Headers)
	}

	// JSON errors are plain text.
	res = v2(t, invoke(t, h, functionURLEvent(t, "GET", "/missing", "")))
	if res.StatusCode != 404 || res.IsBase64Encoded || !strings.Contains(res.Body, `"not_found"`) {
		t.Errorf("404: %d %v %s", res.StatusCode, res.IsBase64Encoded, res.Body)
	}
}

func TestLambdaAPIGatewayV2Stage(t *testing.T) {
	s := &stub{}
	h := New(Config{Handler: s})
	for _, tt := range []struct{ stage, path, domain, want string }{
		{"$default", "/echo/a.jpg", "", "/echo/a.jpg"},
		{"prod", "/prod/echo/a.jpg", "", "/echo/a.jpg"},
		{"prod", "/production/echo", "", "/production/echo"},
		// A custom domain maps the stage away.
		{"prod", "/prod/echo/a.jpg", "img.example.com", "/prod/echo/a.jpg"},
	} {
		ev := testutil.LambdaEvent(t, "apigw-v2.json", map[string]string{"METHOD": "GET", "PATH": tt.path, "QUERY": "", "STAGE": tt.stage, "PROXY": tt.path[1:]})
		if tt.domain != "" {
			ev["requestContext"].(map[string]any)["domainName"] = tt.domain
		}
		res := v2(t, invoke(t, h, ev))
		if res.StatusCode != 200 || s.last.Path != tt.want {
			t.Errorf("stage %s, path %s on %q: handler saw %q (%d)", tt.stage, tt.path, tt.domain, s.last.Path, res.StatusCode)
		}
		if s.last.Header.Get("Cookie") != "session=abc123; theme=dark" {
			t.Errorf("Cookie %q", s.last.Header.Get("Cookie"))
		}
	}
}

func TestLambdaALB(t *testing.T) {
	s := &stub{}
	h := New(Config{Handler: s})

	t.Run("single-value", func(t *testing.T) {
		ev := testutil.LambdaEvent(t, "alb.json", map[string]string{"METHOD": "GET", "PATH": "/image"})
		// ALB passes the query as sent: still URL-encoded.
		ev["queryStringParameters"] = map[string]string{"resize": "120%2C80", "bg": "%23fff", "q": "a+b"}
		var res events.ALBTargetGroupResponse
		if err := json.Unmarshal(invoke(t, h, ev), &res); err != nil {
			t.Fatal(err)
		}
		q, _ := url.ParseQuery(s.last.Query)
		if q.Get("resize") != "120,80" || q.Get("bg") != "#fff" || q.Get("q") != "a b" {
			t.Errorf("query %q decodes to %v", s.last.Query, q)
		}
		if res.StatusCode != 200 || res.StatusDescription != "200 OK" || !res.IsBase64Encoded || res.MultiValueHeaders != nil {
			t.Errorf("answer %d %q base64 %v multi %v", res.StatusCode, res.StatusDescription, res.IsBase64Encoded, res.MultiValueHeaders)
		}
		if res.Headers["Vary"] != "Accept, Origin" || res.Headers["Set-Cookie"] != "a=1; Path=/" {
			t.Errorf("headers %v", res.Headers)
		}
		if s.last.Host != "prism-alb-1334523864.us-east-1.elb.amazonaws.com" || s.last.RemoteAddr != "72.21.198.66:0" {
			t.Errorf("Host %q RemoteAddr %q", s.last.Host, s.last.RemoteAddr)
		}
	})

	t.Run("multi-value", func(t *testing.T) {
		ev := testutil.LambdaEvent(t, "alb-multi-value.json", map[string]string{"METHOD": "GET", "PATH": "/image"})
		ev["multiValueQueryStringParameters"] = map[string][]string{"w": {"100", "300"}, "resize": {"120%2C80"}}
		ev["multiValueHeaders"].(map[string]any)["accept"] = []string{"image/webp", "image/avif"}
		ev["multiValueHeaders"].(map[string]any)["cookie"] = []string{"a=1", "b=2"}
		var res events.ALBTargetGroupResponse
		if err := json.Unmarshal(invoke(t, h, ev), &res); err != nil {
			t.Fatal(err)
		}
		if strings.Join(s.last.MultiW, ",") != "100,300" {
			t.Errorf("w values %q", s.last.MultiW)
		}
		if got := s.last.Header.Values("Accept"); len(got) != 1 || got[0] != "image/webp, image/avif" {
			t.Errorf("Accept values %q, want both in one", got)
		}
		if got := s.last.Header.Get("Cookie"); got != "a=1; b=2" {
			t.Errorf("Cookie %q", got)
		}
		if res.Headers != nil || strings.Join(res.MultiValueHeaders["Vary"], "|") != "Accept|Origin" ||
			len(res.MultiValueHeaders["Set-Cookie"]) != 2 {
			t.Errorf("headers %v, multi %v", res.Headers, res.MultiValueHeaders)
		}
		raw := string(invoke(t, h, ev))
		if strings.Contains(raw, `"headers"`) {
			t.Errorf("a multi-value answer carries headers too: %.200s", raw)
		}
	})
}

func TestLambdaTooLarge(t *testing.T) {
	// Base64 of 4.6 MB is over 6 MiB; 4.4 MB is under.
	const over, under = 4_800_000, 4_400_000
	big := func(t *testing.T, h *Handler, n int, layer string) events.LambdaFunctionURLResponse {
		return v2(t, invoke(t, h, functionURLEvent(t, "GET", "/big/a%20b.jpg", "n="+strconv.Itoa(n)+"&layer="+layer)))
	}

	t.Run("redirect", func(t *testing.T) {
		d := &fakeDerived{}
		h := New(Config{Handler: &stub{}, Derived: d, RedirectExpiry: 15 * time.Minute})
		out := invoke(t, h, functionURLEvent(t, "GET", "/big/a%20b.jpg", "n="+strconv.Itoa(under)+"&layer=miss"))
		if res := v2(t, out); res.StatusCode != 200 || len(out) > MaxResponseBytes || len(d.puts) != 0 {
			t.Fatalf("under the limit: %d, %d bytes, puts %v", res.StatusCode, len(out), d.puts)
		}
		res := big(t, h, over, "miss")
		hd := headerOf(res.Headers)
		if res.StatusCode != http.StatusFound || res.Body != "" {
			t.Fatalf("over the limit: %d %.200s", res.StatusCode, res.Body)
		}
		if want := "https://derived.s3.example/big/a b.jpg/v1?X-Amz-Expires=900"; hd.Get("Location") != want {
			t.Errorf("Location %q, want %q", hd.Get("Location"), want)
		}
		if hd.Get("Cache-Control") != "private, max-age=840" || hd.Get("Vary") != "Accept" || hd.Get("ETag") != "" {
			t.Errorf("headers %v", res.Headers)
		}
		if len(d.puts) != 1 || d.puts[0] != (cache.VariantKey{Source: "big/a b.jpg", ID: `"v1"`}) || len(d.data) != over {
			t.Errorf("stored %v with %d bytes", d.puts, len(d.data))
		}
		// From the derived store: nothing to store again.
		if res := big(t, h, over, "hit-derived"); res.StatusCode != http.StatusFound || len(d.puts) != 1 {
			t.Errorf("hit-derived: %d, puts %v", res.StatusCode, d.puts)
		}
	})

	t.Run("no derived store", func(t *testing.T) {
		res := big(t, New(Config{Handler: &stub{}}), over, "miss")
		if res.StatusCode != http.StatusBadGateway || res.IsBase64Encoded ||
			!strings.Contains(res.Body, `"code":"response_too_large"`) || !strings.Contains(res.Body, "PRISM_DERIVED_URL=s3://") {
			t.Errorf("%d %s", res.StatusCode, res.Body)
		}
		if hd := headerOf(res.Headers); hd.Get("Content-Type") != "application/json" || hd.Get("Cache-Control") != "public, max-age=10, s-maxage=10" {
			t.Errorf("headers %v", res.Headers)
		}
	})

	t.Run("derived store on disk", func(t *testing.T) {
		d := &fakeDerived{presign: prism.Errorf(http.StatusNotImplemented, prism.CodeNotImplemented, "no")}
		res := big(t, New(Config{Handler: &stub{}, Derived: d}), over, "miss")
		if res.StatusCode != http.StatusBadGateway || !strings.Contains(res.Body, "response_too_large") || len(d.puts) != 0 {
			t.Errorf("%d %s, puts %v", res.StatusCode, res.Body, d.puts)
		}
	})

	t.Run("store fails", func(t *testing.T) {
		d := &fakeDerived{putError: prism.Errorf(http.StatusBadGateway, prism.CodeStorage, "down")}
		res := big(t, New(Config{Handler: &stub{}, Derived: d}), over, "miss")
		if res.StatusCode != http.StatusBadGateway || !strings.Contains(res.Body, `"storage_error"`) {
			t.Errorf("%d %s", res.StatusCode, res.Body)
		}
	})

	t.Run("original", func(t *testing.T) {
		cat := &fakeOriginals{store: &fakeStorage{}}
		res := big(t, New(Config{Handler: &stub{}, Originals: cat}), over, "original")
		if res.StatusCode != http.StatusFound || headerOf(res.Headers).Get("Location") != "https://originals.s3.example/big/a b.jpg?expires=900" {
			t.Errorf("%d %v", res.StatusCode, res.Headers)
		}
	})

	t.Run("original SVG", func(t *testing.T) {
		cat := &fakeOriginals{store: &fakeStorage{}}
		res := big(t, New(Config{Handler: &stub{}, Originals: cat}), over, "original-svg")
		if res.StatusCode != http.StatusBadGateway || !strings.Contains(res.Body, "response_too_large") || headerOf(res.Headers).Get("Location") != "" {
			t.Errorf("an SVG over the limit: %d %v %s", res.StatusCode, res.Headers, res.Body)
		}
	})

	t.Run("ALB takes 1 MB", func(t *testing.T) {
		d := &fakeDerived{}
		h := New(Config{Handler: &stub{}, Derived: d})
		ev := testutil.LambdaEvent(t, "alb.json", map[string]string{"METHOD": "GET", "PATH": "/big/x.png"})
		ev["queryStringParameters"] = map[string]string{"n": "800000", "layer": "miss"}
		var res events.ALBTargetGroupResponse
		if err := json.Unmarshal(invoke(t, h, ev), &res); err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusFound || res.StatusDescription != "302 Found" || !strings.HasPrefix(res.Headers["Location"], "https://derived.s3.example/big/x.png/v1") {
			t.Errorf("%d %q %v", res.StatusCode, res.StatusDescription, res.Headers)
		}
	})
}

func TestLambdaUnsupportedEvent(t *testing.T) {
	h := New(Config{Handler: &stub{}})
	for _, payload := range []string{`{"foo":1}`, `[1]`, `{"version":"1.0","httpMethod":"GET","requestContext":{}}`, `not json`} {
		if _, err := h.Invoke(context.Background(), []byte(payload)); err == nil {
			t.Errorf("Invoke(%s) succeeded, want an error", payload)
		}
	}
}

func TestLambdaAfterInvoke(t *testing.T) {
	calls := 0
	h := New(Config{Handler: &stub{}, AfterInvoke: func() { calls++ }})
	invoke(t, h, functionURLEvent(t, "GET", "/echo", ""))
	h.Invoke(context.Background(), []byte(`{}`))
	if calls != 2 {
		t.Errorf("AfterInvoke ran %d times for 2 invocations", calls)
	}
}

func TestLambdaEnvDefaults(t *testing.T) {
	t.Setenv("PRISM_WORKERS", "3")
	for _, k := range []string{"PRISM_QUEUE", "PRISM_VIPS_CONCURRENCY"} {
		t.Setenv(k, "") // restored after the test
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	if err := SetEnvDefaults(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"PRISM_WORKERS": "3", "PRISM_QUEUE": "1", "PRISM_VIPS_CONCURRENCY": EnvDefaults()["PRISM_VIPS_CONCURRENCY"]}
	for k, v := range want {
		if got := os.Getenv(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if n, err := strconv.Atoi(want["PRISM_VIPS_CONCURRENCY"]); err != nil || n < 1 {
		t.Errorf("PRISM_VIPS_CONCURRENCY default %q", want["PRISM_VIPS_CONCURRENCY"])
	}
}

// fakeStorage answers Stat from a set of keys and signs fake URLs.
type fakeStorage struct {
	present map[string]bool
	statErr error
}

func (s *fakeStorage) Stat(_ context.Context, key string) (storage.Info, error) {
	if s.statErr != nil {
		return storage.Info{}, s.statErr
	}
	if !s.present[key] {
		return storage.Info{}, prism.Errorf(http.StatusNotFound, prism.CodeNotFound, "not found: %s", key)
	}
	return storage.Info{Key: key, ETag: `"e"`}, nil
}

func (s *fakeStorage) PresignGet(_ context.Context, key string, expiry time.Duration) (string, error) {
	return "https://originals.s3.example/" + key + "?expires=" + strconv.Itoa(int(expiry.Seconds())), nil
}
