// Package benchmarks measures Prism's hot path: Go benchmarks of the libvips
// pipeline here (go test -bench . ./benchmarks), and the HTTP load harness
// in harness/ and cmd/loadbench (make bench). See README.md.
package benchmarks

import (
	"net/url"
	"os"
	"testing"

	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/internal/testutil"
)

// photo is the 17.6 MP reference source (5141×3434), kept once in
// testdata/images.
const photo = "pexels-magda-ehlers-5141x3434.jpg"

// TestMain starts libvips with one thread per pipeline, as a worker-per-CPU
// server runs it: parallelism comes from concurrent requests, which the
// RunParallel variants model.
func TestMain(m *testing.M) {
	imaging.RunSVGRasteriserIfChild()
	if err := imaging.Startup(1); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

type pipelineCase struct {
	name   string
	source string
	query  string
	format imaging.Format
	width  int // expected output size, checked by TestSmokePipelineCases
	height int
}

var cases = []pipelineCase{
	{"jpeg-w400", photo, "w=400&quality=80", imaging.JPEG, 400, 267},
	{"webp-w400", photo, "w=400&quality=80&fm=webp", imaging.WebP, 400, 267},
	{"avif-w400", photo, "w=400&quality=80&fm=avif", imaging.AVIF, 400, 267},
	{"jpeg-800x800-smart", photo, "resize=800,800&crop_strategy=smart", imaging.JPEG, 800, 800},
	{"png-source-w400", "50020484-00001.png", "w=400", imaging.PNG, 400, 0},
	// the Photon vocabulary's costs: adjustments after the resize, and
	// trim=auto, which decodes the source whole to find its border
	{"jpeg-w400-blur-sharp", photo, "w=400&quality=80&blur=10&sharp=5", imaging.JPEG, 400, 267},
	{"jpeg-w400-filters", photo, "w=400&quality=80&filter=sepia&contrast=20&brightness=10", imaging.JPEG, 400, 267},
	{"jpeg-w400-trim", photo, "w=400&quality=80&trim=auto", imaging.JPEG, 400, 0},
}

func parse(tb testing.TB, query string) imaging.Options {
	tb.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		tb.Fatal(err)
	}
	o, err := imaging.ParseOptions(q)
	if err != nil {
		tb.Fatalf("ParseOptions(%q): %v", query, err)
	}
	return o
}

// TestSmokePipelineCases runs every benchmark case once, so that a case that
// stops working fails `make test` instead of rotting until someone
// benchmarks.
func TestSmokePipelineCases(t *testing.T) {
	p := imaging.NewProcessor(imaging.DefaultConfig)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := p.Process(t.Context(), testutil.ReadTestImage(t, c.source), parse(t, c.query), imaging.Accepts{})
			if err != nil {
				t.Fatal(err)
			}
			if v.Format != c.format || v.Width != c.width || (c.height != 0 && v.Height != c.height) || len(v.Data) == 0 {
				t.Fatalf("got %s %dx%d (%d bytes), want %s %dx%d", v.Format, v.Width, v.Height, len(v.Data), c.format, c.width, c.height)
			}
		})
	}
}

// BenchmarkProcess is one pipeline at a time: ns/op is the latency of one
// transform on one core.
func BenchmarkProcess(b *testing.B) {
	p := imaging.NewProcessor(imaging.DefaultConfig)
	for _, c := range cases {
		src, o := testutil.ReadTestImage(b, c.source), parse(b, c.query)
		b.Run(c.name, func(b *testing.B) {
			var out int
			for b.Loop() {
				v, err := p.Process(b.Context(), src, o, imaging.Accepts{})
				if err != nil {
					b.Fatal(err)
				}
				out = len(v.Data)
			}
			report(b, out)
		})
	}
}

// BenchmarkProcessParallel runs GOMAXPROCS pipelines at once (one per core,
// -cpu to change): ns/op is wall time over all of them, so img/s is the
// machine's throughput and img/s divided by the core count the per-core
// throughput.
func BenchmarkProcessParallel(b *testing.B) {
	p := imaging.NewProcessor(imaging.DefaultConfig)
	for _, c := range cases {
		src, o := testutil.ReadTestImage(b, c.source), parse(b, c.query)
		b.Run(c.name, func(b *testing.B) {
			outs := make(chan int, 1)
			b.RunParallel(func(pb *testing.PB) {
				out := 0
				for pb.Next() {
					v, err := p.Process(b.Context(), src, o, imaging.Accepts{})
					if err != nil {
						b.Error(err)
						return
					}
					out = len(v.Data)
				}
				select {
				case outs <- out:
				default:
				}
			})
			out := 0
			select {
			case out = <-outs:
			default:
			}
			report(b, out)
		})
	}
}

// report adds the output size (bytes/op: the encoded variant, not memory
// allocated; -benchmem reports that as B/op) and the throughput.
func report(b *testing.B, outBytes int) {
	b.ReportMetric(float64(outBytes), "bytes/op")
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "img/s")
	}
}
