package awslambda

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/prism-image/prism/internal/testutil"
)

// Any payload is answered or refused: the HTTP and S3 event decoders never
// panic, and whatever they answer is JSON.
func FuzzInvoke(f *testing.F) {
	vars := map[string]string{"METHOD": "GET", "PATH": "/a%20b/c.jpg", "QUERY": "w=100&fm=webp", "PROXY": "a%20b/c.jpg", "STAGE": "prod", "BUCKET": "originals", "KEY": "prefix/a+b%2Bc.jpg"}
	for _, name := range []string{"function-url.json", "apigw-v2.json", "alb.json", "alb-multi-value.json", "s3-object-created.json", "s3-object-removed.json"} {
		payload, err := json.Marshal(testutil.LambdaEvent(f, name, vars))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(payload)
	}
	f.Add([]byte(`{"version":"2.0","requestContext":{"http":{}},"rawPath":"%zz","body":"!!","isBase64Encoded":true}`))
	f.Add([]byte(`{"Records":[{"eventSource":"aws:s3","s3":{"object":{"key":"%"}}}]}`))
	h := New(Config{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(r.URL.Path)) }),
		Originals: &fakeOriginals{store: &fakeStorage{}},
		Storage:   "s3://originals/prefix", DerivedURL: "s3://originals/derived",
	})
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := h.Invoke(context.Background(), payload)
		if err == nil && !json.Valid(out) {
			t.Fatalf("%q: answered %q, not JSON", payload, out)
		}
	})
}
