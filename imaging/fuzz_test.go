package imaging

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/internal/testutil"
)

// Any query either fails as a 400 naming a parameter, or parses to options
// whose plan, on any source size, stays within the limits, and whose
// canonical form parses back to the same options.
func FuzzParseOptions(f *testing.F) {
	for _, q := range []string{
		"w=400&quality=80", "resize=800,600&crop_strategy=smart", "format=auto", "lb=8192,8192&fm=avif",
		"crop=10,10,50px,50px&w=100", "fit=300,200&zoom=2.5&dpr=3", "w=0", "h=-1&bg=%23fff", "auto=format,compress&webp=1",
		"gravity=northeast&resize=100px,100px", "crop=0,0,0,0", "zoom=1e309", "w=1&h=8192&dpr=5",
		"w=50%25&rot=90&flip=hv", "trim=1,2,3,4&resize=10,10&fp-x=0.9", "ulb=true&trim_threshold=40&h=20%25",
		"filter=sepia&brightness=-20&contrast=50&colorize=10,0,-10&smooth=2&blur=3&sharp=4",
		"mark=a%2Fb.png&mark-w=0.5&mark-align=top,left&mark-pad=0&mark-alpha=30", "trim=9999,0,0,0&w=5",
	} {
		f.Add(q, 5141, 3434)
	}
	f.Fuzz(func(t *testing.T, query string, w, h int) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		o, err := ParseOptions(q)
		if err != nil {
			if pe := prism.AsError(err); pe.Status != 400 || pe.Code != prism.CodeInvalidParam {
				t.Fatalf("%q: %v is not a 400 invalid_param", query, err)
			}
			return
		}
		canonical, err := url.ParseQuery(o.Canonical())
		if err != nil {
			t.Fatalf("%q: canonical %q does not parse: %v", query, o.Canonical(), err)
		}
		back, err := ParseOptions(canonical)
		if err != nil || back.Canonical() != o.Canonical() {
			t.Fatalf("%q: canonical %q parses to %q (%v)", query, o.Canonical(), back.Canonical(), err)
		}
		src := Size{1 + abs(w)%20000, 1 + abs(h)%20000}
		plan, err := NewPlan(src, o)
		if err != nil {
			if prism.StatusOf(err) != 400 {
				t.Fatalf("%q on %v: %v", query, src, err)
			}
			return
		}
		for _, s := range []Size{plan.Resized, plan.Canvas, {plan.Window.W, plan.Window.H}, {plan.Crop.W, plan.Crop.H}} {
			if s.W < 1 || s.H < 1 || s.W > max(src.W, MaxDimension) || s.H > max(src.H, MaxDimension) {
				t.Fatalf("%q on %v: plan %+v is out of bounds", query, src, plan)
			}
		}
		if c := plan.SourceCrop(); c.X < 0 || c.Y < 0 || c.X+c.W > src.W || c.Y+c.H > src.H {
			t.Fatalf("%q on %v: crop %+v outside the source", query, src, c)
		}
	})
}

// Any bytes are an image Prism reads, or a typed 4xx: Sniff, Probe and
// Process never panic and never fail untyped.
func FuzzImageBytes(f *testing.F) {
	for _, name := range []string{"concert.jpg", "with-alpha.png", "grey-plus-alpha.gif", "rotating-squares.gif",
		"5_webp_a.webp", "circle.svg", "320x240.bmp", "truncated.png", "p3.png", "320x240.heic", "relax.jp2", "pitm.avif"} {
		data, err := os.ReadFile(filepath.Join(testutil.Root(), "testdata", "images", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// Small sources keep each run short and two fuzz workers' memory low:
	// a mutated header can claim anything up to the limit.
	cfg := DefaultConfig
	cfg.MaxSourcePixels = 4_000_000
	p := NewProcessor(cfg)
	o := Options{Mode: ModeFit, Width: 32, Height: 32}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = Sniff(data)
		_ = SniffHead(data)
		if _, err := Probe(data); err != nil {
			want4xx(t, "Probe", err)
			return
		}
		for _, format := range []Format{"", PNG} {
			o.Format = format
			// A deadline, so that a hang is a finding (a 503), not a stall.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			_, err := p.Process(ctx, data, o, Accepts{})
			cancel()
			if err != nil {
				want4xx(t, "Process", err)
			}
		}
	})
}

func want4xx(t *testing.T, what string, err error) {
	t.Helper()
	pe, ok := err.(*prism.Error)
	if !ok || pe.Status < 400 || pe.Status > 499 {
		t.Fatalf("%s: %T %v, want a *prism.Error with a 4xx status", what, err, err)
	}
}
