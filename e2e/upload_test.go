package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buckket/go-blurhash"

	"github.com/prism-image/prism/internal/testutil"
)

// metadata is the upload API's JSON, spelt out here rather than decoded into
// prism.Metadata, so that a renamed field or tag shows as a broken API.
type metadata struct {
	Key           string    `json:"key"`
	URL           string    `json:"url"`
	Width         int       `json:"width"`
	Height        int       `json:"height"`
	Format        string    `json:"format"`
	ContentType   string    `json:"content_type"`
	Bytes         int64     `json:"bytes"`
	ETag          string    `json:"etag"`
	LastModified  time.Time `json:"last_modified"`
	Orientation   int       `json:"orientation"`
	Frames        int       `json:"frames"`
	HasAlpha      bool      `json:"has_alpha"`
	ColorSpace    string    `json:"color_space"`
	DominantColor string    `json:"dominant_color"`
	BlurHash      string    `json:"blurhash"`
}

func image(t *testing.T, name string) []byte { return testutil.ReadTestImage(t, name) }

// send makes a request with a body and the API key (unless auth is "").
func send(t *testing.T, method, u, auth, contentType string, body []byte, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode >= 500 && res.StatusCode != http.StatusNotImplemented {
		t.Fatalf("%s %s: %d %s", method, u, res.StatusCode, b)
	}
	return response{res, b}
}

// multipartBody builds a form with a file field (and a key field unless "").
func multipartBody(t *testing.T, filename string, data []byte, key string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if key != "" {
		_ = w.WriteField("key", key)
	}
	fw, err := w.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(data)
	_ = w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

func decodeMeta(t *testing.T, res response) metadata {
	t.Helper()
	var m metadata
	if err := json.Unmarshal(res.body, &m); err != nil {
		t.Fatalf("metadata %q: %v", res.body, err)
	}
	return m
}

func TestUploadLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		key := "life/" + b.name + "/flowers.jpeg"
		body, ct := multipartBody(t, "flowers.jpeg", image(t, "flowers.jpeg"), key)
		res := send(t, "POST", b.proc.URL+"/v1/images", apiKey, ct, body)
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("upload: %d %s", res.StatusCode, res.body)
		}
		m := decodeMeta(t, res)
		want := metadata{Key: key, URL: b.proc.URL + "/" + key, Width: 1920, Height: 1080, Format: "jpeg",
			ContentType: "image/jpeg", Bytes: int64(len(image(t, "flowers.jpeg"))), Orientation: 1, Frames: 1, ColorSpace: "srgb"}
		checkMeta(t, m, want)
		if res.Header.Get("Location") != m.URL {
			t.Errorf("Location %q, want %q", res.Header.Get("Location"), m.URL)
		}
		// A POST answers 201 even over an existing key; a PUT tells 200.
		repost := send(t, "POST", b.proc.URL+"/v1/images", apiKey, ct, body)
		if repost.StatusCode != http.StatusCreated {
			t.Fatalf("second POST to the key: %d %s", repost.StatusCode, repost.body)
		}
		m = decodeMeta(t, repost) // the same bytes, stored anew

		original := get(t, m.URL)
		if !bytes.Equal(original.body, image(t, "flowers.jpeg")) || original.Header.Get("ETag") != m.ETag {
			t.Errorf("original: %d bytes, ETag %s; metadata ETag %s", len(original.body), original.Header.Get("ETag"), m.ETag)
		}
		small := get(t, m.URL+"?w=100")
		if d := testutil.DecodeImage(t, small.body); d.Width != 100 || d.Height != 56 {
			t.Errorf("variant %dx%d, want 100x56", d.Width, d.Height)
		}
		if info := get(t, b.proc.URL+"/v1/images/"+key); info.StatusCode != 200 || decodeMeta(t, info) != m {
			t.Errorf("metadata read back: %d %s", info.StatusCode, info.body)
		}

		// Replace: a new ETag, and the old variant is gone.
		res = send(t, "PUT", b.proc.URL+"/v1/images/"+key, apiKey, "image/jpeg", image(t, "concert.jpg"))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("replace: %d %s", res.StatusCode, res.body)
		}
		replaced := decodeMeta(t, res)
		if replaced.ETag == m.ETag || replaced.Width != 400 || replaced.Height != 267 {
			t.Errorf("after replace: %+v", replaced)
		}
		again := get(t, m.URL+"?w=100", "If-None-Match", small.Header.Get("ETag"))
		if again.StatusCode != http.StatusOK || again.Header.Get("ETag") == small.Header.Get("ETag") {
			t.Fatalf("old variant still valid after replace: %d", again.StatusCode)
		}
		if d := testutil.DecodeImage(t, again.body); d.Width != 100 || d.Height != 67 {
			t.Errorf("variant after replace %dx%d, want the new image's 100x67", d.Width, d.Height)
		}
		if info := decodeMeta(t, get(t, b.proc.URL+"/v1/images/"+key)); info.ETag != replaced.ETag {
			t.Errorf("stale metadata after replace: %+v", info)
		}

		// Delete, then everything is 404.
		if res := send(t, "DELETE", b.proc.URL+"/v1/images/"+key, apiKey, "", nil); res.StatusCode != http.StatusNoContent {
			t.Fatalf("delete: %d %s", res.StatusCode, res.body)
		}
		for _, u := range []string{m.URL, m.URL + "?w=100", b.proc.URL + "/v1/images/" + key} {
			if res := get(t, u); res.StatusCode != http.StatusNotFound {
				t.Errorf("%s after delete: %d", u, res.StatusCode)
			}
		}
		if res := send(t, "DELETE", b.proc.URL+"/v1/images/"+key, apiKey, "", nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("second delete: %d", res.StatusCode)
		}
		// A key remembered as missing is served as soon as it is uploaded.
		if res := send(t, "PUT", b.proc.URL+"/v1/images/"+key, apiKey, "image/png", image(t, "with-alpha.png")); res.StatusCode != http.StatusCreated {
			t.Fatalf("re-upload: %d %s", res.StatusCode, res.body)
		}
		if d := testutil.DecodeImage(t, get(t, m.URL+"?w=64").body); d.Format != "png" || d.Width != 64 {
			t.Errorf("re-uploaded key serves %s %dx%d", d.Format, d.Width, d.Height)
		}
	})
}

func checkMeta(t *testing.T, got, want metadata) {
	t.Helper()
	if got.Key != want.Key || got.URL != want.URL || got.Width != want.Width || got.Height != want.Height ||
		got.Format != want.Format || got.ContentType != want.ContentType || got.Bytes != want.Bytes ||
		got.Orientation != want.Orientation || got.Frames != want.Frames || got.HasAlpha != want.HasAlpha ||
		got.ColorSpace != want.ColorSpace {
		t.Errorf("metadata\n got %+v\nwant %+v", got, want)
	}
	if !strings.HasPrefix(got.ETag, `"`) || got.LastModified.IsZero() || time.Since(got.LastModified) > time.Hour {
		t.Errorf("ETag %q, last_modified %v", got.ETag, got.LastModified)
	}
	if !regexp.MustCompile(`^#[0-9a-f]{6}$`).MatchString(got.DominantColor) {
		t.Errorf("dominant_color %q", got.DominantColor)
	}
	if x, y, err := blurhash.Components(got.BlurHash); err != nil || x != 4 || y != 3 {
		t.Errorf("blurhash %q: %v", got.BlurHash, err)
	}
}

func TestUploadMetadataFields(t *testing.T) {
	b := backends[0]
	tests := []struct {
		file string
		want metadata
	}{
		{"Landscape_6.jpg", metadata{Width: 600, Height: 450, Format: "jpeg", ContentType: "image/jpeg", Orientation: 6, Frames: 1, ColorSpace: "srgb"}},
		{"animated-loop-3.gif", metadata{Width: 370, Height: 285, Format: "gif", ContentType: "image/gif", Orientation: 1, Frames: 10, HasAlpha: true, ColorSpace: "srgb"}},
		{"with-alpha.png", metadata{Width: 256, Height: 192, Format: "png", ContentType: "image/png", Orientation: 1, Frames: 1, HasAlpha: true, ColorSpace: "srgb"}},
		{"Channel_digital_image_CMYK_color.jpg", metadata{Width: 500, Height: 333, Format: "jpeg", ContentType: "image/jpeg", Orientation: 1, Frames: 1, ColorSpace: "cmyk"}},
		{"320x240.heic", metadata{Width: 320, Height: 240, Format: "heic", ContentType: "image/heic", Orientation: 1, Frames: 1, ColorSpace: "srgb"}},
		{"check.svg", metadata{Width: 100, Height: 100, Format: "svg", ContentType: "image/svg+xml", Orientation: 1, Frames: 1, HasAlpha: true, ColorSpace: "srgb"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			key := "fields/" + tt.file
			res := send(t, "PUT", b.proc.URL+"/v1/images/"+key, apiKey, "application/octet-stream", image(t, tt.file))
			if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
				t.Fatalf("%d %s", res.StatusCode, res.body)
			}
			tt.want.Key, tt.want.URL, tt.want.Bytes = key, b.proc.URL+"/"+key, int64(len(image(t, tt.file)))
			checkMeta(t, decodeMeta(t, res), tt.want)
		})
	}
}

func TestUploadGeneratedKeys(t *testing.T) {
	b := backends[0]
	prefix := `^\d{4}/\d{2}/[0-9a-f]{12}-`
	tests := []struct {
		name     string
		filename string
		file     string
		raw      bool
		want     string
	}{
		{"multipart", "Holiday Photo (1).JPG", "concert.jpg", false, prefix + `holiday-photo-1\.jpg$`},
		{"wrong extension", "picture.jpg", "with-alpha.png", false, prefix + `picture\.png$`},
		{"path and unicode", `C:\Users\me\Été à Paris.jpeg`, "320x240.jpg", false, prefix + `t-paris\.jpg$`},
		{"raw with filename", "Scan.TIF", "G31D.TIF", true, prefix + `scan\.tiff$`},
		{"raw without name", "", "4.webp", true, prefix + `image\.webp$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res response
			if tt.raw {
				u := b.proc.URL + "/v1/images"
				if tt.filename != "" {
					u += "?filename=" + url.QueryEscape(tt.filename)
				}
				res = send(t, "POST", u, apiKey, "image/anything", image(t, tt.file))
			} else {
				body, ct := multipartBody(t, tt.filename, image(t, tt.file), "")
				res = send(t, "POST", b.proc.URL+"/v1/images", apiKey, ct, body)
			}
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("%d %s", res.StatusCode, res.body)
			}
			m := decodeMeta(t, res)
			if !regexp.MustCompile(tt.want).MatchString(m.Key) || !strings.HasPrefix(m.Key, time.Now().UTC().Format("2006/01/")) {
				t.Errorf("key %q, want %s", m.Key, tt.want)
			}
			if got := get(t, m.URL); !bytes.Equal(got.body, image(t, tt.file)) {
				t.Errorf("%s does not serve the upload", m.URL)
			}
		})
	}
}

func TestUploadRejections(t *testing.T) {
	small := startServer(t, "PRISM_STORAGE=file://"+fileRoot, "PRISM_API_KEYS=k1,"+apiKey+",k3", "PRISM_MAX_UPLOAD_BYTES=100000")
	keyless := startServer(t, "PRISM_STORAGE=file://"+fileRoot)
	existing := "reject/existing.jpg"
	if res := send(t, "PUT", small.URL+"/v1/images/"+existing, apiKey, "image/jpeg", image(t, "320x240.jpg")); res.StatusCode/100 != 2 {
		t.Fatalf("setup: %d %s", res.StatusCode, res.body)
	}
	big := image(t, "2569067123_aca715a2ee_o.jpg") // 829 kB
	bigForm, bigCT := multipartBody(t, "big.jpg", big, "reject/big-form.jpg")
	bmpForm, bmpCT := multipartBody(t, "a.bmp", image(t, "320x240.bmp"), "reject/bmp.jpg")
	noFile := []byte("--X\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nreject/nofile.jpg\r\n--X--\r\n")

	tests := []struct {
		name         string
		server       *testutil.Process
		method, path string
		auth, ct     string
		body         []byte
		header       []string
		status       int
		code         string
		key          string // must not exist afterwards ("" = none to check)
	}{
		{"no key", small, "PUT", "/v1/images/reject/a.jpg", "", "image/jpeg", image(t, "concert.jpg"), nil, 401, "unauthorized", "reject/a.jpg"},
		{"wrong key", small, "PUT", "/v1/images/reject/a.jpg", "nope", "image/jpeg", image(t, "concert.jpg"), nil, 401, "unauthorized", "reject/a.jpg"},
		{"prefix of a key", small, "PUT", "/v1/images/reject/a.jpg", apiKey[:10], "image/jpeg", image(t, "concert.jpg"), nil, 401, "unauthorized", "reject/a.jpg"},
		{"no keys configured", keyless, "PUT", "/v1/images/reject/a.jpg", apiKey, "image/jpeg", image(t, "concert.jpg"), nil, 403, "forbidden", "reject/a.jpg"},
		{"delete without key", small, "DELETE", "/v1/images/" + existing, "", "", nil, nil, 401, "unauthorized", ""},
		{"presign without key", small, "POST", "/v1/uploads", "", "application/json", []byte(`{}`), nil, 401, "unauthorized", ""},
		{"if-none-match", small, "PUT", "/v1/images/" + existing, apiKey, "image/jpeg", image(t, "concert.jpg"), []string{"If-None-Match", "*"}, 412, "precondition_failed", ""},
		{"too large raw", small, "PUT", "/v1/images/reject/big.jpg", apiKey, "image/jpeg", big, nil, 413, "payload_too_large", "reject/big.jpg"},
		{"too large multipart", small, "POST", "/v1/images", apiKey, bigCT, bigForm, nil, 413, "payload_too_large", "reject/big-form.jpg"},
		{"not an image", small, "PUT", "/v1/images/reject/text.jpg", apiKey, "image/jpeg", []byte("hello, world"), nil, 415, "unsupported_media_type", "reject/text.jpg"},
		{"text content type", small, "POST", "/v1/images?key=reject/t.jpg", apiKey, "text/plain", image(t, "concert.jpg"), nil, 415, "unsupported_media_type", "reject/t.jpg"},
		{"bmp is not accepted", startServerOnce(t, "default"), "POST", "/v1/images", apiKey, bmpCT, bmpForm, nil, 415, "unsupported_media_type", "reject/bmp.jpg"},
		{"truncated jpeg", small, "PUT", "/v1/images/reject/trunc.jpg", apiKey, "image/jpeg", image(t, "truncated.jpg"), nil, 415, "undecodable_image", "reject/trunc.jpg"},
		{"truncated png", small, "PUT", "/v1/images/reject/trunc.png", apiKey, "image/png", image(t, "truncated.png"), nil, 415, "undecodable_image", "reject/trunc.png"},
		{"corrupt header", small, "PUT", "/v1/images/reject/corrupt.jpg", apiKey, "image/jpeg", image(t, "corrupt-header.jpg"), nil, 415, "undecodable_image", "reject/corrupt.jpg"},
		{"giant", startServerOnce(t, "default"), "PUT", "/v1/images/reject/giant.jpg", apiKey, "image/jpeg", image(t, "giant-image.jpg"), nil, 422, "source_too_large", "reject/giant.jpg"},
		{"dotdot key", small, "PUT", "/v1/images/reject/%2e%2e/%2e%2e/x.jpg", apiKey, "image/jpeg", image(t, "concert.jpg"), nil, 400, "invalid_key", ""},
		{"reserved v1", small, "POST", "/v1/images?key=v1/images/x.jpg", apiKey, "image/jpeg", image(t, "concert.jpg"), nil, 400, "invalid_key", ""},
		{"reserved healthz", small, "PUT", "/v1/images/healthz", apiKey, "image/jpeg", image(t, "concert.jpg"), nil, 400, "invalid_key", ""},
		{"reserved .prism", small, "PUT", "/v1/images/.prism/tmp/x", apiKey, "image/jpeg", image(t, "concert.jpg"), nil, 400, "invalid_key", ""},
		{"control character", small, "PUT", "/v1/images/reject/a%01b.jpg", apiKey, "image/jpeg", image(t, "concert.jpg"), nil, 400, "invalid_key", ""},
		{"key too long", small, "PUT", "/v1/images/" + strings.Repeat("k", 1025), apiKey, "image/jpeg", image(t, "concert.jpg"), nil, 400, "invalid_key", ""},
		{"multipart without file", small, "POST", "/v1/images", apiKey, "multipart/form-data; boundary=X", noFile, nil, 400, "invalid_body", "reject/nofile.jpg"},
		{"presign on files", small, "POST", "/v1/uploads", apiKey, "application/json", []byte(`{"filename":"x.jpg"}`), nil, 501, "not_implemented", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := send(t, tt.method, tt.server.URL+tt.path, tt.auth, tt.ct, tt.body, tt.header...)
			var e errorJSON
			if res.StatusCode != tt.status || json.Unmarshal(res.body, &e) != nil || e.Error.Code != tt.code || e.Error.Status != tt.status {
				t.Fatalf("%d %s, want %d %s", res.StatusCode, res.body, tt.status, tt.code)
			}
			if tt.status == 401 && res.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.key != "" {
				if res := get(t, tt.server.URL+"/"+tt.key); res.StatusCode != http.StatusNotFound {
					t.Errorf("a refused upload left %s behind: %d", tt.key, res.StatusCode)
				}
			}
		})
	}
	// The existing image is intact after every refusal aimed at it.
	if res := get(t, small.URL+"/"+existing); !bytes.Equal(res.body, image(t, "320x240.jpg")) {
		t.Error("a refused replace changed the stored image")
	}
}

var (
	onceServers   = map[string]*testutil.Process{}
	onceServersMu sync.Mutex
)

// startServerOnce starts a default file-backed server per name for the
// whole run; its cleanup is the test binary's exit.
func startServerOnce(t *testing.T, name string) *testutil.Process {
	onceServersMu.Lock()
	defer onceServersMu.Unlock()
	if p := onceServers[name]; p != nil {
		return p
	}
	p, err := testutil.StartServer(serverBin, "PRISM_STORAGE=file://"+fileRoot, "PRISM_API_KEYS="+apiKey)
	if err != nil {
		t.Fatal(err)
	}
	onceServers[name] = p
	return p
}

// An upload cut off half-way leaves nothing at its key, and no temporary
// file behind.
func TestInterruptedUpload(t *testing.T) {
	b := backends[0]
	data := image(t, "2569067123_aca715a2ee_o.jpg")
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.proc.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /v1/images/cut/off.jpg HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", apiKey, len(data))
	_, _ = conn.Write(data[:len(data)/2])
	time.Sleep(200 * time.Millisecond)
	conn.Close()
	waitForLog(t, b.proc, func(e map[string]any) bool { return e["key"] == "cut/off.jpg" })
	if res := get(t, b.proc.URL+"/cut/off.jpg"); res.StatusCode != http.StatusNotFound {
		t.Errorf("interrupted upload visible: %d", res.StatusCode)
	}
	tmp, _ := os.ReadDir(filepath.Join(fileRoot, ".prism", "tmp"))
	if len(tmp) != 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}
}

// Concurrent uploads to one key: the last write wins whole, and the cached
// metadata describes what is stored.
func TestConcurrentUploads(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		key := "race/" + b.name + ".jpg"
		payloads := [][]byte{image(t, "concert.jpg"), image(t, "flowers.jpeg"), image(t, "320x240.jpg"), image(t, "Landscape_1.jpg")}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := send(t, "PUT", b.proc.URL+"/v1/images/"+key, apiKey, "image/jpeg", payloads[i%len(payloads)])
				if res.StatusCode/100 != 2 {
					t.Errorf("upload %d: %d %s", i, res.StatusCode, res.body)
				}
			}()
		}
		wg.Wait()
		stored := get(t, b.proc.URL+"/"+key)
		which := -1
		for i, p := range payloads {
			if bytes.Equal(stored.body, p) {
				which = i
			}
		}
		if which < 0 {
			t.Fatalf("stored object (%d bytes) is none of the uploads", len(stored.body))
		}
		m := decodeMeta(t, get(t, b.proc.URL+"/v1/images/"+key))
		d := testutil.DecodeImage(t, payloads[which])
		if m.ETag != stored.Header.Get("ETag") || m.Bytes != int64(len(payloads[which])) || m.Width != d.Width {
			t.Errorf("metadata %+v does not describe the stored upload (%d bytes, ETag %s)", m, len(stored.body), stored.Header.Get("ETag"))
		}
	})
}

// A browser uploads straight to S3 with the form Prism signs, and the URL
// API serves the result.
func TestPresignedUpload(t *testing.T) {
	b := backends[1]
	res := send(t, "POST", b.proc.URL+"/v1/uploads", apiKey, "application/json", []byte(`{"filename":"Direct Upload.jpg"}`))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("presign: %d %s", res.StatusCode, res.body)
	}
	var post struct {
		URL     string            `json:"url"`
		Fields  map[string]string `json:"fields"`
		Key     string            `json:"key"`
		Expires time.Time         `json:"expires_at"`
	}
	if err := json.Unmarshal(res.body, &post); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\d{4}/\d{2}/[0-9a-f]{12}-direct-upload\.jpg$`).MatchString(post.Key) || time.Until(post.Expires) < 10*time.Minute {
		t.Errorf("form for key %q expiring %v", post.Key, post.Expires)
	}
	var form bytes.Buffer
	w := multipart.NewWriter(&form)
	for k, v := range post.Fields {
		_ = w.WriteField(k, v)
	}
	_ = w.WriteField("Content-Type", "image/jpeg")
	fw, _ := w.CreateFormFile("file", "direct.jpg")
	_, _ = fw.Write(image(t, "320x240.jpg"))
	_ = w.Close()
	up, err := http.Post(post.URL, w.FormDataContentType(), &form)
	if err != nil {
		t.Fatal(err)
	}
	upBody, _ := io.ReadAll(up.Body)
	up.Body.Close()
	if up.StatusCode/100 != 2 {
		t.Fatalf("MinIO refused the presigned POST: %d %s", up.StatusCode, upBody)
	}
	if d := testutil.DecodeImage(t, get(t, b.proc.URL+"/"+post.Key+"?w=160").body); d.Width != 160 || d.Height != 120 {
		t.Errorf("served %dx%d, want 160x120", d.Width, d.Height)
	}
	m := decodeMeta(t, get(t, b.proc.URL+"/v1/images/"+post.Key))
	if m.Width != 320 || m.Height != 240 || m.Format != "jpeg" {
		t.Errorf("metadata of a direct upload: %+v", m)
	}
}

// Redis killed mid-test: requests still succeed; restarted: it is used again.
func TestRedisOutage(t *testing.T) {
	r := testutil.StartRedis(t)
	p := startServer(t, "PRISM_STORAGE=file://"+fileRoot, "PRISM_API_KEYS="+apiKey, "PRISM_REDIS_URL="+r.URL())
	raw := r.Client()
	upload := func(key string) {
		t.Helper()
		if res := send(t, "PUT", p.URL+"/v1/images/"+key, apiKey, "image/jpeg", image(t, "concert.jpg")); res.StatusCode/100 != 2 {
			t.Fatalf("upload %s: %d %s", key, res.StatusCode, res.body)
		}
	}
	upload("outage/before.jpg")
	if n, err := raw.Exists(t.Context(), "prism:meta:outage/before.jpg").Result(); err != nil || n != 1 {
		t.Fatalf("metadata not in Redis after upload: %d %v", n, err)
	}
	first := get(t, p.URL+"/outage/before.jpg?w=50")

	r.Kill()
	upload("outage/during.jpg")
	for _, u := range []string{"/outage/before.jpg?w=50", "/outage/during.jpg?w=60", "/outage/before.jpg", "/v1/images/outage/during.jpg", "/outage/missing.jpg"} {
		res := get(t, p.URL+u)
		if res.StatusCode != http.StatusOK && !(u == "/outage/missing.jpg" && res.StatusCode == http.StatusNotFound) {
			t.Errorf("%s with Redis down: %d %s", u, res.StatusCode, res.body)
		}
	}
	if nm := get(t, p.URL+"/outage/before.jpg?w=50", "If-None-Match", first.Header.Get("ETag")); nm.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with Redis down: %d", nm.StatusCode)
	}
	if n := scrape(t, p).Total("prism_redis_errors_total", nil); n < 1 {
		t.Errorf("no Redis failures counted: prism_redis_errors_total adds up to %v", n)
	}
	waitForLog(t, p, func(e map[string]any) bool { return e["level"] == "WARN" && strings.Contains(fmt.Sprint(e), "redis") })

	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	raw = r.Client()
	deadline := time.Now().Add(10 * time.Second)
	for {
		upload("outage/after.jpg")
		if n, _ := raw.Exists(t.Context(), "prism:meta:outage/after.jpg").Result(); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Redis is not used again after it came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Served from the cache: a revalidation needs no storage.
	after := get(t, p.URL+"/outage/after.jpg?w=50")
	get(t, p.URL+"/outage/after.jpg?w=50", "If-None-Match", after.Header.Get("ETag"))
	waitForLog(t, p, func(e map[string]any) bool {
		return e["key"] == "outage/after.jpg" && e["status"] == float64(304) && e["cache"] == "hit-metadata"
	})
}

// Misses are remembered, so a hot missing key does not reach storage each
// time; the first upload of the key ends that at once.
func TestNegativeCache(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		key := "negative/" + b.name + ".jpg"
		for range 3 {
			if res := get(t, b.proc.URL+"/"+key+"?w=10"); res.StatusCode != http.StatusNotFound {
				t.Fatalf("missing key: %d", res.StatusCode)
			}
		}
		waitForLog(t, b.proc, func(e map[string]any) bool { return e["key"] == key && e["cache"] == "hit-missing" })
		if res := send(t, "PUT", b.proc.URL+"/v1/images/"+key, apiKey, "image/jpeg", image(t, "concert.jpg")); res.StatusCode != http.StatusCreated {
			t.Fatalf("upload: %d %s", res.StatusCode, res.body)
		}
		if res := get(t, b.proc.URL+"/"+key+"?w=10"); res.StatusCode != http.StatusOK {
			t.Errorf("after upload: %d", res.StatusCode)
		}
	})
}

func TestOpenAPIDocument(t *testing.T) {
	res := get(t, backends[0].proc.URL+"/v1/openapi.json")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	repo, err := os.ReadFile(filepath.Join(testutil.Root(), "server", "openapi.json"))
	if err != nil || !bytes.Equal(repo, res.body) {
		t.Errorf("served document differs from server/openapi.json (%v)", err)
	}
}
