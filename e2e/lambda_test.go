package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/prism-image/prism/internal/testutil"
)

// lambdaFn is the compiled cmd/lambda, running against a fake Lambda
// Runtime API, with MinIO for S3 and Redis for metadata.
type lambdaFn struct {
	rt     *testutil.LambdaRuntime
	proc   *testutil.LambdaProcess
	bucket string
}

// lambdaAnswer is an HTTP answer, from any kind of HTTP event.
type lambdaAnswer struct {
	status      int
	description string // ALB only
	header      http.Header
	cookies     []string
	body        []byte // decoded
	base64      bool
	raw         map[string]any
}

const (
	lambdaOriginals = "originals" // PRISM_STORAGE's prefix
	functionURLHost = "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6.lambda-url.us-east-1.on.aws"
	// The variant of the 17.6 MP photo that Lambda cannot return inline.
	hugeVariant = "w=5000&fm=png"
)

// startLambdaFn runs bin against an in-test Runtime API, over a bucket of
// its own, with extra settings in extra.
func startLambdaFn(t *testing.T, bin string, extra ...string) *lambdaFn {
	t.Helper()
	bucket := minio.NewBucket(t)
	rt := testutil.StartLambdaRuntime(t)
	env := append(minio.Env(),
		"PRISM_STORAGE=s3://"+bucket+"/"+lambdaOriginals,
		"PRISM_DERIVED_URL=s3://"+bucket+"/derived",
		"PRISM_REDIS_URL="+redis.URL(),
		"PRISM_API_KEYS="+apiKey,
		"PRISM_TIMEOUT=3m", // a 5000 px PNG on a shared 2-core machine
	)
	env = append(env, extra...)
	proc, err := testutil.StartLambda(bin, rt, env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proc.Stop()
		if t.Failed() {
			t.Logf("lambda output:\n%s", tailString(proc.Output(), 8000))
		}
	})
	return &lambdaFn{rt: rt, proc: proc, bucket: bucket}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// invoke sends one event and returns the function's answer.
func (f *lambdaFn) invoke(t *testing.T, event any) []byte {
	t.Helper()
	out, err := f.tryInvoke(event)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	return out
}

func (f *lambdaFn) tryInvoke(event any) ([]byte, error) {
	payload, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-f.proc.Exited():
			cancel()
		case <-ctx.Done():
		}
	}()
	out, err := f.rt.Invoke(ctx, payload)
	if err != nil {
		select {
		case <-f.proc.Exited():
			return nil, fmt.Errorf("the function exited: %w", err)
		default:
		}
	}
	return out, err
}

// putObject stores an original straight into the bucket, as a presigned
// POST would, bypassing Prism.
// emfLine is the function's EMF line for request id, checked against the
// specification.
func (f *lambdaFn) emfLine(t *testing.T, id string) map[string]any {
	t.Helper()
	if id == "" {
		t.Fatal("no X-Request-ID")
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		for _, line := range strings.Split(f.proc.Output(), "\n") {
			if strings.Contains(line, `"_aws"`) && strings.Contains(line, `"request_id":"`+id+`"`) {
				root, err := testutil.CheckEMF([]byte(line))
				if err != nil {
					t.Fatalf("%v:\n%s", err, line)
				}
				return root
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no EMF line for request %s in:\n%s", id, f.proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *lambdaFn) putObject(t *testing.T, key string, data []byte, contentType string) {
	t.Helper()
	_, err := minio.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(f.bucket), Key: aws.String(lambdaOriginals + "/" + key),
		Body: bytes.NewReader(data), ContentType: aws.String(contentType),
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *lambdaFn) deleteObject(t *testing.T, key string) {
	t.Helper()
	_, err := minio.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{
		Bucket: aws.String(f.bucket), Key: aws.String(lambdaOriginals + "/" + key),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// derivedObjects lists the derived store's objects for source.
func (f *lambdaFn) derivedObjects(t *testing.T, source string) []string {
	t.Helper()
	out, err := minio.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{
		Bucket: aws.String(f.bucket), Prefix: aws.String("derived/" + source + "/"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range out.Contents {
		names = append(names, strings.TrimPrefix(aws.ToString(o.Key), "derived/"+source+"/"))
	}
	return names
}

// v2Event is a Function URL event, or with stage an API Gateway HTTP API
// one, with the query in both of the forms AWS gives it.
func v2Event(t *testing.T, template, method, path, query string, header ...string) map[string]any {
	t.Helper()
	vars := map[string]string{"METHOD": method, "PATH": path, "QUERY": query}
	if template == "apigw-v2.json" {
		vars["STAGE"] = "prod"
		vars["PATH"] = "/prod" + path
		vars["PROXY"] = strings.TrimPrefix(path, "/")
	}
	ev := testutil.LambdaEvent(t, template, vars)
	if q, err := url.ParseQuery(query); err == nil && len(q) > 0 {
		params := map[string]string{}
		for k, vs := range q {
			params[k] = strings.Join(vs, ",")
		}
		ev["queryStringParameters"] = params
	}
	headers := ev["headers"].(map[string]any)
	for i := 0; i+1 < len(header); i += 2 {
		headers[strings.ToLower(header[i])] = header[i+1]
	}
	return ev
}

func withBody(ev map[string]any, body []byte) map[string]any {
	ev["body"] = base64.StdEncoding.EncodeToString(body)
	ev["isBase64Encoded"] = true
	ev["headers"].(map[string]any)["content-length"] = fmt.Sprint(len(body))
	return ev
}

// http answers an HTTP event.
func (f *lambdaFn) http(t *testing.T, event map[string]any) lambdaAnswer {
	t.Helper()
	out := f.invoke(t, event)
	var a lambdaAnswer
	if err := json.Unmarshal(out, &a.raw); err != nil {
		t.Fatalf("answer %.300s: %v", out, err)
	}
	var body string
	if _, alb := event["requestContext"].(map[string]any)["elb"]; alb {
		var res events.ALBTargetGroupResponse
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		a.status, a.description, a.base64, body = res.StatusCode, res.StatusDescription, res.IsBase64Encoded, res.Body
		a.header = http.Header{}
		for k, v := range res.Headers {
			a.header.Set(k, v)
		}
		for k, vs := range res.MultiValueHeaders {
			for _, v := range vs {
				a.header.Add(k, v)
			}
		}
	} else {
		var res events.LambdaFunctionURLResponse
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		a.status, a.base64, a.cookies, body = res.StatusCode, res.IsBase64Encoded, res.Cookies, res.Body
		a.header = http.Header{}
		for k, v := range res.Headers {
			a.header.Set(k, v)
		}
	}
	a.body = []byte(body)
	if a.base64 {
		var err error
		if a.body, err = base64.StdEncoding.DecodeString(body); err != nil {
			t.Fatalf("body is not base64: %v", err)
		}
	}
	if a.status >= 500 {
		t.Fatalf("answered %d %s", a.status, a.body)
	}
	return a
}

// wantImage checks an image answer: status, base64, the headers every
// variant carries, and the decoded image.
func wantImage(t *testing.T, a lambdaAnswer, format string, width, height int) testutil.Decoded {
	t.Helper()
	if a.status != http.StatusOK || !a.base64 {
		t.Fatalf("answered %d (base64 %v) %.300s", a.status, a.base64, a.body)
	}
	for k, want := range map[string]string{
		"Content-Type":           "image/" + format,
		"Cache-Control":          "public, max-age=86400, s-maxage=31536000",
		"X-Content-Type-Options": "nosniff",
		"Content-Length":         fmt.Sprint(len(a.body)),
	} {
		if got := a.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if etag := a.header.Get("ETag"); !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 10 {
		t.Errorf("ETag %q, want a strong one", etag)
	}
	d := testutil.DecodeImage(t, a.body)
	if d.Format != format || d.Width != width || (height > 0 && d.Height != height) {
		t.Errorf("image %s %dx%d, want %s %dx%d", d.Format, d.Width, d.Height, format, width, height)
	}
	return d
}

// wantError checks a JSON error answer.
func wantError(t *testing.T, a lambdaAnswer, status int, code string) {
	t.Helper()
	if a.status != status || a.base64 {
		t.Fatalf("answered %d (base64 %v) %s, want %d in plain text", a.status, a.base64, a.body, status)
	}
	var e struct {
		Error struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil || e.Error.Status != status || e.Error.Code != code {
		t.Errorf("body %s (%v), want code %s", a.body, err, code)
	}
	if a.header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", a.header.Get("Content-Type"))
	}
}

// redisMeta is what Redis holds for key, or "" when nothing.
func redisMeta(t *testing.T, key string) string {
	t.Helper()
	v, err := redis.Client().Get(context.Background(), "prism:meta:"+key).Result()
	if err != nil {
		if err.Error() == "redis: nil" {
			return ""
		}
		t.Fatal(err)
	}
	return v
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// s3Notification is an S3 event for one object of the function's bucket.
func (f *lambdaFn) s3Notification(t *testing.T, template, objectKey string) map[string]any {
	t.Helper()
	// S3 form-encodes keys, slashes aside.
	segments := strings.Split(objectKey, "/")
	for i, s := range segments {
		segments[i] = url.QueryEscape(s)
	}
	return testutil.LambdaEvent(t, template, map[string]string{"BUCKET": f.bucket, "KEY": strings.Join(segments, "/")})
}

type s3Result struct {
	Updated, Removed, Skipped []string
}

func (f *lambdaFn) s3(t *testing.T, template, objectKey string) s3Result {
	t.Helper()
	var r s3Result
	out := f.invoke(t, f.s3Notification(t, template, objectKey))
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	return r
}

// TestLambda runs the compiled cmd/lambda as Lambda would: events come from
// a Runtime API server, originals from MinIO, metadata goes to Redis.
// TestLambdaFlushesCloudFront: Lambda may freeze the process once it has
// its answer, so a delete's CloudFront invalidation is sent before the
// invocation ends, not after the two seconds a server gathers them for.
func TestLambdaFlushesCloudFront(t *testing.T) {
	bin, err := testutil.BuildBinary("./cmd/lambda", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// signed with the process's AWS credentials: MinIO's here
	fake, cfEnv := testutil.StartFakeCloudFront(t, minio.AccessKey, minio.SecretKey)
	f := startLambdaFn(t, bin, cfEnv...)
	f.putObject(t, "lambda/gone.jpg", image(t, "concert.jpg"), "image/jpeg")
	a := f.http(t, v2Event(t, "function-url.json", "DELETE", "/v1/images/lambda/gone.jpg", "", "Authorization", "Bearer "+apiKey))
	if a.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", a.status, a.body)
	}
	if got := fake.Batches(); len(got) != 1 || !slices.Equal(got[0], []string{"/lambda/gone.jpg*"}) {
		t.Errorf("when the invocation ended, CloudFront had %q, want one batch of /lambda/gone.jpg*", got)
	}
}

func TestLambda(t *testing.T) {
	bin, err := testutil.BuildBinary("./cmd/lambda", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := startLambdaFn(t, bin)
	flowers, concert, photo := image(t, "flowers.jpeg"), image(t, "concert.jpg"), image(t, "pexels-magda-ehlers-5141x3434.jpg")
	f.putObject(t, "lambda/flowers.jpeg", flowers, "image/jpeg")
	f.putObject(t, "lambda/photo.jpg", photo, "image/jpeg")

	t.Run("function URL", func(t *testing.T) {
		a := f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/flowers.jpeg", "w=400&quality=80"))
		wantImage(t, a, "jpeg", 400, 225)
		if a.header.Get("Vary") != "" {
			t.Errorf("Vary %q on a fixed format", a.header.Get("Vary"))
		}
		etag := a.header.Get("ETag")

		again := f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/flowers.jpeg", "w=400&quality=80", "If-None-Match", etag))
		if again.status != http.StatusNotModified || len(again.body) != 0 || again.header.Get("ETag") != etag {
			t.Errorf("revalidation: %d, %d bytes, ETag %q", again.status, len(again.body), again.header.Get("ETag"))
		}

		head := f.http(t, v2Event(t, "function-url.json", "HEAD", "/lambda/flowers.jpeg", "w=400&quality=80"))
		if head.status != http.StatusOK || len(head.body) != 0 || head.header.Get("ETag") != etag || head.header.Get("Content-Length") != a.header.Get("Content-Length") {
			t.Errorf("HEAD: %d, %d bytes, headers %v", head.status, len(head.body), head.header)
		}

		original := f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/flowers.jpeg", ""))
		if original.status != http.StatusOK || !original.base64 || !bytes.Equal(original.body, flowers) || original.header.Get("X-Prism-Cache") != "original" {
			t.Errorf("original: %d, base64 %v, %d bytes, %v", original.status, original.base64, len(original.body), original.header)
		}
	})

	// Lambda writes CloudWatch EMF lines by default, and a request without
	// X-Request-ID carries the invocation's ID.
	t.Run("CloudWatch metrics", func(t *testing.T) {
		a := f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/flowers.jpeg", "w=210"))
		wantImage(t, a, "jpeg", 210, 118)
		invocationID := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
		id := a.header.Get("X-Request-ID")
		if !invocationID.MatchString(id) {
			t.Errorf("X-Request-ID %q, want the invocation's ID", id)
		}
		// A client's own ID is kept when sane, else the invocation's stands in.
		for sent, kept := range map[string]bool{"client-7f3a": true, "not sane": false} {
			got := f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/flowers.jpeg", "w=210", "X-Request-ID", sent)).header.Get("X-Request-ID")
			if (kept && got != sent) || (!kept && !invocationID.MatchString(got)) {
				t.Errorf("sent X-Request-ID %q, answered %q", sent, got)
			}
		}
		found := f.emfLine(t, id)
		directive := found["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
		if directive["Namespace"] != "Prism" || found["Route"] != "transform" || found["Code"] != "200" || found["Cache"] != "miss" || found["OutputBytes"] != float64(len(a.body)) {
			t.Errorf("EMF line %v", found)
		}
	})

	t.Run("API Gateway format=auto", func(t *testing.T) {
		a := f.http(t, v2Event(t, "apigw-v2.json", "GET", "/lambda/flowers.jpeg", "w=300&format=auto", "Accept", "image/avif,image/webp,*/*"))
		wantImage(t, a, "avif", 300, 169)
		if !strings.Contains(a.header.Get("Vary"), "Accept") {
			t.Errorf("Vary %q, want Accept", a.header.Get("Vary"))
		}
		webp := f.http(t, v2Event(t, "apigw-v2.json", "GET", "/lambda/flowers.jpeg", "w=300&format=auto", "Accept", "image/webp,*/*"))
		wantImage(t, webp, "webp", 300, 169)
		if webp.header.Get("ETag") == a.header.Get("ETag") {
			t.Errorf("AVIF and WebP share an ETag")
		}
	})

	t.Run("errors", func(t *testing.T) {
		a := f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/flowers.jpeg", "w=abc"))
		wantError(t, a, http.StatusBadRequest, "invalid_param")
		if !strings.Contains(string(a.body), `"param":"w"`) || a.header.Get("Cache-Control") != "public, max-age=60, s-maxage=60" {
			t.Errorf("400: %s, Cache-Control %q", a.body, a.header.Get("Cache-Control"))
		}
		wantError(t, f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/nope.jpg", "w=100")), http.StatusNotFound, "not_found")
		wantError(t, f.http(t, v2Event(t, "apigw-v2.json", "GET", "/lambda/nope.jpg", "")), http.StatusNotFound, "not_found")
		wantError(t, f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/../etc/passwd", "")), http.StatusBadRequest, "invalid_key")
	})

	t.Run("multi-value", func(t *testing.T) {
		// Function URLs pass the query as sent, repeats included: the
		// first w counts.
		wantImage(t, f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/flowers.jpeg", "w=120&w=300")), "jpeg", 120, 68)
		// And join a repeated header with commas.
		a := f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/flowers.jpeg", "w=120&fm=auto", "Accept", "image/webp,image/avif"))
		wantImage(t, a, "avif", 120, 68)

		t.Run("ALB", func(t *testing.T) {
			ev := testutil.LambdaEvent(t, "alb-multi-value.json", map[string]string{"METHOD": "GET", "PATH": "/lambda/flowers.jpeg"})
			ev["multiValueQueryStringParameters"] = map[string][]string{"w": {"120", "300"}, "format": {"auto"}, "utm_source": {"a%20b"}}
			ev["multiValueHeaders"].(map[string]any)["accept"] = []string{"image/webp", "image/avif"}
			a := f.http(t, ev)
			if _, ok := a.raw["multiValueHeaders"]; !ok || a.raw["headers"] != nil {
				t.Errorf("answer has headers %v and multiValueHeaders %v; want multiValueHeaders only", a.raw["headers"], a.raw["multiValueHeaders"])
			}
			if a.description != "200 OK" {
				t.Errorf("statusDescription %q", a.description)
			}
			// Both Accept values reached Prism: AVIF, which the second names.
			wantImage(t, a, "avif", 120, 68)
			if mv, _ := a.raw["multiValueHeaders"].(map[string]any); mv != nil {
				if v, _ := json.Marshal(mv["Vary"]); string(v) != `["Accept"]` {
					t.Errorf("Vary %s", v)
				}
			}
		})

		t.Run("ALB single-value", func(t *testing.T) {
			ev := testutil.LambdaEvent(t, "alb.json", map[string]string{"METHOD": "GET", "PATH": "/lambda/flowers.jpeg"})
			// ALB does not decode the query: "120,80" arrives as sent.
			ev["queryStringParameters"] = map[string]string{"resize": "120%2C80", "bg": "%23ff0000"}
			a := f.http(t, ev)
			if _, ok := a.raw["multiValueHeaders"]; ok {
				t.Errorf("a single-value answer has multiValueHeaders")
			}
			if a.description != "200 OK" {
				t.Errorf("statusDescription %q", a.description)
			}
			wantImage(t, a, "jpeg", 120, 80)
		})
	})

	t.Run("upload", func(t *testing.T) {
		body, ct := multipartBody(t, "concert.jpg", concert, "lambda/uploaded.jpg")
		ev := withBody(v2Event(t, "function-url.json", "POST", "/v1/images", "", "Content-Type", ct, "Authorization", "Bearer "+apiKey), body)
		a := f.http(t, ev)
		if a.status != http.StatusCreated || a.base64 {
			t.Fatalf("upload: %d (base64 %v) %s", a.status, a.base64, a.body)
		}
		m := decodeMeta(t, response{body: a.body})
		if m.Key != "lambda/uploaded.jpg" || m.Width != 400 || m.Height != 267 || m.URL != "https://"+functionURLHost+"/lambda/uploaded.jpg" {
			t.Errorf("metadata %+v", m)
		}
		if got := redisMeta(t, "lambda/uploaded.jpg"); !strings.Contains(got, `"width":400`) {
			t.Errorf("Redis holds %q", got)
		}
		wantImage(t, f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/uploaded.jpg", "w=100")), "jpeg", 100, 67)

		// The raw bytes, through API Gateway.
		raw := image(t, "with-alpha.png")
		ev = withBody(v2Event(t, "apigw-v2.json", "POST", "/v1/images", "key=lambda/raw.png", "Content-Type", "image/png", "Authorization", "Bearer "+apiKey), raw)
		if a := f.http(t, ev); a.status != http.StatusCreated {
			t.Fatalf("raw upload: %d %s", a.status, a.body)
		}
		if a := f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/raw.png", "")); !bytes.Equal(a.body, raw) {
			t.Errorf("raw upload reads back %d bytes, want %d", len(a.body), len(raw))
		}

		ev = withBody(v2Event(t, "function-url.json", "POST", "/v1/images", "key=lambda/nokey.png", "Content-Type", "image/png"), raw)
		wantError(t, f.http(t, ev), http.StatusUnauthorized, "unauthorized")
	})

	t.Run("S3 ObjectCreated", func(t *testing.T) {
		const key = "lambda/direct upload+1.jpg"
		f.putObject(t, key, flowers, "image/jpeg")
		if got := redisMeta(t, key); got != "" {
			t.Fatalf("Redis knows %s before the event: %s", key, got)
		}
		r := f.s3(t, "s3-object-created.json", lambdaOriginals+"/"+key)
		if len(r.Updated) != 1 || r.Updated[0] != key {
			t.Fatalf("result %+v", r)
		}
		var m metadata
		if err := json.Unmarshal([]byte(redisMeta(t, key)), &m); err != nil || m.Width != 1920 || m.Height != 1080 || m.Key != key {
			t.Errorf("Redis metadata %+v (%v)", m, err)
		}
		a := f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/direct%20upload+1.jpg", "w=100"))
		wantImage(t, a, "jpeg", 100, 56)
		if a.header.Get("X-Prism-Cache") != "miss" {
			t.Errorf("X-Prism-Cache %q", a.header.Get("X-Prism-Cache"))
		}

		// Not Prism's: another prefix, the derived store, another
		// bucket, a file that is not an image. None fails the event.
		f.putObject(t, "lambda/notes.txt", []byte("hello"), "text/plain")
		for _, k := range []string{"elsewhere/a.jpg", "derived/lambda/flowers.jpeg/0123", lambdaOriginals + "/lambda/notes.txt"} {
			if r := f.s3(t, "s3-object-created.json", k); len(r.Updated)+len(r.Removed) != 0 || len(r.Skipped) != 1 {
				t.Errorf("%s: %+v", k, r)
			}
		}
		ev := f.s3Notification(t, "s3-object-created.json", lambdaOriginals+"/lambda/flowers.jpeg")
		ev["Records"].([]any)[0].(map[string]any)["s3"].(map[string]any)["bucket"].(map[string]any)["name"] = "another-bucket"
		var other s3Result
		json.Unmarshal(f.invoke(t, ev), &other)
		if len(other.Skipped) != 1 || !strings.Contains(other.Skipped[0], "outside PRISM_STORAGE") {
			t.Errorf("another bucket: %+v", other)
		}
	})

	t.Run("S3 replace purges", func(t *testing.T) {
		const key = "lambda/replaced.jpg"
		f.putObject(t, key, flowers, "image/jpeg")
		first := f.http(t, v2Event(t, "function-url.json", "GET", "/"+key, "w=200"))
		wantImage(t, first, "jpeg", 200, 113)
		oldETag := strings.Trim(first.header.Get("ETag"), `"`)
		waitFor(t, "the metadata in Redis", func() bool { return redisMeta(t, key) != "" })
		waitFor(t, "the variant in the derived store", func() bool { return len(f.derivedObjects(t, key)) == 1 })
		if cached := f.http(t, v2Event(t, "function-url.json", "GET", "/"+key, "w=200")); cached.header.Get("X-Prism-Cache") != "hit-memory" {
			t.Fatalf("second request: X-Prism-Cache %q", cached.header.Get("X-Prism-Cache"))
		}

		// Replaced behind Prism's back: without the event, the cached
		// variant of the old image is still served.
		f.putObject(t, key, concert, "image/jpeg")
		stale := f.http(t, v2Event(t, "function-url.json", "GET", "/"+key, "w=200"))
		wantImage(t, stale, "jpeg", 200, 113)

		if r := f.s3(t, "s3-object-created.json", lambdaOriginals+"/"+key); len(r.Updated) != 1 {
			t.Fatalf("result %+v", r)
		}
		if objs := f.derivedObjects(t, key); len(objs) != 0 {
			t.Errorf("derived store still holds %v", objs)
		}
		var m metadata
		if err := json.Unmarshal([]byte(redisMeta(t, key)), &m); err != nil || m.Width != 400 || m.Height != 267 {
			t.Errorf("Redis metadata after the replace: %+v (%v)", m, err)
		}
		fresh := f.http(t, v2Event(t, "function-url.json", "GET", "/"+key, "w=200"))
		wantImage(t, fresh, "jpeg", 200, 134)
		if strings.Trim(fresh.header.Get("ETag"), `"`) == oldETag {
			t.Errorf("the replaced image's variant kept its ETag")
		}
		// A revalidation with the old ETag gets the new image.
		if a := f.http(t, v2Event(t, "function-url.json", "GET", "/"+key, "w=200", "If-None-Match", `"`+oldETag+`"`)); a.status != http.StatusOK {
			t.Errorf("old ETag revalidated: %d", a.status)
		}
	})

	t.Run("S3 ObjectRemoved", func(t *testing.T) {
		const key = "lambda/removed.jpg"
		f.putObject(t, key, flowers, "image/jpeg")
		wantImage(t, f.http(t, v2Event(t, "function-url.json", "GET", "/"+key, "w=150")), "jpeg", 150, 84)
		waitFor(t, "the metadata in Redis", func() bool { return strings.Contains(redisMeta(t, key), `"width"`) })

		f.deleteObject(t, key)
		r := f.s3(t, "s3-object-removed.json", lambdaOriginals+"/"+key)
		if len(r.Removed) != 1 || r.Removed[0] != key {
			t.Fatalf("result %+v", r)
		}
		if got := redisMeta(t, key); strings.Contains(got, `"width"`) || got != `{"missing":true}` {
			t.Errorf("Redis holds %q, want the missing marker", got)
		}
		if objs := f.derivedObjects(t, key); len(objs) != 0 {
			t.Errorf("derived store still holds %v", objs)
		}
		a := f.http(t, v2Event(t, "function-url.json", "GET", "/"+key, "w=150"))
		wantError(t, a, http.StatusNotFound, "not_found")
		if a.header.Get("X-Prism-Cache") != "hit-missing" {
			t.Errorf("X-Prism-Cache %q", a.header.Get("X-Prism-Cache"))
		}
	})

	t.Run("response over 6 MB", func(t *testing.T) {
		a := f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/photo.jpg", hugeVariant))
		big := wantRedirect(t, a, "/derived/lambda/photo.jpg/")
		// The metrics count the answer Lambda sent, with the request's ID.
		if line := f.emfLine(t, a.header.Get("X-Request-ID")); line["Code"] != "302" || line["Route"] != "transform" || line["Status5xx"] != 0.0 {
			t.Errorf("the redirect's EMF line: %v", line)
		}
		if len(big) <= 6<<20 {
			t.Fatalf("the variant is %d bytes: not over Lambda's limit, the test proves nothing", len(big))
		}
		d := testutil.DecodeImage(t, big)
		if d.Format != "png" || d.Width != 5000 || d.Height < 3339 || d.Height > 3340 {
			t.Errorf("redirected image %s %dx%d, want png 5000x3339", d.Format, d.Width, d.Height)
		}
		t.Logf("%s: %d bytes of PNG, %d as base64", hugeVariant, len(big), base64.StdEncoding.EncodedLen(len(big)))

		// Again, from memory; and through an ALB, whose limit is 1 MB.
		wantRedirect(t, f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/photo.jpg", hugeVariant)), "/derived/lambda/photo.jpg/")
		ev := testutil.LambdaEvent(t, "alb.json", map[string]string{"METHOD": "GET", "PATH": "/lambda/photo.jpg"})
		ev["queryStringParameters"] = map[string]string{"w": "1500", "fm": "png"}
		alb := f.http(t, ev)
		if alb.description != "302 Found" {
			t.Errorf("statusDescription %q", alb.description)
		}
		if d := testutil.DecodeImage(t, wantRedirect(t, alb, "/derived/lambda/photo.jpg/")); d.Width != 1500 {
			t.Errorf("ALB redirect to a %d px image", d.Width)
		}

		// An original over the limit is redirected to itself.
		f.putObject(t, "lambda/huge.png", big, "image/png")
		orig := wantRedirect(t, f.http(t, v2Event(t, "function-url.json", "GET", "/lambda/huge.png", "")), "/"+lambdaOriginals+"/lambda/huge.png")
		if !bytes.Equal(orig, big) {
			t.Errorf("the original's redirect gives %d bytes, want the %d stored", len(orig), len(big))
		}
	})

	t.Run("init error", func(t *testing.T) {
		rt := testutil.StartLambdaRuntime(t)
		_, err := testutil.StartLambda(bin, rt, "PRISM_STORAGE=ftp://nowhere")
		var le *testutil.LambdaError
		if !errors.As(err, &le) || !le.Init || !strings.Contains(le.Message, "ftp://nowhere") {
			t.Errorf("StartLambda with a bad storage URL: %v, want the init error", err)
		}
	})
}

// wantRedirect checks a 302 to a presigned S3 URL whose path contains
// path, and returns what the URL serves.
func wantRedirect(t *testing.T, a lambdaAnswer, path string) []byte {
	t.Helper()
	if a.status != http.StatusFound || len(a.body) != 0 {
		t.Fatalf("answered %d with %d bytes (%.300s), want an empty 302", a.status, len(a.body), a.body)
	}
	loc := a.header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, minio.Endpoint+"/") || !strings.Contains(u.Path, path) || u.Query().Get("X-Amz-Signature") == "" {
		t.Fatalf("Location %q, want a presigned MinIO URL under %s", loc, path)
	}
	if cc := a.header.Get("Cache-Control"); cc != "private, max-age=840" {
		t.Errorf("Cache-Control %q, want private and shorter than the URL's 15 minutes", cc)
	}
	res, err := http.Get(loc) // no credentials: the signature is the grant
	if err != nil {
		t.Fatal(err)
	}
	body, err := readAll(res)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v %.200s", loc, res.StatusCode, err, body)
	}
	return body
}
