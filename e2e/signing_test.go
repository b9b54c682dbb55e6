package e2e

import (
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/prism-image/prism/internal/testutil"
)

// signCLI signs u with `server sign`, as an operator would.
func signCLI(t *testing.T, key, u string) string {
	t.Helper()
	cmd := exec.Command(serverBin, "sign", u)
	cmd.Env = append(cmd.Environ(), "PRISM_SIGNING_KEY="+key)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("server sign: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestSignedURLs(t *testing.T) {
	const key = "e2e-signing-key"
	p := startServer(t, "PRISM_STORAGE=file://"+fileRoot, "PRISM_SIGNING_KEY="+key)
	signed := signCLI(t, key, p.URL+"/img/flowers.jpeg?w=200&fm=webp")
	u, err := url.Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	sig := u.Query().Get("s")
	base := p.URL + "/img/flowers.jpeg"
	tests := []struct {
		name   string
		url    string
		status int
	}{
		{"signed", signed, http.StatusOK},
		{"reordered", base + "?fm=webp&s=" + sig + "&w=200", http.StatusOK},
		{"tracker added", signed + "&utm_source=mail", http.StatusOK},
		{"tampered", base + "?w=2000&fm=webp&s=" + sig, http.StatusForbidden},
		{"parameter added", signed + "&q=10", http.StatusForbidden},
		{"signed by another key", signCLI(t, "other-key", p.URL+"/img/flowers.jpeg?w=200&fm=webp"), http.StatusForbidden},
		{"missing", base + "?w=200&fm=webp", http.StatusForbidden},
		{"other image", p.URL + "/img/concert.jpg?w=200&fm=webp&s=" + sig, http.StatusForbidden},
		{"mark added", signed + "&mark=img/with-alpha.png", http.StatusForbidden},
		{"mark-alpha added to a signed mark", signCLI(t, key, base+"?w=200&mark=img/with-alpha.png") + "&mark-alpha=10", http.StatusForbidden},
		{"signed mark", signCLI(t, key, p.URL+"/img/flowers.jpeg?w=200&fm=webp&mark=img/with-alpha.png"), http.StatusOK},
		{"signed percent width", signCLI(t, key, p.URL+"/img/flowers.jpeg?w=10%25&fm=webp"), http.StatusOK},
		{"original needs no signature", base, http.StatusOK},
		{"trackers alone need none", base + "?utm_source=x", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, tt.url)
			if res.StatusCode != tt.status {
				t.Fatalf("%s: %d %s, want %d", tt.url, res.StatusCode, res.body, tt.status)
			}
			if tt.status == http.StatusForbidden && !strings.Contains(string(res.body), `"invalid_signature"`) {
				t.Errorf("403 body %s", res.body)
			}
			if tt.status == http.StatusOK && strings.Contains(tt.url, "w=10%25") {
				if d := testutil.DecodeImage(t, res.body); d.Width != 192 {
					t.Errorf("w=10%% of 1920 is %d wide", d.Width)
				}
			}
			if tt.status == http.StatusOK && strings.Contains(tt.url, "w=200") {
				if d := testutil.DecodeImage(t, res.body); d.Format != "webp" || d.Width != 200 {
					t.Errorf("got %s %d wide", d.Format, d.Width)
				}
			}
		})
	}
}

func TestHealthCommand(t *testing.T) {
	p := startServer(t, "PRISM_STORAGE=file://"+fileRoot)
	run := func(addr string) error {
		cmd := exec.Command(serverBin, "health")
		cmd.Env = append(cmd.Environ(), "PRISM_ADDR="+addr)
		return cmd.Run()
	}
	if err := run(strings.TrimPrefix(p.URL, "http://")); err != nil {
		t.Errorf("server health against a running server: %v", err)
	}
	if err := run("127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))); err == nil {
		t.Error("server health against nothing succeeded")
	}
}
