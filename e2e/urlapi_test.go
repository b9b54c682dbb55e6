package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prism-image/prism/internal/testutil"
)

const (
	chrome  = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
	firefox = "image/webp,*/*"
	legacy  = "image/png,image/*;q=0.8,*/*;q=0.5"
)

func TestTransforms(t *testing.T) {
	tests := []struct {
		path          string
		accept        string
		format        string
		width, height int
		frames        int
	}{
		{"/img/2569067123_aca715a2ee_o.jpg?w=300", "", "jpeg", 300, 245, 1},
		{"/" + deepKey + "?w=400&quality=80", "", "jpeg", 320, 240, 1},
		{"/" + deepKey + "?w=100&h=100", "", "jpeg", 100, 75, 1},
		{"/img/pexels-magda-ehlers-5141x3434.jpg?w=400&quality=80", "", "jpeg", 400, 267, 1},
		{"/img/flowers.jpeg?resize=800,600&crop_strategy=smart", "", "jpeg", 800, 600, 1},
		{"/img/flowers.jpeg?resize=400px,400px&gravity=north", "", "jpeg", 400, 400, 1},
		{"/img/concert.jpg?resize=800,800", "", "jpeg", 267, 267, 1},
		{"/img/flowers.jpeg?fit=300,300", "", "jpeg", 300, 169, 1},
		{"/img/flowers.jpeg?lb=300,300&bg=fff", "", "jpeg", 300, 300, 1},
		{"/img/flowers.jpeg?crop=10,10,50,50&w=200&h=200", "", "jpeg", 200, 200, 1},
		{"/img/flowers.jpeg?crop=0px,0px,100px,50px", "", "jpeg", 100, 50, 1},
		{"/img/flowers.jpeg?w=100&zoom=2", "", "jpeg", 200, 113, 1},
		{"/img/flowers.jpeg?w=100&dpr=3", "", "jpeg", 300, 169, 1},
		{"/img/flowers.jpeg?w=200&format=auto", chrome, "avif", 200, 113, 1},
		{"/img/flowers.jpeg?w=200&auto=format", firefox, "webp", 200, 113, 1},
		{"/img/flowers.jpeg?w=200&fm=auto", legacy, "jpeg", 200, 113, 1},
		{"/img/flowers.jpeg?w=200&webp=1", "", "webp", 200, 113, 1},
		{"/img/flowers.jpeg?w=200&fm=png", "", "png", 200, 113, 1},
		{"/img/Landscape_6.jpg?w=300", "", "jpeg", 300, 225, 1},
		{"/img/Portrait_2.jpg?h=200", "", "jpeg", 150, 200, 1},
		{"/img/Channel_digital_image_CMYK_color.jpg?w=250", "", "jpeg", 250, 167, 1},
		{"/img/with-alpha.png?w=128", "", "png", 128, 96, 1},
		{"/img/with-alpha.png?w=128&fm=jpg", "", "jpeg", 128, 96, 1},
		{"/img/animated-loop-3.gif?w=185", "", "gif", 185, 143, 10},
		{"/img/animated-loop-3.gif?w=185&format=auto", chrome, "webp", 185, 143, 10},
		{"/img/rotating-squares.webp?w=40", "", "webp", 40, 40, 9},
		{"/img/rotating-squares.gif?w=40&fm=png", "", "png", 40, 40, 1},
		{"/img/G31D.TIF?w=200", "", "jpeg", 200, 264, 1},
		{"/img/relax.jp2?w=100", "", "jpeg", 100, 75, 1},
		{"/img/pitm.avif?w=200", "", "avif", 200, 39, 1},
		{"/img/check.svg?w=64", "", "png", 64, 64, 1},
		{"/img/4.webp?w=100&utm_source=newsletter", "", "webp", 100, 75, 1},
	}
	eachBackend(t, func(t *testing.T, b backend) {
		for _, tt := range tests {
			t.Run(tt.path, func(t *testing.T) {
				res := get(t, b.proc.URL+tt.path, "Accept", tt.accept)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", res.StatusCode, res.body)
				}
				d := testutil.DecodeImage(t, res.body)
				if d.Format != tt.format || d.Width != tt.width || d.Height != tt.height || d.Frames != tt.frames {
					t.Errorf("got %s %dx%d×%d, want %s %dx%d×%d", d.Format, d.Width, d.Height, d.Frames,
						tt.format, tt.width, tt.height, tt.frames)
				}
				checkImageHeaders(t, res, "image/"+tt.format)
				if vary := res.Header.Get("Vary"); strings.Contains(tt.path, "auto") != (vary == "Accept") {
					t.Errorf("Vary = %q for %s", vary, tt.path)
				}
			})
		}
	})
}

func checkImageHeaders(t *testing.T, res response, contentType string) {
	t.Helper()
	h := res.Header
	if got := h.Get("Content-Type"); got != contentType {
		t.Errorf("Content-Type = %q, want %q", got, contentType)
	}
	if got := h.Get("Content-Length"); got != strconv.Itoa(len(res.body)) {
		t.Errorf("Content-Length = %q for a %d-byte body", got, len(res.body))
	}
	if etag := h.Get("ETag"); !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
		t.Errorf("ETag %q is not a strong validator", etag)
	}
	if got, want := h.Get("Cache-Control"), "public, max-age=86400, s-maxage=31536000"; got != want {
		t.Errorf("Cache-Control = %q, want %q", got, want)
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
}

func TestOriginal(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(testutil.Root(), "testdata", "images", "320x240.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	eachBackend(t, func(t *testing.T, b backend) {
		for _, p := range []string{"/" + deepKey, "/" + deepKey + "?utm_source=x&fbclid=y"} {
			res := get(t, b.proc.URL+p)
			if res.StatusCode != http.StatusOK || !bytes.Equal(res.body, want) {
				t.Fatalf("%s: status %d, %d bytes; want the %d original bytes", p, res.StatusCode, len(res.body), len(want))
			}
			checkImageHeaders(t, res, "image/jpeg")
			if res.Header.Get("Last-Modified") == "" {
				t.Error("no Last-Modified")
			}
		}
		url := b.proc.URL + "/" + deepKey
		etag := get(t, url).Header.Get("ETag")

		ranged := get(t, url, "Range", "bytes=100-199")
		if ranged.StatusCode != http.StatusPartialContent || !bytes.Equal(ranged.body, want[100:200]) {
			t.Errorf("Range: status %d, %d bytes", ranged.StatusCode, len(ranged.body))
		}
		if got := ranged.Header.Get("Content-Range"); got != "bytes 100-199/"+strconv.Itoa(len(want)) {
			t.Errorf("Content-Range = %q", got)
		}
		if tail := get(t, url, "Range", "bytes=-10"); !bytes.Equal(tail.body, want[len(want)-10:]) {
			t.Errorf("suffix range: %d bytes", len(tail.body))
		}
		if bad := get(t, url, "Range", "bytes=999999-"); bad.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("unsatisfiable range: status %d", bad.StatusCode)
		}

		head := do(t, http.MethodHead, url)
		if head.StatusCode != http.StatusOK || len(head.body) != 0 || head.Header.Get("Content-Length") != strconv.Itoa(len(want)) || head.Header.Get("ETag") != etag {
			t.Errorf("HEAD: status %d, body %d bytes, headers %v", head.StatusCode, len(head.body), head.Header)
		}
		if nm := get(t, url, "If-None-Match", etag); nm.StatusCode != http.StatusNotModified || len(nm.body) != 0 {
			t.Errorf("If-None-Match: status %d, %d bytes", nm.StatusCode, len(nm.body))
		}
	})
}

func TestSVG(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		res := get(t, b.proc.URL+"/img/check.svg")
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/svg+xml" {
			t.Fatalf("status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
		if csp := res.Header.Get("Content-Security-Policy"); csp != "sandbox" {
			t.Errorf("SVG original served with CSP %q, want sandbox", csp)
		}
		raster := get(t, b.proc.URL+"/img/check.svg?q=90")
		if d := testutil.DecodeImage(t, raster.body); d.Format != "png" || d.Width != 100 {
			t.Errorf("transformed SVG: %s %dx%d, want a 100 px PNG", d.Format, d.Width, d.Height)
		}
		if raster.Header.Get("Content-Security-Policy") != "" {
			t.Error("a PNG rendering needs no sandbox")
		}
	})
}

func TestVariantValidators(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		u := b.proc.URL + "/img/flowers.jpeg"
		first := get(t, u+"?w=120&quality=70")
		etag := first.Header.Get("ETag")
		same := []string{"?w=120&quality=70", "?quality=70&w=120", "?w=120&q=70", "?w=120&q=70&utm_campaign=spring"}
		for _, q := range same {
			if got := get(t, u+q).Header.Get("ETag"); got != etag {
				t.Errorf("%s: ETag %s, want %s like ?w=120&quality=70", q, got, etag)
			}
		}
		for _, q := range []string{"?w=121&q=70", "?w=120&q=71", "?w=120&q=70&fm=webp"} {
			if got := get(t, u+q).Header.Get("ETag"); got == etag {
				t.Errorf("%s shares the ETag of another variant", q)
			}
		}
		avif := get(t, u+"?w=120&fm=auto", "Accept", chrome).Header.Get("ETag")
		webp := get(t, u+"?w=120&fm=auto", "Accept", firefox).Header.Get("ETag")
		if avif == webp {
			t.Error("format=auto gives AVIF and WebP the same ETag")
		}

		for _, inm := range []string{etag, `W/` + etag, `"nope", ` + etag, "*"} {
			nm := get(t, u+"?w=120&q=70", "If-None-Match", inm)
			if nm.StatusCode != http.StatusNotModified || len(nm.body) != 0 || nm.Header.Get("ETag") != etag {
				t.Errorf("If-None-Match %s: status %d, %d bytes", inm, nm.StatusCode, len(nm.body))
			}
		}
		if res := get(t, u+"?w=120&q=70", "If-None-Match", `"other"`); res.StatusCode != http.StatusOK {
			t.Errorf("non-matching If-None-Match: status %d", res.StatusCode)
		}

		head := do(t, http.MethodHead, u+"?w=120&q=70")
		if head.StatusCode != http.StatusOK || len(head.body) != 0 ||
			head.Header.Get("Content-Length") != strconv.Itoa(len(first.body)) || head.Header.Get("Content-Type") != "image/jpeg" {
			t.Errorf("HEAD of a variant: status %d, headers %v", head.StatusCode, head.Header)
		}
	})
}

type errorJSON struct {
	Error struct {
		Status  int    `json:"status"`
		Code    string `json:"code"`
		Param   string `json:"param"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestErrors(t *testing.T) {
	tests := []struct {
		method, path string
		status       int
		code, param  string
	}{
		{"GET", "/img/flowers.jpeg?w=0", 400, "invalid_param", "w"},
		{"GET", "/img/flowers.jpeg?w=abc", 400, "invalid_param", "w"},
		{"GET", "/img/flowers.jpeg?w=8193", 400, "invalid_param", "w"},
		{"GET", "/img/flowers.jpeg?h=-5", 400, "invalid_param", "h"},
		{"GET", "/img/flowers.jpeg?q=101", 400, "invalid_param", "q"},
		{"GET", "/img/flowers.jpeg?quality=0", 400, "invalid_param", "quality"},
		{"GET", "/img/flowers.jpeg?fm=bmp", 400, "invalid_param", "fm"},
		{"GET", "/img/flowers.jpeg?format=tiff", 400, "invalid_param", "format"},
		{"GET", "/img/flowers.jpeg?resize=100", 400, "invalid_param", "resize"},
		{"GET", "/img/flowers.jpeg?fit=1,2,3", 400, "invalid_param", "fit"},
		{"GET", "/img/flowers.jpeg?lb=0,100", 400, "invalid_param", "lb"},
		{"GET", "/img/flowers.jpeg?crop=1,2,3", 400, "invalid_param", "crop"},
		{"GET", "/img/flowers.jpeg?crop=0,0,150,10", 400, "invalid_param", "crop"},
		{"GET", "/img/flowers.jpeg?crop=5000px,0px,10px,10px", 400, "invalid_param", "crop"},
		{"GET", "/img/flowers.jpeg?crop_strategy=magic", 400, "invalid_param", "crop_strategy"},
		{"GET", "/img/flowers.jpeg?gravity=up", 400, "invalid_param", "gravity"},
		{"GET", "/img/flowers.jpeg?zoom=9", 400, "invalid_param", "zoom"},
		{"GET", "/img/flowers.jpeg?dpr=0", 400, "invalid_param", "dpr"},
		{"GET", "/img/flowers.jpeg?webp=2", 400, "invalid_param", "webp"},
		{"GET", "/img/flowers.jpeg?bg=xyz", 400, "invalid_param", "bg"},
		{"GET", "/img/flowers.jpeg?background=%2312", 400, "invalid_param", "background"},
		// a % that starts no escape is a literal one, as Photon's w=50% is
		{"GET", "/img/flowers.jpeg?w=%zz", 400, "invalid_param", "w"},
		{"GET", "/img/flowers.jpeg?w=100&q=%", 400, "invalid_param", "q"},
		{"GET", "/img/flowers.jpeg?w=0%25", 400, "invalid_param", "w"},
		{"GET", "/img/flowers.jpeg?h=101%25", 400, "invalid_param", "h"},
		{"GET", "/img/flowers.jpeg?rot=45", 400, "invalid_param", "rot"},
		{"GET", "/img/flowers.jpeg?rotate=-90", 400, "invalid_param", "rotate"},
		{"GET", "/img/flowers.jpeg?flip=x", 400, "invalid_param", "flip"},
		{"GET", "/img/flowers.jpeg?blur=0", 400, "invalid_param", "blur"},
		{"GET", "/img/flowers.jpeg?blur=251", 400, "invalid_param", "blur"},
		{"GET", "/img/flowers.jpeg?sharp=11", 400, "invalid_param", "sharp"},
		{"GET", "/img/flowers.jpeg?sharpen=x", 400, "invalid_param", "sharpen"},
		{"GET", "/img/flowers.jpeg?trim=edges", 400, "invalid_param", "trim"},
		{"GET", "/img/flowers.jpeg?trim=1,2,3", 400, "invalid_param", "trim"},
		{"GET", "/img/flowers.jpeg?trim=auto&trim_threshold=256", 400, "invalid_param", "trim_threshold"},
		{"GET", "/img/flowers.jpeg?filter=vintage", 400, "invalid_param", "filter"},
		{"GET", "/img/flowers.jpeg?brightness=256", 400, "invalid_param", "brightness"},
		{"GET", "/img/flowers.jpeg?contrast=-101", 400, "invalid_param", "contrast"},
		{"GET", "/img/flowers.jpeg?colorize=255,0", 400, "invalid_param", "colorize"},
		{"GET", "/img/flowers.jpeg?colorize=300,0,0", 400, "invalid_param", "colorize"},
		{"GET", "/img/flowers.jpeg?smooth=soft", 400, "invalid_param", "smooth"},
		{"GET", "/img/flowers.jpeg?ulb=maybe", 400, "invalid_param", "ulb"},
		{"GET", "/img/flowers.jpeg?strip=none", 400, "invalid_param", "strip"},
		{"GET", "/img/flowers.jpeg?resize=100,100&fp-x=1.5", 400, "invalid_param", "fp-x"},
		{"GET", "/img/flowers.jpeg?resize=100,100&fp-y=-0.1", 400, "invalid_param", "fp-y"},
		{"GET", "/img/flowers.jpeg?mark=img/check.svg", 400, "invalid_param", "mark"},
		{"GET", "/img/flowers.jpeg?mark=img/missing.png", 400, "invalid_param", "mark"},
		{"GET", "/img/flowers.jpeg?mark=..%2F..%2Fetc%2Fpasswd", 400, "invalid_param", "mark"},
		{"GET", "/img/flowers.jpeg?mark=img/with-alpha.png&mark-w=0", 400, "invalid_param", "mark-w"},
		{"GET", "/img/flowers.jpeg?mark=img/with-alpha.png&mark-align=up", 400, "invalid_param", "mark-align"},
		{"GET", "/img/flowers.jpeg?mark=img/with-alpha.png&mark-pad=-1", 400, "invalid_param", "mark-pad"},
		{"GET", "/img/flowers.jpeg?mark=img/with-alpha.png&mark-alpha=101", 400, "invalid_param", "mark-alpha"},
		{"GET", "/img/missing.jpg?mark=img/with-alpha.png", 404, "not_found", ""},
		{"GET", "/img/missing.jpg", 404, "not_found", ""},
		{"GET", "/img/missing.jpg?w=100", 404, "not_found", ""},
		{"HEAD", "/img/missing.jpg?w=100", 404, "not_found", ""},
		{"GET", "/img", 404, "not_found", ""},
		{"GET", "/%2e%2e/%2e%2e/etc/passwd", 400, "invalid_key", ""},
		{"GET", "/img/%2e%2e/%2e%2e/%2e%2e/etc/passwd?w=10", 400, "invalid_key", ""},
		{"GET", "/img/a%00b.jpg", 400, "invalid_key", ""},
		{"GET", "//etc/passwd", 400, "invalid_key", ""},
		{"GET", "/img/truncated.jpg?w=100", 415, "undecodable_image", ""},
		{"GET", "/img/truncated.png?w=100", 415, "undecodable_image", ""},
		{"GET", "/img/corrupt-header.jpg?w=100", 415, "undecodable_image", ""},
		{"GET", "/img/giant-image.jpg?w=100", 422, "source_too_large", ""},
		{"POST", "/img/flowers.jpeg", 405, "method_not_allowed", ""},
		{"DELETE", "/img/flowers.jpeg", 405, "method_not_allowed", ""},
	}
	eachBackend(t, func(t *testing.T, b backend) {
		for _, tt := range tests {
			t.Run(tt.method+" "+tt.path, func(t *testing.T) {
				res := do(t, tt.method, b.proc.URL+tt.path)
				if res.StatusCode != tt.status {
					t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, res.body)
				}
				if ct := res.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				wantCC := "public, max-age=60, s-maxage=60"
				if got := res.Header.Get("Cache-Control"); got != wantCC {
					t.Errorf("Cache-Control %q, want %q", got, wantCC)
				}
				if tt.method == http.MethodHead {
					return
				}
				if res.Header.Get("Content-Length") != strconv.Itoa(len(res.body)) {
					t.Errorf("Content-Length %q for %d bytes", res.Header.Get("Content-Length"), len(res.body))
				}
				var e errorJSON
				if err := json.Unmarshal(res.body, &e); err != nil {
					t.Fatalf("error body %q: %v", res.body, err)
				}
				if e.Error.Status != tt.status || e.Error.Code != tt.code || e.Error.Param != tt.param || e.Error.Message == "" {
					t.Errorf("error body %s, want status %d code %q param %q", res.body, tt.status, tt.code, tt.param)
				}
			})
		}
	})
}

func TestHealthz(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		res := get(t, b.proc.URL+"/healthz")
		if res.StatusCode != http.StatusOK || string(res.body) != `{"status":"ok"}` {
			t.Errorf("status %d: %s", res.StatusCode, res.body)
		}
	})
}

func TestRequestLog(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		get(t, b.proc.URL+"/img/concert.jpg?w=50&q=60&utm_marker="+b.name)
		line := waitForLog(t, b.proc, func(e map[string]any) bool {
			return e["msg"] == "request" && e["key"] == "img/concert.jpg" && e["params"] == "w=50&q=60"
		})
		for _, field := range []string{"time", "level", "msg", "method", "status", "bytes", "duration_ms", "cache"} {
			if _, ok := line[field]; !ok {
				t.Errorf("log line lacks %q: %v", field, line)
			}
		}
		if line["status"] != float64(200) || line["method"] != "GET" || line["cache"] != "miss" {
			t.Errorf("log line: %v", line)
		}
	})
}

// waitForLog returns the first JSON log line of p that match accepts, waiting
// a little: a request's line is written after its response may have arrived.
func waitForLog(t *testing.T, p *testutil.Process, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		for _, line := range strings.Split(p.Output(), "\n") {
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) == nil && match(entry) {
				return entry
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching log line in:\n%s", p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
