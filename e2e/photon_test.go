package e2e

import (
	"encoding/json"
	"image/color"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prism-image/prism/internal/testutil"
)

// Photon's vocabulary, as its public documentation writes it
// (developer.wordpress.com/docs/photon/api), through the compiled server
// on both backends. Each answer is decoded and measured against the plain
// variant of the same width; the imaging package pins the exact values.

// photonBase is flowers.jpeg (1920×1080) as PNG; photonPlain at the
// width most cases share.
const (
	photonBase  = "/img/flowers.jpeg?fm=png&"
	photonPlain = photonBase + "w=192"
)

// region is the mean of each band over a w×h block at (x, y).
func region(r testutil.Raster, x, y, w, h int) [3]float64 {
	var s [3]float64
	for j := y; j < y+h; j++ {
		for i := x; i < x+w; i++ {
			for b, v := range r.RGB(0, i, j) {
				s[b] += v
			}
		}
	}
	n := float64(w * h)
	return [3]float64{s[0] / n, s[1] / n, s[2] / n}
}

// mapped is the mean of band b after f is applied to each of r's values.
func mapped(r testutil.Raster, b int, f func(v float64) float64) float64 {
	sum := 0.0
	for y := range r.Height {
		for x := range r.Width {
			sum += f(r.At(0, x, y, b))
		}
	}
	return sum / float64(r.Width*r.Height)
}

func clamp(v float64) float64 { return min(255, max(0, v)) }

func closeTo(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.2f, want %.2f ± %.1f", what, got, want, tol)
	}
}

func closeRGB(t *testing.T, what string, got, want [3]float64, tol float64) {
	t.Helper()
	for b := range 3 {
		closeTo(t, what+" band "+string("RGB"[b]), got[b], want[b], tol)
	}
}

func TestPhotonURLs(t *testing.T) {
	tests := []struct {
		query         string // after photonBase
		width, height int
		check         func(t *testing.T, got, plain testutil.Raster)
	}{
		{"w=15%25", 288, 162, nil},
		{"w=15%", 288, 162, nil}, // a lone % as Photon's pages write it
		{"h=20%25", 384, 216, nil},
		// w and h refer to the rotated image
		{"w=192&rot=90", 192, 341, nil},
		{"h=192&rot=90", 108, 192, func(t *testing.T, got, plain testutil.Raster) {
			// the top-left corner moves to the top right
			closeRGB(t, "top-right block", region(got, 108-1-16, 0, 16, 16), region(plain, 0, 0, 16, 16), 8)
		}},
		{"w=192&rotate=180", 192, 108, func(t *testing.T, got, plain testutil.Raster) {
			closeRGB(t, "bottom-right block", region(got, 192-16, 108-16, 16, 16), region(plain, 0, 0, 16, 16), 8)
		}},
		{"w=192&flip=h", 192, 108, func(t *testing.T, got, plain testutil.Raster) {
			closeRGB(t, "mirrored block", region(got, 192-40, 20, 30, 30), region(plain, 10, 20, 30, 30), 4)
		}},
		{"w=192&flip=v", 192, 108, func(t *testing.T, got, plain testutil.Raster) {
			closeRGB(t, "mirrored block", region(got, 50, 108-40, 30, 30), region(plain, 50, 10, 30, 30), 4)
		}},
		{"w=192&filter=grayscale", 192, 108, func(t *testing.T, got, _ testutil.Raster) {
			for y := range got.Height {
				for x := range got.Width {
					if c := got.RGB(0, x, y); c[0] != c[1] || c[1] != c[2] {
						t.Fatalf("pixel (%d, %d) = %v, not grey", x, y, c)
					}
				}
			}
		}},
		{"w=192&filter=negate", 192, 108, func(t *testing.T, got, plain testutil.Raster) {
			for b := range 3 {
				closeTo(t, "negated mean", got.Mean(0, b), 255-plain.Mean(0, b), 1)
			}
		}},
		{"w=192&filter=sepia", 192, 108, func(t *testing.T, got, _ testutil.Raster) {
			if r, g, b := got.Mean(0, 0), got.Mean(0, 1), got.Mean(0, 2); !(r > g && g > b) {
				t.Errorf("sepia means R %.1f G %.1f B %.1f: not warm", r, g, b)
			}
		}},
		{"w=192&brightness=80", 192, 108, func(t *testing.T, got, plain testutil.Raster) {
			for b := range 3 {
				closeTo(t, "brightened mean", got.Mean(0, b), mapped(plain, b, func(v float64) float64 { return clamp(v + 80) }), 1)
			}
		}},
		{"w=192&colorize=255,0,0", 192, 108, func(t *testing.T, got, plain testutil.Raster) {
			closeTo(t, "red mean", got.Mean(0, 0), 255, 0.5)
			closeTo(t, "green mean", got.Mean(0, 1), plain.Mean(0, 1), 1)
			closeTo(t, "blue mean", got.Mean(0, 2), plain.Mean(0, 2), 1)
		}},
		{"w=192&contrast=50", 192, 108, func(t *testing.T, got, plain testutil.Raster) {
			if got.Std(0, 1) <= plain.Std(0, 1)*1.05 {
				t.Errorf("spread %.1f after contrast=50, %.1f before: not raised", got.Std(0, 1), plain.Std(0, 1))
			}
		}},
		{"w=192&contrast=-50", 192, 108, func(t *testing.T, got, plain testutil.Raster) {
			if got.Std(0, 1) >= plain.Std(0, 1)*0.95 {
				t.Errorf("spread %.1f after contrast=-50, %.1f before: not lowered", got.Std(0, 1), plain.Std(0, 1))
			}
		}},
		{"w=192&smooth=1", 192, 108, lessSharp},
		{"w=192&filter=blurgaussian", 192, 108, lessSharp},
		{"w=192&filter=blurselective", 192, 108, func(t *testing.T, got, plain testutil.Raster) {
			// a median: less than a blur, since it keeps edges
			if got.Sharpness(0) >= plain.Sharpness(0)*0.9 {
				t.Errorf("Laplacian variance %.1f, %.1f before: not smoothed", got.Sharpness(0), plain.Sharpness(0))
			}
		}},
		{"w=192&blur=4", 192, 108, lessSharp},
		{"w=192&filter=meanremoval", 192, 108, sharper},
		{"w=192&sharp=5", 192, 108, sharper},
		{"w=192&filter=edgedetect", 192, 108, aroundGrey},
		{"w=192&filter=emboss", 192, 108, aroundGrey},
		{"resize=100,100&fp-x=0&fp-y=0.5", 100, 100, func(t *testing.T, got, _ testutil.Raster) {
			// the window is the source's left edge: as a 100-high rendering's left square
			left := decodeRaster(t, "/img/flowers.jpeg?h=100&fm=png")
			closeRGB(t, "left square", region(got, 10, 10, 80, 80), region(left, 10, 10, 80, 80), 4)
		}},
	}
	eachBackend(t, func(t *testing.T, b backend) {
		plain := decodeRaster(t, b.proc.URL+photonPlain)
		for _, tt := range tests {
			t.Run(tt.query, func(t *testing.T) {
				res := get(t, b.proc.URL+photonBase+tt.query)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", res.StatusCode, res.body)
				}
				d := testutil.DecodeImage(t, res.body)
				if d.Format != "png" || d.Width != tt.width || d.Height != tt.height {
					t.Fatalf("got %s %dx%d, want png %dx%d", d.Format, d.Width, d.Height, tt.width, tt.height)
				}
				if tt.check != nil {
					tt.check(t, d.Raster(t), plain)
				}
			})
		}
		// What changes nothing is left out of the variant's identity.
		want := get(t, b.proc.URL+photonPlain).Header.Get("ETag")
		for _, q := range []string{"&strip=all", "&strip=info", "&strip=color", "&rot=0", "&sharp=0"} {
			if got := get(t, b.proc.URL+photonPlain+q).Header.Get("ETag"); got != want {
				t.Errorf("%s: ETag %s, want the plain variant's %s", q, got, want)
			}
		}
	})
}

// aroundGrey: GD's edge filters add 127, so flat areas turn mid grey.
func aroundGrey(t *testing.T, got, _ testutil.Raster) {
	t.Helper()
	closeTo(t, "green mean", got.Mean(0, 1), 127, 15)
}

func lessSharp(t *testing.T, got, plain testutil.Raster) {
	t.Helper()
	if got.Sharpness(0) >= plain.Sharpness(0)*0.8 {
		t.Errorf("Laplacian variance %.0f, %.0f before: not blurred", got.Sharpness(0), plain.Sharpness(0))
	}
}

func sharper(t *testing.T, got, plain testutil.Raster) {
	t.Helper()
	if got.Sharpness(0) <= plain.Sharpness(0)*1.2 {
		t.Errorf("Laplacian variance %.0f, %.0f before: not sharpened", got.Sharpness(0), plain.Sharpness(0))
	}
}

// decodeRaster GETs u (a path is on the first backend) and reads its pixels.
func decodeRaster(t *testing.T, u string) testutil.Raster {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = backends[0].proc.URL + u
	}
	res := get(t, u)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", u, res.StatusCode, res.body)
	}
	return testutil.DecodeImage(t, res.body).Raster(t)
}

// TestPhotonBorders: ulb and trim on an uploaded image with known bars.
func TestPhotonBorders(t *testing.T) {
	black, sky := color.NRGBA{0, 0, 0, 255}, color.NRGBA{90, 150, 220, 255}
	// 200×100 with 20-pixel black bars above and below
	bars := testutil.DrawPNG(t, 200, 100, func(x, y int) color.NRGBA {
		if y < 20 || y >= 80 {
			return black
		}
		return sky
	})
	tests := []struct {
		query         string
		width, height int
	}{
		{"ulb=true", 200, 60},
		{"trim=auto", 200, 60},
		{"trim=20,0,20,0", 200, 60},
		{"trim=20,50,20,50", 100, 60},
		{"ulb=true&w=100", 100, 30},
	}
	eachBackend(t, func(t *testing.T, b backend) {
		key := "photon/" + b.name + "/bars.png"
		if res := send(t, "PUT", b.proc.URL+"/v1/images/"+key, apiKey, "image/png", bars); res.StatusCode >= 300 {
			t.Fatalf("upload: %d %s", res.StatusCode, res.body)
		}
		for _, tt := range tests {
			t.Run(tt.query, func(t *testing.T) {
				res := get(t, b.proc.URL+"/"+key+"?fm=png&"+tt.query)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", res.StatusCode, res.body)
				}
				d := testutil.DecodeImage(t, res.body)
				if d.Width != tt.width || d.Height != tt.height {
					t.Fatalf("%dx%d, want %dx%d", d.Width, d.Height, tt.width, tt.height)
				}
				r := d.Raster(t)
				for _, y := range []int{0, r.Height - 1} { // no bar is left
					closeRGB(t, "edge row", region(r, 0, y, r.Width, 1), [3]float64{90, 150, 220}, 2)
				}
			})
		}
	})
}

// TestWatermarkLifecycle: a watermark uploaded through the API is drawn
// where mark-align puts it; replacing it changes every variant drawn with
// it (new ETag, new pixels, the old ETag no longer a 304); deleting it
// makes the transform a 400 naming mark.
func TestWatermarkLifecycle(t *testing.T) {
	grey, red, blue := color.NRGBA{128, 128, 128, 255}, color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 0, 255, 255}
	eachBackend(t, func(t *testing.T, b backend) {
		dir := "marks/" + b.name + "/"
		put := func(key string, data []byte) {
			t.Helper()
			if res := send(t, "PUT", b.proc.URL+"/v1/images/"+dir+key, apiKey, "image/png", data); res.StatusCode >= 300 {
				t.Fatalf("upload %s: %d %s", key, res.StatusCode, res.body)
			}
		}
		put("photo.png", testutil.DrawPNG(t, 200, 100, testutil.Uniform(grey)))
		put("logo.png", testutil.DrawPNG(t, 40, 20, testutil.Uniform(red)))
		u := b.proc.URL + "/" + dir + "photo.png?fm=png&mark=" + dir + "logo.png&mark-align=top,left&mark-pad=5&mark-alpha=50"
		// markAt reads the mark's centre and a point beside it.
		markAt := func(res response) (in, out [3]float64) {
			t.Helper()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d %s", u, res.StatusCode, res.body)
			}
			r := testutil.DecodeImage(t, res.body).Raster(t)
			return r.RGB(0, 25, 15), r.RGB(0, 100, 50)
		}
		first := get(t, u)
		in, out := markAt(first)
		closeRGB(t, "half-opaque red mark", in, [3]float64{191.5, 64, 64}, 2)
		closeRGB(t, "beside the mark", out, [3]float64{128, 128, 128}, 1)
		if res := get(t, u, "If-None-Match", first.Header.Get("ETag")); res.StatusCode != http.StatusNotModified {
			t.Fatalf("revalidation before the replace: %d", res.StatusCode)
		}

		put("logo.png", testutil.DrawPNG(t, 40, 20, testutil.Uniform(blue)))
		again := get(t, u, "If-None-Match", first.Header.Get("ETag"))
		in, _ = markAt(again)
		closeRGB(t, "the replaced mark", in, [3]float64{64, 64, 191.5}, 2)
		if again.Header.Get("ETag") == first.Header.Get("ETag") {
			t.Error("the variant kept its ETag when its watermark was replaced")
		}
		if b.name == "s3" { // the shared index of who used the mark, in Redis
			if n := redis.Client().SCard(t.Context(), "prism:marked:"+dir+"logo.png").Val(); n != 1 {
				t.Errorf("%d originals recorded for the mark, want 1", n)
			}
		}

		if res := send(t, "DELETE", b.proc.URL+"/v1/images/"+dir+"logo.png", apiKey, "", nil); res.StatusCode != http.StatusNoContent {
			t.Fatalf("delete: %d %s", res.StatusCode, res.body)
		}
		gone := get(t, u)
		var e errorJSON
		if err := json.Unmarshal(gone.body, &e); err != nil || gone.StatusCode != 400 || e.Error.Param != "mark" {
			t.Errorf("after the mark's delete: %d %s, want a 400 naming mark", gone.StatusCode, gone.body)
		}
	})
}

// TestWatermarkPurgeReachesCloudFront: replacing a watermark through the
// API makes the compiled server invalidate, on CloudFront's API (faked in
// process and checked request by request, SigV4 included), the path of the
// watermark and of every original drawn with it, and no other.
func TestWatermarkPurgeReachesCloudFront(t *testing.T) {
	fake, cfEnv := testutil.StartFakeCloudFront(t, testutil.CloudFrontAccessKey, testutil.CloudFrontSecretKey)
	env := append([]string{
		"PRISM_STORAGE=file://" + t.TempDir(), "PRISM_API_KEYS=" + apiKey,
		"AWS_ACCESS_KEY_ID=" + testutil.CloudFrontAccessKey, "AWS_SECRET_ACCESS_KEY=" + testutil.CloudFrontSecretKey, "AWS_SESSION_TOKEN=",
	}, cfEnv...)
	p := startServer(t, env...)
	put := func(key string, c color.NRGBA) {
		t.Helper()
		if res := send(t, "PUT", p.URL+"/v1/images/"+key, apiKey, "image/png", testutil.DrawPNG(t, 60, 40, testutil.Uniform(c))); res.StatusCode >= 300 {
			t.Fatalf("upload %s: %d %s", key, res.StatusCode, res.body)
		}
	}
	put("photos/cat.png", color.NRGBA{128, 128, 128, 255})
	put("photos/dog.png", color.NRGBA{100, 100, 100, 255})
	put("marks/logo.png", color.NRGBA{255, 0, 0, 255})
	for _, u := range []string{"/photos/cat.png?w=30&mark=marks/logo.png&mark-w=0.3", "/photos/dog.png?w=30"} {
		if res := get(t, p.URL+u); res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", u, res.StatusCode, res.body)
		}
	}
	put("marks/logo.png", color.NRGBA{0, 0, 255, 255})
	want := []string{"/marks/logo.png*", "/photos/cat.png*"}
	deadline := time.Now().Add(15 * time.Second) // batches gather for 2 s
	for !slices.Equal(fake.Paths(), want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := fake.Paths(); !slices.Equal(got, want) {
		t.Errorf("CloudFront invalidated %q, want %q", got, want)
	}
}
