package e2e

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prism-image/prism/internal/testutil"
)

// Hostile input at the HTTP edge: bytes and headers an attacker chooses.

// An original is served as what its bytes are: a file that is both SVG and
// JavaScript, uploaded under a .js key, is an SVG and never a script.
func TestPolyglotIsNeverAScript(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		key := "gadget/" + b.name + "/poly.js"
		poly := testutil.PolyglotSVG()
		if res := send(t, "PUT", b.proc.URL+"/v1/images/"+key, apiKey, "application/javascript", poly); res.StatusCode != http.StatusCreated {
			t.Fatalf("upload: %d %s", res.StatusCode, res.body)
		}
		res := get(t, b.proc.URL+"/"+key)
		if res.StatusCode != http.StatusOK || !bytes.Equal(res.body, poly) {
			t.Fatalf("GET: %d, %d bytes", res.StatusCode, len(res.body))
		}
		for header, want := range map[string]string{
			"Content-Type": "image/svg+xml", "Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff",
		} {
			if got := res.Header.Get(header); got != want {
				t.Errorf("%s: %q, want %q", header, got, want)
			}
		}
	})
}

// Bytes that are no image, dropped into storage behind Prism's back, are a
// download whatever their name.
func TestNonImagesAreDownloads(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, "PRISM_STORAGE=file://"+dir)
	files := map[string][]byte{
		"page.html":   []byte("<html><script>alert(document.domain)</script></html>"),
		"script.js":   []byte("alert(document.domain)"),
		"fake.jpg":    []byte("<html><script>alert(1)</script></html>"),
		"notes.txt":   []byte("hello"),
		"nothing.png": {},
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		res := get(t, p.URL+"/"+name)
		if res.StatusCode != http.StatusOK || !bytes.Equal(res.body, data) {
			t.Errorf("%s: %d, %d bytes", name, res.StatusCode, len(res.body))
		}
		if ct, cd, csp := res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"), res.Header.Get("Content-Security-Policy"); ct != "application/octet-stream" || cd != "attachment" || csp != "sandbox" {
			t.Errorf("%s: Content-Type %q, Content-Disposition %q, CSP %q", name, ct, cd, csp)
		}
	}
}

// Range requests are tidied before they reach storage: overlapping and
// adjacent ranges merge, and a header asking for too many gets the whole
// object with a 200.
func TestRangeAbuse(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		u := b.proc.URL + "/img/pexels-magda-ehlers-5141x3434.jpg"
		photo := image(t, "pexels-magda-ehlers-5141x3434.jpg")
		size := len(photo)
		pid := b.proc.Cmd.Process.Pid

		testutil.ResetPeakRSS(t, pid)
		before := testutil.PeakRSS(t, pid)
		bomb := "bytes=" + strings.Repeat("0-0,", 19999) + "0-0" // 80 KB
		res := get(t, u, "Range", bomb)
		if res.StatusCode != http.StatusOK || !bytes.Equal(res.body, photo) {
			t.Errorf("the range bomb: %d, %d bytes; want the whole object with a 200", res.StatusCode, len(res.body))
		}
		if grew := testutil.PeakRSS(t, pid) - before; grew > 32<<20 {
			t.Errorf("the range bomb grew the peak RSS by %d MB", grew>>20)
		}

		res = get(t, u, "Range", "bytes=0-9,5-19,20-29")
		if res.StatusCode != http.StatusPartialContent || res.Header.Get("Content-Range") != "bytes 0-29/"+strconv.Itoa(size) || !bytes.Equal(res.body, photo[:30]) {
			t.Errorf("merged ranges: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Range"), len(res.body))
		}

		res = get(t, u, "Range", "bytes=100-109,0-9,0-4")
		mt, params, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
		if res.StatusCode != http.StatusPartialContent || mt != "multipart/byteranges" {
			t.Fatalf("two ranges: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
		mr := multipart.NewReader(bytes.NewReader(res.body), params["boundary"])
		var parts []string
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(part)
			parts = append(parts, part.Header.Get("Content-Range"))
			if want := "bytes 0-9/" + strconv.Itoa(size); part.Header.Get("Content-Range") == want && !bytes.Equal(data, photo[:10]) {
				t.Errorf("part %s holds other bytes", want)
			}
		}
		if want := []string{"bytes 0-9/" + strconv.Itoa(size), "bytes 100-109/" + strconv.Itoa(size)}; strings.Join(parts, ";") != strings.Join(want, ";") {
			t.Errorf("parts %q, want %q", parts, want)
		}
	})
}

// A JPEG whose header claims 7000×7000 over 16×16 of data is refused at
// upload and stored nowhere; one that reached storage another way is a 415
// to transform.
func TestLyingJPEG(t *testing.T) {
	lying := testutil.LyingJPEG(t, 7000)
	eachBackend(t, func(t *testing.T, b backend) {
		key := "lying/" + b.name + "/claims-7000.jpg"
		res := send(t, "PUT", b.proc.URL+"/v1/images/"+key, apiKey, "image/jpeg", lying)
		checkAnswer(t, res, "PUT "+key, want{status: http.StatusUnsupportedMediaType, code: "undecodable_image"})
		checkAnswer(t, get(t, b.proc.URL+"/"+key), "GET "+key, want{status: http.StatusNotFound, code: "not_found"})
	})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lying.jpg"), lying, 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServer(t, "PRISM_STORAGE=file://"+dir)
	for _, q := range []string{"w=100", "w=400&fm=webp"} {
		checkAnswer(t, get(t, p.URL+"/lying.jpg?"+q), q, want{status: http.StatusUnsupportedMediaType, code: "undecodable_image"})
	}
	checkAnswer(t, get(t, p.URL+"/v1/images/lying.jpg"), "metadata", want{status: http.StatusUnsupportedMediaType, code: "undecodable_image"})
}

// Slow clients are cut off: one that trickles its body at the read
// timeout, one that never reads its response at the write timeout. Neither
// stores anything or holds the server.
func TestSlowClients(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("prism "), 8<<20) // 48 MB: far more than socket buffers hold
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServer(t, "PRISM_STORAGE=file://"+dir, "PRISM_API_KEYS="+apiKey,
		"PRISM_READ_TIMEOUT=1s", "PRISM_TIMEOUT=1s", "PRISM_WRITE_TIMEOUT=2s")
	addr := strings.TrimPrefix(p.URL, "http://")

	t.Run("trickled body", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		fmt.Fprintf(conn, "PUT /v1/images/slow.jpg HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n", addr, apiKey)
		closed := make(chan struct{})
		var answer bytes.Buffer
		go func() {
			defer close(closed)
			_, _ = io.Copy(&answer, conn) // whatever the server answers, until it hangs up
		}()
		for i := 0; i < 100; i++ {
			if _, err := conn.Write([]byte{0xff}); err != nil {
				break
			}
			select {
			case <-closed:
				i = 100
			case <-time.After(100 * time.Millisecond):
			}
		}
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("the server still reads a trickled body 5 s on")
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("cut off after %v, want about the 1 s read timeout", took)
		}
		if answer.Len() > 0 && !bytes.HasPrefix(answer.Bytes(), []byte("HTTP/1.1 4")) {
			t.Errorf("answered %.100q, want a 4xx or nothing", answer.Bytes())
		}
		checkAnswer(t, get(t, p.URL+"/slow.jpg"), "the trickled upload", want{status: http.StatusNotFound, code: "not_found"})
	})

	t.Run("response never read", func(t *testing.T) {
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /big.bin HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		time.Sleep(6 * time.Second) // past the 1 s of body, 1 s of work and 2 s of writing allowed, reading nothing
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _ := io.Copy(io.Discard, conn)
		if n >= int64(len(big)) {
			t.Errorf("read %d bytes: the server waited for a client that did not read", n)
		}
	})
}

// The hostile corpus in one place: key traversal in every encoding, signed
// URLs tampered with, header bombs. Every answer is a clean 4xx (or the
// image, where the attack changes nothing), nothing is stored, and the
// server's peak memory stays flat.
func TestHostileCorpus(t *testing.T) {
	const signingKey = "e2e-corpus-key"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cat.jpg"), image(t, "concert.jpg"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServer(t, "PRISM_STORAGE=file://"+dir, "PRISM_API_KEYS="+apiKey, "PRISM_SIGNING_KEY="+signingKey)
	pid := p.Cmd.Process.Pid
	signed, err := url.Parse(signCLI(t, signingKey, p.URL+"/cat.jpg?w=100&fm=webp"))
	if err != nil {
		t.Fatal(err)
	}
	sig := signed.Query().Get("s")
	testutil.ResetPeakRSS(t, pid)
	before := testutil.PeakRSS(t, pid)

	tests := []struct {
		name, method, path string
		header             []string
		status             int
		code               string
	}{
		{"dot segments", "GET", "/../../etc/passwd", nil, 400, "invalid_key"},
		{"encoded dots", "GET", "/%2e%2e/%2e%2e/etc/passwd", nil, 400, "invalid_key"},
		{"encoded dots, upper case", "GET", "/%2E%2E/%2E%2E/etc/passwd", nil, 400, "invalid_key"},
		{"encoded slashes", "GET", "/..%2f..%2fetc%2fpasswd", nil, 400, "invalid_key"},
		{"double encoded", "GET", "/%252e%252e/%252e%252e/etc/passwd", nil, 404, "not_found"}, // a key named "%2e%2e/…": no such image
		{"backslashes", "GET", "/..%5c..%5cetc%5cpasswd", nil, 400, "invalid_key"},
		{"overlong UTF-8 dots", "GET", "/%c0%ae%c0%ae/etc/passwd", nil, 400, "invalid_key"},
		{"NUL", "GET", "/cat.jpg%00.png", nil, 400, "invalid_key"},
		{"Prism's own folder", "GET", "/.prism/tmp/x", nil, 400, "invalid_key"},
		{"upload with dots", "PUT", "/v1/images/%2e%2e/%2e%2e/x.jpg", nil, 400, "invalid_key"},
		{"upload into Prism's folder", "PUT", "/v1/images/.PRISM/x.jpg", nil, 400, "invalid_key"},
		{"upload over a route", "PUT", "/v1/images/v1/images/x.jpg", nil, 400, "invalid_key"},
		{"signed", "GET", "/cat.jpg?w=100&fm=webp&s=" + sig, nil, 200, ""},
		{"signed, with a tracker", "GET", "/cat.jpg?w=100&fm=webp&utm_source=x&s=" + sig, nil, 200, ""},
		{"signed, width changed", "GET", "/cat.jpg?w=101&fm=webp&s=" + sig, nil, 403, "invalid_signature"},
		{"signed, parameter added", "GET", "/cat.jpg?w=100&fm=webp&q=10&s=" + sig, nil, 403, "invalid_signature"},
		{"signed, other key", "GET", "/dog.jpg?w=100&fm=webp&s=" + sig, nil, 403, "invalid_signature"},
		{"signature cut", "GET", "/cat.jpg?w=100&fm=webp&s=" + sig[:20], nil, 403, "invalid_signature"},
		{"unsigned", "GET", "/cat.jpg?w=100&fm=webp", nil, 403, "invalid_signature"},
		{"a 100 KB Accept", "GET", "/cat.jpg", []string{"Accept", strings.Repeat("image/avif;q=0.9,", 6000)}, 200, ""},
		{"a 2 MB header", "GET", "/cat.jpg", []string{"X-Bomb", strings.Repeat("a", 2<<20)}, 431, ""},
		{"an 80 KB Range", "GET", "/cat.jpg", []string{"Range", "bytes=" + strings.Repeat("0-0,", 20000) + "0-0"}, 200, ""},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, p.URL+tt.path, bytes.NewReader(image(t, "concert.jpg")))
		if err != nil {
			t.Fatal(err)
		}
		req.URL.RawPath = tt.path // as sent, not as Go would re-encode it
		req.Header.Set("Authorization", "Bearer "+apiKey)
		for i := 0; i+1 < len(tt.header); i += 2 {
			req.Header.Set(tt.header[i], tt.header[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := readAll(res)
		if res.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d: %.200s", tt.name, res.StatusCode, tt.status, body)
			continue
		}
		if tt.code != "" && !bytes.Contains(body, []byte(`"code":"`+tt.code+`"`)) {
			t.Errorf("%s: body %.200s, want code %s", tt.name, body, tt.code)
		}
	}
	if grew := testutil.PeakRSS(t, pid) - before; grew > 64<<20 {
		t.Errorf("the corpus grew the peak RSS by %d MB", grew>>20)
	}
	var stored []string
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			stored = append(stored, rel)
		}
		return nil
	})
	if len(stored) != 1 || stored[0] != "cat.jpg" {
		t.Errorf("storage holds %v after the corpus, want only cat.jpg", stored)
	}
}
