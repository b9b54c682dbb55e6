package testutil

import (
	"context"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestMinIO(t *testing.T) {
	m, stop, err := StartMinIOServer()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	m.Prefix = "p"
	m.Put(t, "a.txt", []byte("hello"), "text/plain")
	out, err := m.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &m.Bucket, Key: new("p/a.txt")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != "hello" || *out.ContentType != "text/plain" {
		t.Errorf("got %q as %s, want hello as text/plain", got, *out.ContentType)
	}

	if b := m.NewBucket(t); b == m.Bucket {
		t.Errorf("NewBucket returned the existing bucket %s", b)
	}
	env := m.Env()
	for _, kv := range []string{
		"AWS_ENDPOINT_URL_S3=" + m.Endpoint,
		"AWS_REGION=us-east-1",
		"PRISM_STORAGE=s3://" + m.Bucket + "/p",
		"PRISM_S3_PATH_STYLE=true",
	} {
		if !slices.Contains(env, kv) {
			t.Errorf("Env() = %q, lacks %s", env, kv)
		}
	}

	stop()
	if resp, err := http.Get(m.Endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Errorf("MinIO still answers after stop")
	}
}
