package cdn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/catalog"
	"github.com/prism-image/prism/storage"
)

const (
	accessKey = "AKIDPRISMTEST"
	secretKey = "prism-test-secret"
	distID    = "E2PRISMTEST"
)

// fakeCloudFront is the in-process stand-in for CloudFront's API, which
// cannot run here. It checks every request as CloudFront would: the path,
// the body, and the SigV4 signature, recomputed from the request itself.
type fakeCloudFront struct {
	t        *testing.T
	mu       sync.Mutex
	batches  [][]string
	refs     []string
	failures int // answer this many requests with a throttling error first
}

type invalidationBatch struct {
	XMLName         xml.Name `xml:"InvalidationBatch"`
	CallerReference string
	Paths           struct {
		Quantity int
		Items    []string `xml:"Items>Path"`
	}
}

func (f *fakeCloudFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.URL.Path != "/2020-05-31/distribution/"+distID+"/invalidation" {
		f.t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		http.Error(w, "no", http.StatusNotFound)
		return
	}
	if err := checkSignature(r, body); err != nil {
		f.t.Errorf("signature: %v", err)
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	var b invalidationBatch
	if err := xml.Unmarshal(body, &b); err != nil || b.Paths.Quantity != len(b.Paths.Items) || b.CallerReference == "" {
		f.t.Errorf("body %s: %v", body, err)
	}
	f.mu.Lock()
	fail := f.failures > 0
	if fail {
		f.failures--
	}
	f.refs = append(f.refs, b.CallerReference)
	if !fail {
		f.batches = append(f.batches, b.Paths.Items)
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	if fail {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>TooManyInvalidationsInProgress</Code><Message>slow down</Message></Error><RequestId>x</RequestId></ErrorResponse>`)
		return
	}
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `<?xml version="1.0"?><Invalidation><Id>I%d</Id><Status>InProgress</Status><CreateTime>2026-11-22T00:00:00Z</CreateTime><InvalidationBatch><CallerReference>%s</CallerReference><Paths><Quantity>%d</Quantity></Paths></InvalidationBatch></Invalidation>`,
		len(f.batches), b.CallerReference, len(b.Paths.Items))
}

// checkSignature recomputes the request's SigV4 signature over the headers
// it says it signed, with the same time and credentials.
func checkSignature(r *http.Request, body []byte) error {
	auth := r.Header.Get("Authorization")
	date := r.Header.Get("X-Amz-Date")
	prefix := "AWS4-HMAC-SHA256 Credential=" + accessKey + "/" + date[:8] + "/us-east-1/cloudfront/aws4_request, SignedHeaders="
	if !strings.HasPrefix(auth, prefix) {
		return fmt.Errorf("Authorization %q lacks %q", auth, prefix)
	}
	signed := strings.Split(strings.SplitN(strings.TrimPrefix(auth, prefix), ",", 2)[0], ";")
	when, err := time.Parse("20060102T150405Z", date)
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range signed {
		if h != "host" {
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "cloudfront", "us-east-1", when); err != nil {
		return err
	}
	if got := req.Header.Get("Authorization"); got != auth {
		return fmt.Errorf("recomputed signature differs:\n got %s\nsent %s", got, auth)
	}
	return nil
}

func newTestCloudFront(t *testing.T, fake *fakeCloudFront, o Options) *CloudFront {
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client := cloudfront.New(cloudfront.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
	return NewCloudFront(client, distID, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestInvalidationsAreBatched(t *testing.T) {
	fake := &fakeCloudFront{t: t}
	c := newTestCloudFront(t, fake, Options{Window: 100 * time.Millisecond, MaxPaths: 3})
	keys := []string{"a.jpg", "uploads/2026/my cat.jpg", "a.jpg", "b.png", "c.gif", "d.webp"}
	start := time.Now()
	for _, k := range keys {
		c.Invalidate(context.Background(), k)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("Invalidate blocked for %v", d)
	}
	c.Close(context.Background())
	want := [][]string{{"/a.jpg*", "/uploads/2026/my%20cat.jpg*", "/b.png*"}, {"/c.gif*", "/d.webp*"}}
	if !slices.EqualFunc(fake.batches, want, slices.Equal[[]string]) {
		t.Errorf("batches %q, want %q", fake.batches, want)
	}
}

// A purge past MaxPending paths becomes one invalidation of everything,
// which covers what is asked while it waits.
func TestMassPurgeCollapses(t *testing.T) {
	fake := &fakeCloudFront{t: t}
	c := newTestCloudFront(t, fake, Options{Window: time.Hour, MaxPending: 3})
	for _, k := range []string{"a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"} {
		c.Invalidate(context.Background(), k)
	}
	c.Flush(context.Background())
	c.Invalidate(context.Background(), "f.jpg") // after: its own path again
	c.Close(context.Background())
	want := [][]string{{"/*"}, {"/f.jpg*"}}
	if !slices.EqualFunc(fake.batches, want, slices.Equal[[]string]) {
		t.Errorf("batches %q, want %q", fake.batches, want)
	}
}

func TestInvalidationsAreRetried(t *testing.T) {
	fake := &fakeCloudFront{t: t, failures: 2}
	c := newTestCloudFront(t, fake, Options{Window: 10 * time.Millisecond, Backoff: 20 * time.Millisecond})
	c.Invalidate(context.Background(), "x.jpg")
	deadline := time.Now().Add(5 * time.Second)
	for {
		fake.mu.Lock()
		n, refs := len(fake.batches), slices.Clone(fake.refs)
		fake.mu.Unlock()
		if n == 1 {
			if len(refs) != 3 || refs[0] != refs[2] {
				t.Errorf("tries %d with references %q: want 3 tries of one batch", len(refs), refs)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no invalidation after retries: %d requests", len(refs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Close(context.Background())
}

func TestFlushSendsAtOnce(t *testing.T) {
	fake := &fakeCloudFront{t: t}
	c := newTestCloudFront(t, fake, Options{Window: time.Hour})
	c.Invalidate(context.Background(), "frozen.jpg")
	c.Flush(context.Background())
	if !slices.EqualFunc(fake.batches, [][]string{{"/frozen.jpg*"}}, slices.Equal[[]string]) {
		t.Errorf("batches after Flush: %q", fake.batches)
	}
	c.Close(context.Background())
}

func TestPath(t *testing.T) {
	for key, want := range map[string]string{
		"cat.jpg":                 "/cat.jpg*",
		"uploads/2026/11/cat.jpg": "/uploads/2026/11/cat.jpg*",
		"a b/ü?.jpg":              "/a%20b/%C3%BC%3F.jpg*",
	} {
		if got := Path(key); got != want {
			t.Errorf("Path(%q) = %q, want %q", key, got, want)
		}
	}
}

// prism_cdn_invalidations_total tells batches created at once, created
// after retries, and given up.
func TestInvalidationMetrics(t *testing.T) {
	tests := []struct {
		name     string
		failures int
		attempts int
		want     map[string]float64
	}{
		{"first try", 0, 3, map[string]float64{"ok": 1, "retried": 0, "failed": 0}},
		{"after retries", 2, 3, map[string]float64{"ok": 0, "retried": 1, "failed": 0}},
		{"given up", 5, 2, map[string]float64{"ok": 0, "retried": 0, "failed": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			fake := &fakeCloudFront{t: t, failures: tt.failures}
			c := newTestCloudFront(t, fake, Options{Window: 10 * time.Millisecond, Backoff: 10 * time.Millisecond, Attempts: tt.attempts, Metrics: m})
			c.Invalidate(context.Background(), "x.jpg")
			c.Close(context.Background()) // sends what is pending, retries included
			for result, want := range tt.want {
				if got := promtestutil.ToFloat64(m.sent.WithLabelValues(result)); got != want {
					t.Errorf("result %q: %v, want %v", result, got, want)
				}
			}
		})
	}
}

// TestWatermarkPurge: replacing a watermark through the catalog invalidates
// its own path and the path of every original drawn with it, in one batch
// CloudFront receives.
func TestWatermarkPurge(t *testing.T) {
	ctx := t.Context()
	fake := &fakeCloudFront{t: t}
	cf := newTestCloudFront(t, fake, Options{Window: time.Hour})
	store, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(store, cache.NewMemory(100, cache.Options{}),
		catalog.Config{StorageTimeout: time.Second, FailureTTL: time.Second, Marks: cache.NewMarkMemory(0)}, cf)
	t.Cleanup(cat.Close)
	png := prism.Metadata{Width: 1, Height: 1, Format: "png", ContentType: "image/png", Frames: 1, Orientation: 1}
	if _, _, err := cat.Put(ctx, "marks/logo.png", []byte("first"), png, catalog.Overwrite); err != nil {
		t.Fatal(err)
	}
	cat.DrawnWith(ctx, "marks/logo.png", "uploads/cat.jpg")
	cat.DrawnWith(ctx, "marks/logo.png", "uploads/dog.jpg")
	if _, _, err := cat.Put(ctx, "marks/logo.png", []byte("second"), png, catalog.Overwrite); err != nil {
		t.Fatal(err)
	}
	cf.Flush(ctx)
	cf.Close(ctx)
	if len(fake.batches) != 1 {
		t.Fatalf("batches %q, want one", fake.batches)
	}
	got := slices.Clone(fake.batches[0])
	slices.Sort(got)
	if want := []string{"/marks/logo.png*", "/uploads/cat.jpg*", "/uploads/dog.jpg*"}; !slices.Equal(got, want) {
		t.Errorf("paths %q, want %q", got, want)
	}
}
