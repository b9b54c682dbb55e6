package storage

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prism-image/prism"
	"github.com/prism-image/prism/internal/testutil"
)

// TestS3PresignPost posts real browser-style forms to MinIO with what
// PresignPost returns.
func TestS3PresignPost(t *testing.T) {
	s, m := startS3(t, "originals")
	ctx := context.Background()
	jpeg := testutil.ReadTestImage(t, "320x240.jpg")
	maxBytes := int64(len(jpeg))

	t.Run("form", func(t *testing.T) {
		start := time.Now()
		p, err := s.PresignPost(ctx, "uploads/a.jpg", maxBytes, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if want := m.Endpoint + "/" + m.Bucket; p.URL != want {
			t.Errorf("URL = %q, want %q", p.URL, want)
		}
		if p.Key != "uploads/a.jpg" || p.Fields["key"] != "originals/uploads/a.jpg" {
			t.Errorf("Key = %q, Fields[key] = %q; want uploads/a.jpg and originals/uploads/a.jpg", p.Key, p.Fields["key"])
		}
		for _, f := range []string{"key", "policy", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Signature"} {
			if p.Fields[f] == "" {
				t.Errorf("Fields lack %s: %v", f, slices.Sorted(maps.Keys(p.Fields)))
			}
		}
		if _, ok := p.Fields["Content-Type"]; ok {
			t.Errorf("Fields hold a Content-Type, which is the client's to set")
		}
		// Whole seconds: the policy's expiration.
		if want := start.Add(10 * time.Minute); p.Expires.Before(want.Add(-time.Second)) || p.Expires.After(want.Add(time.Second)) {
			t.Errorf("Expires = %v, want about %v", p.Expires, want)
		}
		raw, err := base64.StdEncoding.DecodeString(p.Fields["policy"])
		if err != nil {
			t.Fatal(err)
		}
		var policy struct {
			Expiration time.Time `json:"expiration"`
			Conditions []any     `json:"conditions"`
		}
		if err := json.Unmarshal(raw, &policy); err != nil {
			t.Fatal(err)
		}
		if !policy.Expiration.Equal(p.Expires) {
			t.Errorf("policy expiration %v, Expires %v", policy.Expiration, p.Expires)
		}
		for _, want := range []string{
			`["content-length-range",1,81198]`,
			`["starts-with","$Content-Type","image/"]`,
			`{"key":"originals/uploads/a.jpg"}`,
		} {
			if !strings.Contains(string(raw), want) {
				t.Errorf("policy %s lacks %s", raw, want)
			}
		}
		if b, err := json.Marshal(p); err != nil || !strings.Contains(string(b), `"expires_at":`) {
			t.Errorf("JSON %s, %v; want expires_at", b, err)
		}
	})

	tests := []struct {
		name        string
		key         string
		contentType string // "" sends no Content-Type field
		body        []byte
		tamper      func(fields map[string]string)
		ok          bool
	}{
		{"jpeg", "uploads/ok.jpg", "image/jpeg", jpeg, nil, true},
		{"other image type", "uploads/ok.webp", "image/webp", jpeg[:1000], nil, true},
		{"one byte", "uploads/one", "image/png", []byte{0x89}, nil, true},
		{"over maxBytes", "uploads/big.jpg", "image/jpeg", append(slices.Clone(jpeg), 0), nil, false},
		{"empty", "uploads/empty.jpg", "image/jpeg", []byte{}, nil, false},
		{"text/plain", "uploads/text.jpg", "text/plain", jpeg[:1000], nil, false},
		{"no Content-Type", "uploads/untyped.jpg", "", jpeg[:1000], nil, false},
		{"other key", "uploads/key.jpg", "image/jpeg", jpeg[:1000], func(f map[string]string) { f["key"] = "originals/uploads/elsewhere.jpg" }, false},
		{"tampered policy", "uploads/policy.jpg", "image/jpeg", jpeg[:1000], func(f map[string]string) {
			raw, _ := base64.StdEncoding.DecodeString(f["policy"])
			raw = bytes.Replace(raw, []byte(`"image/"`), []byte(`""`), 1)
			f["policy"] = base64.StdEncoding.EncodeToString(raw)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.PresignPost(ctx, tt.key, maxBytes, 10*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if tt.tamper != nil {
				tt.tamper(p.Fields)
			}
			status, body := postForm(t, p, tt.contentType, tt.body)
			if tt.ok != (status/100 == 2) {
				t.Fatalf("POST answered %d %s; want success %v", status, body, tt.ok)
			}
			if !tt.ok {
				if status/100 != 4 {
					t.Errorf("POST answered %d, want a 4xx", status)
				}
				for _, key := range []string{tt.key, "uploads/elsewhere.jpg"} {
					_, err := s.Stat(ctx, key)
					wantStatus(t, "Stat("+key+") after a refused POST", err, http.StatusNotFound, prism.CodeNotFound)
				}
				return
			}
			o, err := s.Open(ctx, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(o)
			o.Close()
			if err != nil || !bytes.Equal(got, tt.body) {
				t.Errorf("Open read %d bytes, %v; want the %d posted", len(got), err, len(tt.body))
			}
			if ct := o.Info().ContentType; ct != tt.contentType {
				t.Errorf("stored Content-Type %q, want %q", ct, tt.contentType)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		p, err := s.PresignPost(ctx, "uploads/late.jpg", maxBytes, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(p.Expires.Add(1100 * time.Millisecond)))
		status, body := postForm(t, p, "image/jpeg", jpeg)
		if status/100 != 4 {
			t.Errorf("POST after expiry answered %d %s, want a 4xx", status, body)
		}
		_, err = s.Stat(ctx, "uploads/late.jpg")
		wantStatus(t, "Stat after an expired POST", err, http.StatusNotFound, prism.CodeNotFound)
	})

	t.Run("bad arguments", func(t *testing.T) {
		for _, tt := range []struct {
			maxBytes int64
			expiry   time.Duration
		}{{0, time.Minute}, {-1, time.Minute}, {1000, 0}, {1000, -time.Second}} {
			if _, err := s.PresignPost(ctx, "a.jpg", tt.maxBytes, tt.expiry); err == nil {
				t.Errorf("PresignPost(%d, %v) succeeded, want an error", tt.maxBytes, tt.expiry)
			}
		}
	})
}

// TestS3PresignPostVirtualHost checks the URL without path-style addressing:
// the bucket moves into the host name.
func TestS3PresignPostVirtualHost(t *testing.T) {
	s, err := newS3(aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	}, S3Options{Bucket: "my-bucket", Prefix: "p"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.PresignPost(context.Background(), "a.jpg", 1000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if p.Fields["key"] != "p/a.jpg" {
		t.Errorf("Fields[key] = %q, want p/a.jpg", p.Fields["key"])
	}
	if !strings.HasPrefix(p.URL, "https://my-bucket.s3.") {
		t.Errorf("URL = %q, want the bucket in the host name", p.URL)
	}
}

// postForm posts a browser-style form: Fields, then Content-Type unless
// empty, then the file last.
func postForm(t *testing.T, p PresignedPost, contentType string, file []byte) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, k := range slices.Sorted(maps.Keys(p.Fields)) {
		if err := w.WriteField(k, p.Fields[k]); err != nil {
			t.Fatal(err)
		}
	}
	if contentType != "" {
		if err := w.WriteField("Content-Type", contentType); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := w.CreateFormFile("file", "upload")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(file)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Post(p.URL, w.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
