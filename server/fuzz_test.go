package server

import (
	"bytes"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/prism-image/prism"
)

// Any upload body is read within the limit or refused with a typed 4xx:
// the multipart and raw readers never panic.
func FuzzUploadBodies(f *testing.F) {
	f.Add([]byte("--X\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\na/b.jpg\r\n--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0data\r\n--X--\r\n"), "X")
	f.Add([]byte("--X\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--X--\r\n"), "X")
	f.Add([]byte("--X\r\n\r\n--X"), "X")
	f.Add([]byte("raw image bytes"), "")
	const limit = 4096
	s := New(Config{MaxUploadBytes: limit}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		c := s.echo.NewContext(httptest.NewRequest("POST", "/v1/images", bytes.NewReader(body)), httptest.NewRecorder())
		data, key, _, err := s.readMultipart(c, boundary)
		check(t, "multipart", data, err, limit)
		if len(key) > 1024+1 {
			t.Fatalf("a key of %d bytes was read", len(key))
		}
		c = s.echo.NewContext(httptest.NewRequest("PUT", "/v1/images/k", bytes.NewReader(body)), httptest.NewRecorder())
		data, err = s.readBody(c, limit)
		check(t, "raw", data, err, limit)
	})
}

func check(t *testing.T, what string, data []byte, err error, limit int) {
	t.Helper()
	if err != nil {
		if pe, ok := err.(*prism.Error); !ok || pe.Status < 400 || pe.Status > 499 {
			t.Fatalf("%s: %T %v, want a *prism.Error with a 4xx status", what, err, err)
		}
		return
	}
	if len(data) > limit {
		t.Fatalf("%s: read %d bytes, over the limit of %d", what, len(data), limit)
	}
}
