package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// OPTIONS, like any other method a path does not take, is a 405 that names
// the methods the path takes, matched on the path as sent.
func TestOptionsRefused(t *testing.T) {
	s := New(Config{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tests := []struct{ path, allow string }{
		{"/uploads/cat.jpg", "GET, HEAD"},
		{"/healthz", "GET, HEAD"},
		{"/metrics", "GET, HEAD"}, // no route of its own: a key like any other
		{"/v1/images", "POST"},
		{"/v1/images/blog/cat.jpg", "GET, PUT, DELETE"},
		{"/v1/uploads", "POST"},
		{"/v1/openapi.json", "GET"},
		{"/v1%2Fimages/x.jpg", "GET, HEAD"}, // served by /*, as a key
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodOptions, "PATCH"} {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(method, tt.path, nil))
			var body struct{ Error struct{ Code string } }
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != http.StatusMethodNotAllowed || body.Error.Code != "method_not_allowed" || w.Header().Get("Allow") != tt.allow {
				t.Errorf("%s %s: %d %s, Allow %q; want 405, Allow %q", method, tt.path, w.Code, w.Body, w.Header().Get("Allow"), tt.allow)
			}
		}
	}
}
