package storage

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/internal/testutil"
)

// TestS3PresignGet fetches what PresignGet signs from MinIO without
// credentials, and checks that the URL grants that one object, for that
// long, and nothing else.
func TestS3PresignGet(t *testing.T) {
	s, m := startS3(t, "derived")
	ctx := context.Background()
	jpeg := testutil.ReadTestImage(t, "320x240.jpg")
	if _, err := s.Put(ctx, "a dir/photo 1.jpg", jpeg, PutOptions{ContentType: "image/jpeg"}); err != nil {
		t.Fatal(err)
	}

	t.Run("fetch", func(t *testing.T) {
		u, err := s.PresignGet(ctx, "a dir/photo 1.jpg", 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if want := m.Endpoint + "/" + m.Bucket + "/derived/a%20dir/photo%201.jpg?"; !strings.HasPrefix(u, want) {
			t.Errorf("URL = %q, want it to start %q", u, want)
		}
		q := mustQuery(t, u)
		for _, p := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Signature"} {
			if q.Get(p) == "" {
				t.Errorf("URL lacks %s: %s", p, u)
			}
		}
		if got := q.Get("X-Amz-Expires"); got != "600" {
			t.Errorf("X-Amz-Expires = %q, want 600", got)
		}
		status, body, header := fetch(t, u)
		if status != http.StatusOK || !bytes.Equal(body, jpeg) {
			t.Fatalf("GET answered %d with %d bytes, want 200 with the %d stored", status, len(body), len(jpeg))
		}
		if ct := header.Get("Content-Type"); ct != "image/jpeg" {
			t.Errorf("Content-Type %q, want image/jpeg", ct)
		}
	})

	t.Run("missing key", func(t *testing.T) {
		u, err := s.PresignGet(ctx, "not/there.jpg", time.Minute)
		if err != nil {
			t.Fatalf("PresignGet of a missing key: %v (it must not check)", err)
		}
		if status, _, _ := fetch(t, u); status != http.StatusNotFound {
			t.Errorf("GET of a missing key answered %d, want 404", status)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		u, err := s.PresignGet(ctx, "a dir/photo 1.jpg", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		other := strings.Replace(u, "photo%201.jpg", "photo%202.jpg", 1)
		if _, err := s.Put(ctx, "a dir/photo 2.jpg", jpeg, PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if status, _, _ := fetch(t, other); status != http.StatusForbidden {
			t.Errorf("GET of another key with the signature answered %d, want 403", status)
		}
	})

	t.Run("expired", func(t *testing.T) {
		u, err := s.PresignGet(ctx, "a dir/photo 1.jpg", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2100 * time.Millisecond)
		if status, _, _ := fetch(t, u); status != http.StatusForbidden {
			t.Errorf("GET after expiry answered %d, want 403", status)
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		for _, expiry := range []time.Duration{0, -time.Second, 7*24*time.Hour + time.Second} {
			if _, err := s.PresignGet(ctx, "a.jpg", expiry); err == nil {
				t.Errorf("PresignGet(%v) succeeded, want an error", expiry)
			}
		}
		for _, key := range []string{"", "../escape", "a//b", "/abs"} {
			_, err := s.PresignGet(ctx, key, time.Minute)
			wantStatus(t, "PresignGet("+key+")", err, http.StatusBadRequest, prism.CodeInvalidKey)
		}
	})
}

// TestS3PresignGetVirtualHost checks the URL without path-style addressing:
// the bucket moves into the host name.
func TestS3PresignGetVirtualHost(t *testing.T) {
	s, err := newS3(aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	}, S3Options{Bucket: "my-bucket", Prefix: "p"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.PresignGet(context.Background(), "a.jpg", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "https://my-bucket.s3.eu-west-1.amazonaws.com/p/a.jpg?") {
		t.Errorf("URL = %q, want the bucket in the host name and the prefix in the path", u)
	}
}

func mustQuery(t *testing.T, rawURL string) url.Values {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// fetch GETs u with a plain client: no credentials of any kind.
func fetch(t *testing.T, u string) (int, []byte, http.Header) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body, res.Header
}
