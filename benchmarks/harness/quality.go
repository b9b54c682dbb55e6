package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/prism-image/prism/benchmarks/quality"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/internal/testutil"
)

// encoderCases are the uncached transforms' outputs at each width, as the
// quality package runs them; the quality of PNG is its default (none).
func encoderCases(widths []int) []quality.Case {
	var cases []quality.Case
	for _, t := range Transforms {
		for _, w := range widths {
			q := t.Quality
			if t.Format == imaging.PNG {
				q = 0
			}
			cases = append(cases, quality.Case{
				Name: t.Name, Source: filepath.Join(testutil.Root(), "testdata", "images", t.Source),
				Width: w, Format: t.Format, Quality: q,
			})
		}
	}
	return cases
}

// Quality is the encoders' figures: Prism's at its defaults, the same
// variants from every peer, and the AVIF and WebP effort sweeps.
type Quality struct {
	Defaults []quality.Row // Prism in process, then each peer over HTTP
	Efforts  []quality.Row
}

// measureQuality judges Prism's outputs of the encoder cases, each peer's
// answers to the same variants, and the effort sweeps.
func measureQuality(ctx context.Context, cfg Config, d *driver, peers []peer, logf func(string, ...any)) (*Quality, error) {
	cases := encoderCases(cfg.QualityWidths)
	logf("encoders: %d cases at the defaults", len(cases))
	rows, err := quality.Measure(ctx, imaging.DefaultConfig, cases, cfg.QualityRuns)
	if err != nil {
		return nil, err
	}
	q := &Quality{Defaults: rows}
	for _, p := range peers {
		outputs := make([][]byte, len(cases))
		for i, c := range cases {
			t := transformOf(c)
			asked := c.Quality
			if asked == 0 {
				asked = t.Quality // the URL's, which PNG ignores
			}
			if outputs[i], err = d.fetch(ctx, p.proc.URL+p.path(t, c.Width, asked)); err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
		}
		rows, err := quality.Judge(ctx, p.name, cases, outputs)
		if err != nil {
			return nil, err
		}
		q.Defaults = append(q.Defaults, rows...)
	}
	for _, sweep := range []struct {
		format  imaging.Format
		efforts []int
	}{
		{imaging.AVIF, []int{1, 2, 3, 4}}, // 0 cannot reach libvips through govips
		{imaging.WebP, []int{0, 1, 2, 3, 4, 5, 6}},
	} {
		sc := effortCases(cases, sweep.format)
		logf("encoders: %s efforts %v on %d cases", sweep.format, sweep.efforts, len(sc))
		rows, err := quality.Efforts(ctx, sc, sweep.format, sweep.efforts, cfg.QualityRuns)
		if err != nil {
			return nil, err
		}
		q.Efforts = append(q.Efforts, rows...)
	}
	return q, nil
}

// effortCases are the cases of format, and the same of the 17.6 MP photo
// when they are not of it already: its smooth areas are where a higher
// effort saves bytes.
func effortCases(cases []quality.Case, format imaging.Format) []quality.Case {
	var out []quality.Case
	photo := filepath.Join(testutil.Root(), "testdata", "images", PhotoName)
	for _, c := range cases {
		if c.Format != format {
			continue
		}
		out = append(out, c)
		if c.Source != photo {
			c.Name, c.Source = fmt.Sprintf("17.6 MP JPEG → %s q%d", strings.ToUpper(string(format)), c.Quality), photo
			out = append(out, c)
		}
	}
	return out
}

// transformOf is the uncached transform a quality case was made from.
func transformOf(c quality.Case) Transform {
	for _, t := range Transforms {
		if t.Name == c.Name {
			return t
		}
	}
	panic("harness: no transform named " + c.Name)
}

// fetch GETs url and returns its 200 body.
func (d *driver) fetch(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: status %d: %.200s", url, resp.StatusCode, body)
	}
	return body, err
}

// of sums the bytes and the mean butteraugli distance of the rows of
// transform name made by server ("" for Prism in process); n is how many.
func (q *Quality) of(name, server string) (bytes int, distance float64, n int) {
	for _, r := range q.Defaults {
		if r.Case.Name == name && r.Server == server {
			bytes += r.Bytes
			distance += r.Distance
			n++
		}
	}
	if n > 0 {
		distance /= float64(n)
	}
	return bytes, distance, n
}

// markdown is the report's section on the encoders.
func (q *Quality) markdown(widths []int, runs int) string {
	var b strings.Builder
	b.WriteString("## Encoders: bytes, time and quality\n\n")
	fmt.Fprintf(&b, "Each uncached transform's output at widths %s, judged by Debian's `butteraugli` (an independent measure: distance from an exact Lanczos3 reference computed in float from the fully decoded source; lower is better, about 1 is just noticeable; it reports the worst place in the image). Time is the median of %d runs in process, one goroutine; peers' outputs are fetched over HTTP and judged alike. See benchmarks/quality.\n\n", (*ints)(&widths).String(), runs)
	b.WriteString(quality.QualityTable(q.Defaults))
	b.WriteString("\n### Effort\n\n")
	b.WriteString(quality.EffortTable(q.Efforts))
	return b.String()
}
