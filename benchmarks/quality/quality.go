// Package quality measures what Prism's encoders make: the bytes, the time
// and the perceived quality of an output, the last judged by an independent
// tool, Debian's butteraugli, against a reference computed apart from the
// pipeline. It is a benchmark, not a test of Prism: callers start libvips
// first (imaging.Startup), and the Markdown tables are for
// benchmarks/RESULTS.md.
//
// For each case the candidate is Prism's output (imaging.Processor.Process
// with w, fm and quality), or with Case.Thumbnail libvips' own thumbnail
// path (vips_thumbnail, then Processor.Save with Prism's save parameters).
// The reference is the source decoded in full by libvips (no shrink on
// load), converted to 8-bit sRGB (through any embedded ICC profile, which
// for the sRGB-tagged 17.6 MP photo changes no pixel; grey to three equal
// bands, as butteraugli would read it anyway; alpha flattened onto white),
// then resized to exactly the candidate's width × height by an
// exact separable Lanczos3 written here, in float, rounded once. The
// resize is not libvips': vips_resize, which govips' ResizeWithVScale
// calls, keeps its default gap of 2.0 and box-shrinks by an integer factor
// before its Lanczos3 whenever it reduces 4× or more, and govips cannot
// change that. On the 17.6 MP photo at 400 px wide the gap alone moves
// butteraugli by 0.36, a third of a just-noticeable difference, so a
// reference made that way would not be exact. References are computed
// once per source and size in a temporary directory for the call, which
// is removed when it returns.
//
// The reference maps the whole source onto exactly the output's pixels,
// so a distance counts geometry as well as compression, and butteraugli,
// which reports the worst place in the image, is very sensitive to
// geometry: a few tenths of a pixel of drift towards one edge cost it
// several units. libvips' thumbnail scales both axes by one factor, so its
// grid differs slightly from the reference's; a decode shrunk on load
// (libvips' jpegload with shrink gives floor(width/shrink) pixels) lacks
// the source's last width mod shrink columns and rows, which a pipeline
// must not stretch the rest over (Prism scales from the source's true
// extent). Compare rows of one geometry (the efforts or qualities of one
// case, one server against another), with the lossless PNG of the same
// case as the floor.
//
// # The judge
//
// butteraugli (Debian package butteraugli 0~20170116-3, Google's 2017
// code) is run as
//
//	butteraugli reference.png candidate.png
//
// It reads PNG or JPEG only (JPEG by its FF D8 magic, anything else as
// PNG), takes 8 bits per channel as sRGB whatever the file says, expands
// grey to RGB, and refuses a pair whose channel counts (RGB against RGBA)
// or sizes differ: it says so on stderr and exits 1. On success it prints
// the distance alone on stdout ("%lf\n", e.g. "1.083899") and exits 0; an
// optional third argument writes a PPM heat map. The distance is 0 for
// identical images; about 1.0 is the threshold of a just-noticeable
// difference, and the larger the worse. Both sides are therefore handed to
// it as 3-band 8-bit sRGB PNGs with no colour chunks, written by Go's
// image/png. It is single-threaded and slow, and its memory grows with the
// pixels: on the 2-core AMD EPYC this was written on, 0.14 s for a 400×267
// pair, 0.63 s and 77 MB for 800×534, 1.35 s and 167 MB for 1200×801. So
// distances are computed after all timing, GOMAXPROCS at a time.
package quality

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/prism-image/prism/imaging"
)

// Case is one source, output width and format at a quality.
type Case struct {
	Name    string // shown in tables; "" means the source's file name
	Source  string // path of the source image
	Width   int    // requested output width (w=); the height follows the aspect
	Format  imaging.Format
	Quality int // 0 means the configuration's default; ignored for PNG
	// Thumbnail judges libvips' thumbnail path instead of Prism's pipeline:
	// vips.NewThumbnailWithSizeFromBuffer, then Processor.Save.
	Thumbnail bool
}

// Row is one case measured. Row.Case is the case as run: a zero Quality is
// replaced by the default it ran at.
type Row struct {
	Case          Case
	Effort        int // the AVIF or WebP encoder effort; 0 for JPEG and PNG
	Width, Height int // the output's size
	Bytes         int
	Time          time.Duration // median over the runs, one goroutine: Process, or thumbnail and Save; 0 when judged only
	Distance      float64       // butteraugli distance from the reference: 0 identical, ~1 just noticeable
	Server        string        // who made the output when Judge scored it; "" in process
}

// name is the case's name in tables.
func (c Case) name() string {
	if c.Name != "" {
		return c.Name
	}
	return filepath.Base(c.Source)
}

// label names a row in errors.
func (r *Row) label() string {
	return fmt.Sprintf("%s w=%d %s q%d effort %d", r.Case.name(), r.Case.Width, r.Case.Format, r.Case.Quality, r.Effort)
}

// Measure runs each case at cfg's settings (quality defaults, efforts),
// runs times for the median time, and judges its output.
func Measure(ctx context.Context, cfg imaging.Config, cases []Case, runs int) ([]Row, error) {
	j, err := newJudge()
	if err != nil {
		return nil, err
	}
	defer j.close()
	rows, cands, err := encode(ctx, cfg, cases, runs)
	if err != nil {
		return nil, err
	}
	if err := j.score(ctx, cands); err != nil {
		return nil, err
	}
	return deref(rows), nil
}

// Judge scores outputs made elsewhere, outputs[i] being server's answer to
// cases[i] (another Prism, imgproxy): their bytes and distance, no time.
func Judge(ctx context.Context, server string, cases []Case, outputs [][]byte) ([]Row, error) {
	if len(cases) != len(outputs) {
		return nil, fmt.Errorf("quality: %d outputs for %d cases", len(outputs), len(cases))
	}
	j, err := newJudge()
	if err != nil {
		return nil, err
	}
	defer j.close()
	rows := make([]*Row, len(cases))
	cands := make([]candidate, len(cases))
	for i, c := range cases {
		img, err := vips.NewImageFromBuffer(outputs[i])
		if err != nil {
			return nil, fmt.Errorf("quality: %s's answer to %s w=%d: %w", server, c.name(), c.Width, err)
		}
		rows[i] = &Row{Case: c, Width: img.Width(), Height: img.Height(), Bytes: len(outputs[i]), Server: server}
		img.Close()
		cands[i] = candidate{row: rows[i], data: outputs[i]}
	}
	if err := j.score(ctx, cands); err != nil {
		return nil, err
	}
	return deref(rows), nil
}

// Efforts measures every case at each of efforts for format (AVIF: 1–9,
// WebP: 0–6), every other setting at imaging.DefaultConfig; every case
// must be in format. Rows come effort by effort, cases in order.
//
// An AVIF effort of 0 never reaches libvips through govips v2.19.0, which
// passes effort (and bitdepth) to heifsave only when it is non-zero
// (libvips then uses its default, 4), so it is refused. EffortTable points
// out efforts whose outputs came out the same.
func Efforts(ctx context.Context, cases []Case, format imaging.Format, efforts []int, runs int) ([]Row, error) {
	lo, hi := map[imaging.Format]int{imaging.AVIF: 1}[format], map[imaging.Format]int{imaging.AVIF: 9, imaging.WebP: 6}[format]
	if hi == 0 {
		return nil, fmt.Errorf("quality: %q has no effort setting; AVIF and WebP have", format)
	}
	for _, e := range efforts {
		if e < lo || e > hi {
			return nil, fmt.Errorf("quality: %s effort %d is outside %d–%d", format, e, lo, hi)
		}
	}
	for _, c := range cases {
		if c.Format != format {
			return nil, fmt.Errorf("quality: case %s is %q, not %q", c.name(), c.Format, format)
		}
	}
	j, err := newJudge()
	if err != nil {
		return nil, err
	}
	defer j.close()
	var rows []*Row
	var cands []candidate
	for _, e := range efforts {
		cfg := imaging.DefaultConfig
		if format == imaging.AVIF {
			cfg.Effort.AVIF = e
		} else {
			cfg.Effort.WebP = e
		}
		r, c, err := encode(ctx, cfg, cases, runs)
		if err != nil {
			return nil, err
		}
		rows, cands = append(rows, r...), append(cands, c...)
	}
	if err := j.score(ctx, cands); err != nil {
		return nil, err
	}
	return deref(rows), nil
}

func deref(rows []*Row) []Row {
	out := make([]Row, len(rows))
	for i, r := range rows {
		out[i] = *r
	}
	return out
}

var errNoRuns = errors.New("quality: runs must be at least 1")

// encode runs every case runs times at cfg, one at a time, and keeps the
// last output of each for the judge.
func encode(ctx context.Context, cfg imaging.Config, cases []Case, runs int) ([]*Row, []candidate, error) {
	if runs < 1 {
		return nil, nil, errNoRuns
	}
	p := imaging.NewProcessor(cfg)
	sources := map[string][]byte{}
	var rows []*Row
	var cands []candidate
	for _, c := range cases {
		src, ok := sources[c.Source]
		if !ok {
			var err error
			if src, err = os.ReadFile(c.Source); err != nil {
				return nil, nil, fmt.Errorf("quality: %w", err)
			}
			sources[c.Source] = src
		}
		row := &Row{Case: c}
		switch c.Format {
		case imaging.JPEG:
			row.Case.Quality = cmp.Or(c.Quality, cfg.Quality.JPEG)
		case imaging.WebP:
			row.Case.Quality, row.Effort = cmp.Or(c.Quality, cfg.Quality.WebP), cfg.Effort.WebP
		case imaging.AVIF:
			row.Case.Quality, row.Effort = cmp.Or(c.Quality, cfg.Quality.AVIF), cfg.Effort.AVIF
		case imaging.PNG:
			row.Case.Quality = 0
		default:
			return nil, nil, fmt.Errorf("quality: case %s: format %q is not jpeg, webp, avif or png", c.name(), c.Format)
		}
		var times []time.Duration
		var data []byte
		for range runs {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			start := time.Now()
			var err error
			data, row.Width, row.Height, err = run(ctx, p, src, row.Case)
			times = append(times, time.Since(start))
			if err != nil {
				return nil, nil, fmt.Errorf("quality: encoding %s: %w", row.label(), err)
			}
		}
		slices.Sort(times)
		row.Time = times[(len(times)-1)/2]
		row.Bytes = len(data)
		rows = append(rows, row)
		cands = append(cands, candidate{row: row, data: data})
	}
	return rows, cands, nil
}

// run makes c's output once: the work that is timed.
func run(ctx context.Context, p *imaging.Processor, src []byte, c Case) (data []byte, w, h int, err error) {
	if c.Thumbnail {
		img, err := vips.NewThumbnailWithSizeFromBuffer(src, c.Width, 10_000_000, vips.InterestingNone, vips.SizeDown)
		if err != nil {
			return nil, 0, 0, err
		}
		defer img.Close()
		data, err := p.Save(img, c.Format, c.Quality)
		return data, img.Width(), img.Height(), err
	}
	q := url.Values{"w": {strconv.Itoa(c.Width)}, "fm": {string(c.Format)}}
	if c.Quality > 0 {
		q.Set("quality", strconv.Itoa(c.Quality))
	}
	o, err := imaging.ParseOptions(q)
	if err != nil {
		return nil, 0, 0, err
	}
	enc, err := p.Process(ctx, src, o, imaging.Accepts{})
	if err != nil {
		return nil, 0, 0, err
	}
	if enc.Format != c.Format {
		return nil, 0, 0, fmt.Errorf("asked for %s, got %s", c.Format, enc.Format)
	}
	return enc.Data, enc.Width, enc.Height, nil
}
