package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prism-image/prism"
	"github.com/prism-image/prism/internal/testutil"
)

// testData is the content of the main test object: 1000 bytes, no two
// neighbouring ranges alike.
var testData = func() []byte {
	b := make([]byte, 1000)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}()

// fixtures are stored in every backend under test.
var fixtures = map[string][]byte{
	"a.bin":            testData,
	"nested/dir/b.jpg": []byte("\xff\xd8\xff\xe0 not really a jpeg"),
	"ünï code/ä b.png": []byte("unicode key"),
	"empty":            {},
}

// backend is a Storage under test.
type backend struct {
	name string
	st   Storage
	// requests counts the HTTP requests the backend has made; nil for
	// backends that make none.
	requests *atomic.Int64
}

// startS3 starts a MinIO and returns an S3 backend on its bucket, under
// prefix.
func startS3(t *testing.T, prefix string) (*S3, *testutil.MinIO) {
	t.Helper()
	m := testutil.StartMinIO(t)
	testutil.SetAWSEnv(t, m)
	s, err := NewS3(context.Background(), S3Options{Bucket: m.Bucket, Prefix: prefix, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

// backends returns a file backend and an S3 backend on a fresh MinIO, both
// holding fixtures.
func backends(t *testing.T) []backend {
	t.Helper()
	ctx := context.Background()

	// The file root sits next to a secret that no key may reach.
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "secret.txt"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	fileStore, err := NewFile(filepath.Join(base, "root"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fileStore.Close() })
	for key, data := range fixtures {
		p := filepath.Join(fileStore.Dir(), filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	m := testutil.StartMinIO(t)
	testutil.SetAWSEnv(t, m)
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counter := &countingClient{next: cfg.HTTPClient}
	cfg.HTTPClient = counter
	// Slashes around the prefix must not matter.
	s3Store, err := newS3(cfg, S3Options{Bucket: m.Bucket, Prefix: "/originals/", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	for key, data := range fixtures {
		_, err := m.Client().PutObject(ctx, &s3.PutObjectInput{
			Bucket: &m.Bucket,
			Key:    aws.String("originals/" + key),
			Body:   bytes.NewReader(data),
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	return []backend{
		{name: "file", st: fileStore},
		{name: "s3", st: s3Store, requests: &counter.n},
	}
}

// countingClient counts the requests an SDK client sends.
type countingClient struct {
	next aws.HTTPClient
	n    atomic.Int64
}

func (c *countingClient) Do(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.Do(req)
}

func TestBackends(t *testing.T) {
	start := time.Now()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Run("Open", func(t *testing.T) { testOpen(t, b, start) })
			t.Run("NotFound", func(t *testing.T) { testNotFound(t, b) })
			t.Run("InvalidKey", func(t *testing.T) { testInvalidKey(t, b) })
			t.Run("Seek", func(t *testing.T) { testSeek(t, b) })
			t.Run("ServeContent", func(t *testing.T) { testServeContent(t, b) })
			if b.requests != nil {
				// Local reads wait on nothing a deadline could cut short.
				t.Run("ExpiredContext", func(t *testing.T) { testExpiredContext(t, b) })
			}
		})
	}
}

func testOpen(t *testing.T, b backend, start time.Time) {
	ctx := context.Background()
	for key, data := range fixtures {
		o, err := b.st.Open(ctx, key)
		if err != nil {
			t.Errorf("Open(%q): %v", key, err)
			continue
		}
		got, err := io.ReadAll(o)
		o.Close()
		if err != nil {
			t.Errorf("Open(%q): reading: %v", key, err)
		} else if !bytes.Equal(got, data) {
			t.Errorf("Open(%q) read %q, want %q", key, got, data)
		}

		info := o.Info()
		if info.Key != key {
			t.Errorf("Open(%q).Info().Key = %q", key, info.Key)
		}
		if info.Size != int64(len(data)) {
			t.Errorf("Open(%q).Info().Size = %d, want %d", key, info.Size, len(data))
		}
		if len(info.ETag) < 3 || !strings.HasPrefix(info.ETag, `"`) || !strings.HasSuffix(info.ETag, `"`) {
			t.Errorf("Open(%q).Info().ETag = %s, want a strong quoted ETag", key, info.ETag)
		}
		// S3 keeps whole seconds.
		if lm := info.LastModified; lm.Before(start.Add(-2*time.Second)) || lm.After(time.Now().Add(time.Second)) {
			t.Errorf("Open(%q).Info().LastModified = %v, want around %v", key, lm, start)
		}

		stat, err := b.st.Stat(ctx, key)
		if err != nil {
			t.Errorf("Stat(%q): %v", key, err)
			continue
		}
		if stat.Key != info.Key || stat.Size != info.Size || stat.ETag != info.ETag ||
			!stat.LastModified.Equal(info.LastModified) || stat.ContentType != info.ContentType {
			t.Errorf("Stat(%q) = %+v, Open's Info = %+v", key, stat, info)
		}
	}
}

func testNotFound(t *testing.T, b backend) {
	ctx := context.Background()
	for _, key := range []string{
		"missing.bin",
		"nested/missing.jpg",
		"nested",          // a directory, or a mere prefix in S3
		"nested/dir",      // likewise
		"a.bin/child",     // below a file
		"originals/a.bin", // the S3 prefix is not part of the key
	} {
		o, err := b.st.Open(ctx, key)
		if err == nil {
			o.Close()
		}
		wantStatus(t, "Open("+key+")", err, http.StatusNotFound, prism.CodeNotFound)
		_, err = b.st.Stat(ctx, key)
		wantStatus(t, "Stat("+key+")", err, http.StatusNotFound, prism.CodeNotFound)
	}
}

func testInvalidKey(t *testing.T, b backend) {
	wantInvalidKeys(t, b, []string{
		"",
		"../secret.txt",
		"../etc/passwd",
		"a/../../b",
		"nested/../../secret.txt",
		"/etc/passwd",
		`..\secret.txt`,
		"a.bin\x00.jpg",
		"a.bin\n",
		"nested//dir/b.jpg",
		"nested/dir/",
		"./a.bin",
	})
}

// wantInvalidKeys checks that every operation refuses every key with a 400
// before touching storage.
func wantInvalidKeys(t *testing.T, b backend, keys []string) {
	t.Helper()
	ctx := context.Background()
	for _, key := range keys {
		o, err := b.st.Open(ctx, key)
		if err == nil {
			o.Close()
		}
		wantStatus(t, "Open("+key+")", err, http.StatusBadRequest, prism.CodeInvalidKey)
		_, err = b.st.Stat(ctx, key)
		wantStatus(t, "Stat("+key+")", err, http.StatusBadRequest, prism.CodeInvalidKey)
		_, err = b.st.Put(ctx, key, []byte("x"), PutOptions{})
		wantStatus(t, "Put("+key+")", err, http.StatusBadRequest, prism.CodeInvalidKey)
		_, err = b.st.Put(ctx, key, []byte("x"), PutOptions{IfNoneMatch: true})
		wantStatus(t, "Put("+key+", IfNoneMatch)", err, http.StatusBadRequest, prism.CodeInvalidKey)
		err = b.st.Delete(ctx, key)
		wantStatus(t, "Delete("+key+")", err, http.StatusBadRequest, prism.CodeInvalidKey)
		if s3, ok := b.st.(*S3); ok {
			_, err = s3.PresignPost(ctx, key, 1000, time.Minute)
			wantStatus(t, "PresignPost("+key+")", err, http.StatusBadRequest, prism.CodeInvalidKey)
		}
	}
}

func testSeek(t *testing.T, b backend) {
	ctx := context.Background()
	size := int64(len(testData))
	tests := []struct {
		name    string
		preRead int   // bytes read before seeking
		offset  int64 // Seek arguments
		whence  int
		wantPos int64
		readN   int // bytes to read after seeking; -1 to read to EOF
		want    []byte
		// S3 requests beyond Open's: one whenever a read happens
		// anywhere but where the body stands.
		wantExtra int64
	}{
		{"start", 0, 0, io.SeekStart, 0, -1, testData, 0},
		{"range", 0, 100, io.SeekStart, 100, 50, testData[100:150], 1},
		{"current after read", 10, 90, io.SeekCurrent, 100, 50, testData[100:150], 1},
		{"no-op seek keeps body", 100, 0, io.SeekCurrent, 100, 50, testData[100:150], 0},
		{"seek to where body stands", 100, 100, io.SeekStart, 100, 50, testData[100:150], 0},
		{"size", 0, 0, io.SeekEnd, size, -1, nil, 0},
		{"from end", 0, -50, io.SeekEnd, size - 50, -1, testData[size-50:], 1},
		{"rewind", 500, 0, io.SeekStart, 0, -1, testData, 1},
		{"past end", 0, 2 * size, io.SeekStart, 2 * size, -1, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := b.st.Open(ctx, "a.bin")
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			var before int64
			if b.requests != nil {
				before = b.requests.Load()
			}
			if _, err := io.ReadFull(o, make([]byte, tt.preRead)); err != nil {
				t.Fatalf("reading %d bytes: %v", tt.preRead, err)
			}
			pos, err := o.Seek(tt.offset, tt.whence)
			if err != nil || pos != tt.wantPos {
				t.Fatalf("Seek(%d, %d) = %d, %v; want %d", tt.offset, tt.whence, pos, err, tt.wantPos)
			}
			var got []byte
			if tt.readN < 0 {
				got, err = io.ReadAll(o)
			} else {
				got = make([]byte, tt.readN)
				_, err = io.ReadFull(o, got)
			}
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("read %d bytes %x, want %d bytes %x", len(got), got, len(tt.want), tt.want)
			}
			if b.requests != nil {
				if extra := b.requests.Load() - before; extra != tt.wantExtra {
					t.Errorf("%d requests after Open, want %d", extra, tt.wantExtra)
				}
			}
		})
	}

	t.Run("negative", func(t *testing.T) {
		o, err := b.st.Open(ctx, "a.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		if pos, err := o.Seek(-1, io.SeekStart); err == nil {
			t.Errorf("Seek(-1, SeekStart) = %d, nil; want an error", pos)
		}
	})
}

// testServeContent checks that an Object is all http.ServeContent needs to
// answer Range requests.
func testServeContent(t *testing.T, b backend) {
	ctx := context.Background()
	tests := []struct {
		rangeHeader  string
		wantStatus   int
		wantBody     []byte
		contentRange string
	}{
		{"bytes=10-19", http.StatusPartialContent, testData[10:20], "bytes 10-19/1000"},
		{"bytes=990-", http.StatusPartialContent, testData[990:], "bytes 990-999/1000"},
		{"bytes=-5", http.StatusPartialContent, testData[995:], "bytes 995-999/1000"},
		{"bytes=0-", http.StatusPartialContent, testData, "bytes 0-999/1000"},
		{"", http.StatusOK, testData, ""},
		{"bytes=2000-", http.StatusRequestedRangeNotSatisfiable, nil, "bytes */1000"},
	}
	for _, tt := range tests {
		name := tt.rangeHeader
		if name == "" {
			name = "no Range"
		}
		t.Run(name, func(t *testing.T) {
			var before int64
			if b.requests != nil {
				before = b.requests.Load()
			}
			o, err := b.st.Open(ctx, "a.bin")
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			r := httptest.NewRequest(http.MethodGet, "/a.bin", nil)
			if tt.rangeHeader != "" {
				r.Header.Set("Range", tt.rangeHeader)
			}
			w := httptest.NewRecorder()
			http.ServeContent(w, r, "a.bin", o.Info().LastModified, o)

			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", w.Code, tt.wantStatus)
			}
			if tt.wantBody != nil && !bytes.Equal(w.Body.Bytes(), tt.wantBody) {
				t.Errorf("body %x, want %x", w.Body.Bytes(), tt.wantBody)
			}
			if got := w.Header().Get("Content-Range"); got != tt.contentRange {
				t.Errorf("Content-Range %q, want %q", got, tt.contentRange)
			}
			// Open's GetObject plus at most one ranged GetObject.
			if b.requests != nil {
				if n := b.requests.Load() - before; n > 2 {
					t.Errorf("%d requests, want at most 2", n)
				}
			}
		})
	}
}

func testExpiredContext(t *testing.T, b backend) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	o, err := b.st.Open(ctx, "a.bin")
	if err == nil {
		o.Close()
	}
	wantStatus(t, "Open", err, http.StatusGatewayTimeout, prism.CodeStorageTimeout)
	_, err = b.st.Stat(ctx, "a.bin")
	wantStatus(t, "Stat", err, http.StatusGatewayTimeout, prism.CodeStorageTimeout)
}

// wantStatus checks that err is a *prism.Error with the given status and
// code.
func wantStatus(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var pe *prism.Error
	if !errors.As(err, &pe) {
		t.Errorf("%s: err = %v, want a %d *prism.Error", what, err, status)
		return
	}
	if pe.Status != status || pe.Code != code {
		t.Errorf("%s: %d %s (%v), want %d %s", what, pe.Status, pe.Code, err, status, code)
	}
}
