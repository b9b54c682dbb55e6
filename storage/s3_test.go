package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/internal/testutil"
)

// TestS3ContentType checks that the content type S3 records comes through,
// and that NewS3 finds MinIO through the standard AWS environment.
func TestS3ContentType(t *testing.T) {
	s, m := startS3(t, "")
	m.Put(t, "photo.jpg", []byte("jpeg bytes"), "image/jpeg")
	ctx := context.Background()
	info, err := s.Stat(ctx, "photo.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if info.ContentType != "image/jpeg" || info.Size != int64(len("jpeg bytes")) {
		t.Errorf("Stat = %+v, want image/jpeg of %d bytes", info, len("jpeg bytes"))
	}
}

// TestS3MissingBucket checks that a missing bucket, a misconfiguration, is
// not mistaken for a missing object.
func TestS3MissingBucket(t *testing.T) {
	m := testutil.StartMinIO(t)
	testutil.SetAWSEnv(t, m)
	ctx := context.Background()
	s, err := NewS3(ctx, S3Options{Bucket: m.Bucket + "-missing", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(ctx, "a.bin")
	if err == nil {
		o.Close()
	}
	wantStatus(t, "Open", err, http.StatusBadGateway, prism.CodeStorage)
}

// TestS3Unreachable checks that an S3 that cannot be reached, or does not
// answer in time, is a 502 or a 504 and never a 404.
func TestS3Unreachable(t *testing.T) {
	refused := testutil.FreePort(t) // closed again: connections are refused

	// silent accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()

	tests := []struct {
		name     string
		endpoint string
		timeout  time.Duration // negative: already expired
		want     []int
	}{
		{"refused", fmt.Sprintf("http://127.0.0.1:%d", refused), 10 * time.Second, []int{http.StatusBadGateway, http.StatusGatewayTimeout}},
		{"silent", "http://" + silent.Addr().String(), 300 * time.Millisecond, []int{http.StatusGatewayTimeout}},
		{"expired", fmt.Sprintf("http://127.0.0.1:%d", refused), -time.Second, []int{http.StatusGatewayTimeout}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", "unused")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "unused")
			t.Setenv("AWS_SESSION_TOKEN", "")
			t.Setenv("AWS_REGION", "us-east-1")
			t.Setenv("AWS_ENDPOINT_URL_S3", tt.endpoint)
			t.Setenv("AWS_MAX_ATTEMPTS", "1") // retries would only slow the test
			s, err := NewS3(context.Background(), S3Options{Bucket: "prism", PathStyle: true})
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				var pe *prism.Error
				if !errors.As(err, &pe) || !slices.Contains(tt.want, pe.Status) {
					t.Errorf("%s: err = %v, want a *prism.Error with status in %v", what, err, tt.want)
					return
				}
				if pe.Err == nil {
					t.Errorf("%s: the cause was dropped", what)
				}
			}

			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			o, err := s.Open(ctx, "a.bin")
			if err == nil {
				o.Close()
			}
			check("Open", err)

			ctx, cancel = context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			_, err = s.Stat(ctx, "a.bin")
			check("Stat", err)
		})
	}
}

// TestS3ObjectChanged checks that a ranged read of an object replaced since
// Open fails rather than mixing two versions.
func TestS3ObjectChanged(t *testing.T) {
	s, m := startS3(t, "")
	m.Put(t, "a.bin", testData, "")
	ctx := context.Background()
	o, err := s.Open(ctx, "a.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	m.Put(t, "a.bin", []byte("replaced"), "")
	o.Seek(100, io.SeekStart)
	if n, err := o.Read(make([]byte, 10)); err == nil {
		t.Errorf("Read after replacement = %d, nil; want an error", n)
	} else {
		wantStatus(t, "Read", err, http.StatusBadGateway, prism.CodeStorage)
	}
}
