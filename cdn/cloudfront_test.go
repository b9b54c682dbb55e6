package cdn

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/catalog"
	"github.com/prism-image/prism/internal/testutil"
	"github.com/prism-image/prism/storage"
)

func newTestCloudFront(t *testing.T, fake *testutil.FakeCloudFront, o Options) *CloudFront {
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client := cloudfront.New(cloudfront.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(testutil.CloudFrontAccessKey, testutil.CloudFrontSecretKey, ""),
	})
	return NewCloudFront(client, testutil.CloudFrontDistribution, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestInvalidationsAreBatched(t *testing.T) {
	fake := &testutil.FakeCloudFront{T: t}
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
	if !slices.EqualFunc(fake.Batches(), want, slices.Equal[[]string]) {
		t.Errorf("batches %q, want %q", fake.Batches(), want)
	}
}

// A purge past MaxPending paths becomes one invalidation of everything,
// which covers what is asked while it waits.
func TestMassPurgeCollapses(t *testing.T) {
	fake := &testutil.FakeCloudFront{T: t}
	c := newTestCloudFront(t, fake, Options{Window: time.Hour, MaxPending: 3})
	for _, k := range []string{"a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"} {
		c.Invalidate(context.Background(), k)
	}
	c.Flush(context.Background())
	c.Invalidate(context.Background(), "f.jpg") // after: its own path again
	c.Close(context.Background())
	want := [][]string{{"/*"}, {"/f.jpg*"}}
	if !slices.EqualFunc(fake.Batches(), want, slices.Equal[[]string]) {
		t.Errorf("batches %q, want %q", fake.Batches(), want)
	}
}

func TestInvalidationsAreRetried(t *testing.T) {
	fake := &testutil.FakeCloudFront{T: t, Failures: 2}
	c := newTestCloudFront(t, fake, Options{Window: 10 * time.Millisecond, Backoff: 20 * time.Millisecond})
	c.Invalidate(context.Background(), "x.jpg")
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, refs := len(fake.Batches()), fake.Refs()
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
	fake := &testutil.FakeCloudFront{T: t}
	c := newTestCloudFront(t, fake, Options{Window: time.Hour})
	c.Invalidate(context.Background(), "frozen.jpg")
	c.Flush(context.Background())
	if !slices.EqualFunc(fake.Batches(), [][]string{{"/frozen.jpg*"}}, slices.Equal[[]string]) {
		t.Errorf("batches after Flush: %q", fake.Batches())
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
			fake := &testutil.FakeCloudFront{T: t, Failures: tt.failures}
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
	fake := &testutil.FakeCloudFront{T: t}
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
	if len(fake.Batches()) != 1 {
		t.Fatalf("batches %q, want one", fake.Batches())
	}
	got := slices.Clone(fake.Batches()[0])
	slices.Sort(got)
	if want := []string{"/marks/logo.png*", "/uploads/cat.jpg*", "/uploads/dog.jpg*"}; !slices.Equal(got, want) {
		t.Errorf("paths %q, want %q", got, want)
	}
}
