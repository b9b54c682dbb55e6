package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prism-image/prism"
)

// TestDeletePrefix runs the DeletePrefix tests against every backend.
func TestDeletePrefix(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Run("Table", func(t *testing.T) { testDeletePrefix(t, b) })
			t.Run("Many", func(t *testing.T) { testDeletePrefixMany(t, b) })
			t.Run("ExpiredContext", func(t *testing.T) { testDeletePrefixExpired(t, b) })
			t.Run("ConcurrentPut", func(t *testing.T) { testDeletePrefixConcurrentPut(t, b) })
			// The fixtures, outside every prefix purged, are untouched.
			for key, data := range fixtures {
				wantContent(t, b, key, data)
			}
			noTempFiles(t, b)
		})
	}
}

func testDeletePrefix(t *testing.T, b backend) {
	ctx := context.Background()
	tests := []struct {
		name   string
		prefix string
		gone   []string // stored first; DeletePrefix removes them
		kept   []string // stored first; DeletePrefix leaves them
		status int      // DeletePrefix's error status, 0 for none
	}{
		// No case holds both a/x.jpg and a/x.jpg/1.webp. The file backend
		// cannot: a key is a file or a directory. Nor can MinIO, S3 proper
		// aside: it lists nothing under an object's name + "/" (see
		// https://min.io/docs/minio/linux/operations/concepts/thresholds.html#conflicting-objects),
		// so the variants would survive, listed by no one.
		{
			name:   "variants",
			prefix: "a/x.jpg",
			gone:   []string{"a/x.jpg/1.webp", "a/x.jpg/2.avif", "a/x.jpg/deep/3.png"},
			kept:   []string{"a/x.jpgz/4.png", "a/y.jpg/5.png"},
		},
		{
			// The object at prefix itself stays.
			name:   "source without variants",
			prefix: "a/x.jpg",
			kept:   []string{"a/x.jpg", "a/x.jpgz/4.png", "a/y.jpg/5.png"},
		},
		{
			name:   "missing prefix",
			prefix: "a/x.jpg",
			kept:   []string{"a/x.jpgz/4.png", "a/y.jpg/5.png"},
		},
		{
			name:   "below a file",
			prefix: "a/x.jpg/deep",
			kept:   []string{"a/x.jpg", "a/x.jpgz/4.png"},
		},
		{
			name:   "nested prefix",
			prefix: "a/x.jpg/deep",
			gone:   []string{"a/x.jpg/deep/3.png", "a/x.jpg/deep/er/6.png"},
			kept:   []string{"a/x.jpg/1.webp", "a/x.jpg/deep.png", "a/x.jpg/deepz/7.png"},
		},
		{
			name:   "whole folder",
			prefix: "a",
			gone:   []string{"a/x.jpg/1.webp", "a/y.jpg/5.png", "a/z.png"},
			kept:   []string{"ab/x.png", "b/a/x.png"},
		},
		{
			name:   "unicode",
			prefix: "ünï/ä b.jpg",
			gone:   []string{"ünï/ä b.jpg/1.webp"},
			kept:   []string{"ünï/ä b.jpg 2/1.webp"},
		},
		{name: "parent", prefix: "../x", status: http.StatusBadRequest},
		{name: "parent inside", prefix: "a/../../x", status: http.StatusBadRequest},
		{name: "reserved", prefix: ".prism", status: http.StatusBadRequest},
		{name: "reserved tmp", prefix: ".prism/tmp", status: http.StatusBadRequest},
		{name: "reserved upper case", prefix: ".PRISM", status: http.StatusBadRequest},
		{name: "empty", prefix: "", status: http.StatusBadRequest},
		{name: "trailing slash", prefix: "a/", status: http.StatusBadRequest},
		{name: "absolute", prefix: "/a", status: http.StatusBadRequest},
		{name: "empty segment", prefix: "a//x.jpg", status: http.StatusBadRequest},
		{name: "dot", prefix: ".", status: http.StatusBadRequest},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case has a folder of its own, except for invalid
			// prefixes, which are taken as they are.
			ns := fmt.Sprintf("purge/%d/", i)
			prefix := ns + tt.prefix
			if tt.status != 0 {
				prefix = tt.prefix
			}
			kept := tt.kept
			for _, key := range append(tt.gone[:len(tt.gone):len(tt.gone)], kept...) {
				put(t, b, ns+key, []byte(key))
			}

			err := b.st.DeletePrefix(ctx, prefix)
			if tt.status != 0 {
				wantStatus(t, "DeletePrefix("+prefix+")", err, tt.status, prism.CodeInvalidKey)
				if f, ok := b.st.(*File); ok {
					if fi, err := os.Stat(filepath.Join(f.Dir(), ".prism", "tmp")); err != nil || !fi.IsDir() {
						t.Errorf(".prism/tmp: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("DeletePrefix(%q): %v", prefix, err)
			}
			for _, key := range tt.gone {
				_, err := b.st.Stat(ctx, ns+key)
				wantStatus(t, "Stat("+ns+key+")", err, http.StatusNotFound, prism.CodeNotFound)
			}
			for _, key := range kept {
				wantContent(t, b, ns+key, []byte(key))
			}
			if f, ok := b.st.(*File); ok && len(tt.gone) > 0 {
				if _, err := os.Lstat(filepath.Join(f.Dir(), filepath.FromSlash(prefix))); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the directory %s survived: %v", prefix, err)
				}
			}
			// Nothing left to remove is no error either.
			if err := b.st.DeletePrefix(ctx, prefix); err != nil {
				t.Errorf("DeletePrefix(%q) again: %v", prefix, err)
			}
			noTempFiles(t, b)
		})
	}
}

// testDeletePrefixMany purges more objects than one S3 request lists or
// deletes.
func testDeletePrefixMany(t *testing.T, b backend) {
	const (
		n       = 1005
		workers = 64
	)
	ctx := context.Background()
	keys := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for key := range keys {
				if err := seed(ctx, b, key, []byte("v")); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range n {
		keys <- fmt.Sprintf("many/src.jpg/%04d.webp", i)
	}
	close(keys)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	kept := []string{"many/src.jpgz/0000.webp", "many/src.jp/0000.webp"}
	for _, key := range kept {
		put(t, b, key, []byte(key))
	}

	var before int64
	if b.requests != nil {
		before = b.requests.Load()
	}
	if err := b.st.DeletePrefix(ctx, "many/src.jpg"); err != nil {
		t.Fatalf("DeletePrefix: %v", err)
	}
	if b.requests != nil {
		// Two pages listed, each deleted with one request.
		if got := b.requests.Load() - before; got > 4 {
			t.Errorf("DeletePrefix of %d objects made %d requests, want at most 4", n, got)
		}
	}
	for _, key := range kept {
		wantContent(t, b, key, []byte(key))
	}
	switch st := b.st.(type) {
	case *S3:
		out, err := st.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket: &st.bucket,
			Prefix: aws.String(st.prefix + "many/"),
		})
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, o := range out.Contents {
			left = append(left, strings.TrimPrefix(aws.ToString(o.Key), st.prefix))
		}
		if len(left) != len(kept) {
			t.Errorf("left under many/: %d objects %.5q, want %q", len(left), left, kept)
		}
	case *File:
		if _, err := os.Lstat(filepath.Join(st.Dir(), "many", "src.jpg")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("many/src.jpg survived: %v", err)
		}
	}
}

// seed stores data at key straight into the backend, without Put's care
// (and without its fsyncs or its HeadObject).
func seed(ctx context.Context, b backend, key string, data []byte) error {
	switch st := b.st.(type) {
	case *S3:
		_, err := st.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &st.bucket,
			Key:    aws.String(st.prefix + key),
			Body:   bytes.NewReader(data),
		})
		return err
	case *File:
		p := filepath.Join(st.Dir(), filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	}
	_, err := b.st.Put(ctx, key, data, PutOptions{})
	return err
}

func testDeletePrefixExpired(t *testing.T, b backend) {
	put(t, b, "expired/x.jpg/1.webp", []byte("variant"))
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	err := b.st.DeletePrefix(ctx, "expired/x.jpg")
	wantStatus(t, "DeletePrefix", err, http.StatusGatewayTimeout, prism.CodeStorageTimeout)
	wantContent(t, b, "expired/x.jpg/1.webp", []byte("variant"))
}

// testDeletePrefixConcurrentPut purges a prefix again and again while
// writers put variants under it: neither side fails, and a last purge once
// the writers are done leaves nothing.
func testDeletePrefixConcurrentPut(t *testing.T, b backend) {
	const (
		prefix  = "race/x.jpg"
		writers = 4
		rounds  = 25
	)
	ctx := context.Background()
	var (
		wg    sync.WaitGroup
		done  atomic.Bool
		mu    sync.Mutex
		keys  []string
		purge atomic.Int64
	)
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				key := fmt.Sprintf("%s/%d/%d.webp", prefix, w, i)
				if _, err := b.st.Put(ctx, key, []byte(key), PutOptions{}); err != nil {
					t.Errorf("Put(%q): %v", key, err)
					return
				}
				mu.Lock()
				keys = append(keys, key)
				mu.Unlock()
			}
		})
	}
	var pwg sync.WaitGroup
	pwg.Go(func() {
		for n := 0; n < 3 || !done.Load(); n++ {
			if err := b.st.DeletePrefix(ctx, prefix); err != nil {
				t.Errorf("DeletePrefix: %v", err)
				return
			}
			purge.Add(1)
		}
	})
	wg.Wait()
	done.Store(true)
	pwg.Wait()
	t.Logf("%d purges during %d writes", purge.Load(), writers*rounds)

	if err := b.st.DeletePrefix(ctx, prefix); err != nil {
		t.Fatalf("last DeletePrefix: %v", err)
	}
	for _, key := range keys {
		_, err := b.st.Stat(ctx, key)
		wantStatus(t, "Stat("+key+")", err, http.StatusNotFound, prism.CodeNotFound)
	}
}

// TestFileDeletePrefixSymlinks checks that DeletePrefix stays inside the
// root: a symlink to a directory inside is removed, not what it leads to,
// and nothing outside is ever touched.
func TestFileDeletePrefixSymlinks(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(filepath.Join(outside, "x.jpg"), 0o755); err != nil {
		t.Fatal(err)
	}
	victims := []string{filepath.Join(outside, "victim"), filepath.Join(outside, "x.jpg", "1.webp")}
	for _, v := range victims {
		if err := os.WriteFile(v, []byte("victim"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewFile(filepath.Join(base, "root"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, key := range []string{"real/1.webp", "real/sub/2.webp", "a.txt"} {
		if _, err := s.Put(ctx, key, []byte(key), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"escape":         outside,
		"escape-rel":     "../outside",
		"escape-dir":     "..",
		"nested/escape":  "../../outside",
		"dir-link":       "real",
		"file-link":      "a.txt",
		"dangling":       "nowhere",
		"loop":           "loop",
		"via-link/inner": "../real/sub",
	}
	for name, target := range links {
		p := filepath.Join(s.Dir(), filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		prefix string
		gone   string // a symlink DeletePrefix removes; "" for none
	}{
		{"escape", ""},
		{"escape/x.jpg", ""},
		{"escape-rel", ""},
		{"escape-dir", ""},
		{"escape-dir/outside", ""},
		{"escape-dir/root", ""}, // the root itself, reached from outside
		{"nested/escape", ""},
		{"nested", "nested/escape"}, // a plain directory: the link goes, not its target
		{"file-link", ""},           // an object
		{"dangling", ""},
		{"loop", ""},
		{"loop/x", ""},
		{"dir-link/sub", ""}, // nothing but a symlink is removed here...
		{"dir-link", "dir-link"},
	}
	removed := map[string]bool{}
	for _, tt := range tests {
		if err := s.DeletePrefix(ctx, tt.prefix); err != nil {
			t.Errorf("DeletePrefix(%q): %v", tt.prefix, err)
		}
		if tt.gone != "" {
			removed[tt.gone] = true
		}
		for name := range links {
			_, err := os.Lstat(filepath.Join(s.Dir(), filepath.FromSlash(name)))
			if gone := errors.Is(err, os.ErrNotExist); gone != removed[name] || (!gone && err != nil) {
				t.Errorf("after DeletePrefix(%q): symlink %s: %v, want it removed: %v", tt.prefix, name, err, removed[name])
			}
		}
		for _, v := range victims {
			if got, err := os.ReadFile(v); err != nil || string(got) != "victim" {
				t.Fatalf("after DeletePrefix(%q): %s outside the root now %q, %v", tt.prefix, v, got, err)
			}
		}
		if tt.prefix == "dir-link/sub" {
			// ...which dir-link/sub is not: it is real/sub, reached
			// through a directory symlink, and goes.
			if _, err := s.Stat(ctx, "real/sub/2.webp"); err == nil {
				t.Errorf("real/sub/2.webp survived DeletePrefix(dir-link/sub)")
			}
		}
	}
	// What the links led to inside the root is still there.
	for _, key := range []string{"real/1.webp", "a.txt"} {
		o, err := s.Open(ctx, key)
		if err != nil {
			t.Errorf("Open(%q): %v", key, err)
			continue
		}
		got, _ := io.ReadAll(o)
		o.Close()
		if string(got) != key {
			t.Errorf("Open(%q) read %q", key, got)
		}
	}
	if _, err := s.Stat(ctx, "file-link"); err != nil {
		t.Errorf("Stat(file-link): %v", err)
	}
	if _, err := s.Stat(ctx, "dir-link/1.webp"); err == nil {
		t.Errorf("dir-link/1.webp still resolves")
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), ".prism", "tmp")); err != nil {
		t.Errorf(".prism/tmp: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Dir(), ".prism", "tmp")); len(entries) > 0 {
		t.Errorf(".prism/tmp holds %d leftovers", len(entries))
	}
}

// TestFileSweepPurge checks that NewFile removes what a crashed DeletePrefix
// left in .prism/tmp, and only when it is old.
func TestFileSweepPurge(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, ".prism", "tmp")
	for _, name := range []string{"old.purge", "fresh.purge"} {
		if err := os.MkdirAll(filepath.Join(tmp, name, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, name, "sub", "1.webp"), []byte("v"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(filepath.Join(tmp, "old.purge"), old, old); err != nil {
		t.Fatal(err)
	}
	s, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Lstat(filepath.Join(tmp, "old.purge")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old purge directory survived NewFile: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "fresh.purge", "sub", "1.webp")); err != nil {
		t.Errorf("fresh purge directory removed: %v", err)
	}
}

// TestS3DeletePrefixErrors checks, against a fake S3, that DeleteObjects is
// sent in quiet mode and that the objects it fails to delete, or a listing
// that fails, make a 502.
func TestS3DeletePrefixErrors(t *testing.T) {
	const listing = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix>pre/a/x.jpg/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>
<Contents><Key>pre/a/x.jpg/1.webp</Key><Size>1</Size></Contents><Contents><Key>pre/a/x.jpg/2.webp</Key><Size>1</Size></Contents></ListBucketResult>`
	const deleteFailed = `<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Error><Key>pre/a/x.jpg/2.webp</Key><Code>AccessDenied</Code><Message>Access Denied.</Message></Error></DeleteResult>`
	const noSuchBucket = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>bucket</BucketName></Error>`

	tests := []struct {
		name       string
		listStatus int
		listBody   string
		deleteBody string
		wantInErr  string
	}{
		{"object not deleted", http.StatusOK, listing, deleteFailed, "a/x.jpg/2.webp: AccessDenied"},
		{"listing fails", http.StatusInternalServerError, "", "", ""},
		{"no such bucket", http.StatusNotFound, noSuchBucket, "", "NoSuchBucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var deleteReq atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/xml")
				switch {
				case r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2":
					if r.URL.Query().Get("prefix") != "pre/a/x.jpg/" {
						t.Errorf("listed prefix %q", r.URL.Query().Get("prefix"))
					}
					w.WriteHeader(tt.listStatus)
					io.WriteString(w, tt.listBody)
				case r.Method == http.MethodPost && r.URL.Query().Has("delete"):
					body, _ := io.ReadAll(r.Body)
					deleteReq.Store(string(body))
					io.WriteString(w, tt.deleteBody)
				default:
					t.Errorf("unexpected request %s %s", r.Method, r.URL)
					w.WriteHeader(http.StatusNotImplemented)
				}
			}))
			defer srv.Close()
			cfg := aws.Config{
				Region:           "us-east-1",
				BaseEndpoint:     aws.String(srv.URL),
				Credentials:      credentials.NewStaticCredentialsProvider("key", "secret", ""),
				RetryMaxAttempts: 1,
			}
			s, err := newS3(cfg, S3Options{Bucket: "bucket", Prefix: "pre", PathStyle: true})
			if err != nil {
				t.Fatal(err)
			}
			err = s.DeletePrefix(context.Background(), "a/x.jpg")
			wantStatus(t, "DeletePrefix", err, http.StatusBadGateway, prism.CodeStorage)
			if err != nil && !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("DeletePrefix: %v, want it to mention %q", err, tt.wantInErr)
			}
			if err != nil && strings.Contains(err.Error(), "pre/a") {
				t.Errorf("DeletePrefix: %v names the backend's own key", err)
			}
			if tt.deleteBody != "" {
				body, _ := deleteReq.Load().(string)
				if !strings.Contains(body, "<Quiet>true</Quiet>") || strings.Count(body, "<Object>") != 2 {
					t.Errorf("DeleteObjects body %s, want 2 objects in quiet mode", body)
				}
			}
		})
	}
}
