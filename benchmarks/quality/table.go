package quality

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prism-image/prism/imaging"
)

// EffortTable is Markdown for an effort sweep (Efforts' rows): for each
// format, a summary with a row per effort, then every case at every
// effort. Bytes and time are compared with the lowest effort swept case by
// case, and the ratios averaged, so that large outputs do not drown small
// ones.
func EffortTable(rows []Row) string {
	var b strings.Builder
	for i, f := range formats(rows) {
		rs := filter(rows, func(r Row) bool { return r.Case.Format == f })
		efforts := distinct(rs, func(r Row) int { return r.Effort })
		slices.Sort(efforts)
		cases := distinct(rs, caseKey)
		at := map[[2]string]Row{} // case key, effort
		for _, r := range rs {
			at[[2]string{caseKey(r), fmt.Sprint(r.Effort)}] = r
		}
		get := func(c string, e int) (Row, bool) {
			r, ok := at[[2]string{c, fmt.Sprint(e)}]
			return r, ok
		}
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "**%s effort** at quality %s, %d case(s): time is the median of the runs, one goroutine; butteraugli distance from an exact Lanczos3 reference (lower is better; ~1 is just noticeable).\n\n",
			strings.ToUpper(string(f)), qualities(rs), len(cases))
		base := efforts[0]
		fmt.Fprintf(&b, "| effort | mean bytes | bytes vs effort %d | mean time ms | time vs effort %d | mean butteraugli | max butteraugli |\n", base, base)
		b.WriteString("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, e := range efforts {
			var bytes, ms, dist, maxDist, bytesRatio, timeRatio float64
			var n, nRatio int
			for _, c := range cases {
				r, ok := get(c, e)
				if !ok {
					continue
				}
				n++
				bytes += float64(r.Bytes)
				ms += millis(r.Time)
				dist += r.Distance
				maxDist = max(maxDist, r.Distance)
				if r0, ok := get(c, base); ok && r0.Bytes > 0 && r0.Time > 0 {
					nRatio++
					bytesRatio += float64(r.Bytes) / float64(r0.Bytes)
					timeRatio += float64(r.Time) / float64(r0.Time)
				}
			}
			if n == 0 {
				continue
			}
			fn, fr := float64(n), float64(max(nRatio, 1))
			fmt.Fprintf(&b, "| %d | %.0f | %s | %s | %s | %.3f | %.3f |\n",
				e, bytes/fn, percent(bytesRatio/fr), num(ms/fn), times(timeRatio/fr), dist/fn, maxDist)
		}
		for i, e1 := range efforts {
			for _, e2 := range efforts[i+1:] {
				if same(cases, e1, e2, get) {
					fmt.Fprintf(&b, "\nEfforts %d and %d made outputs of the same size and distance in every case: the encoder probably got the same setting for both.\n", e1, e2)
				}
			}
		}
		b.WriteString("\nPer case, each cell bytes · ms · butteraugli:\n\n| case | size |")
		for _, e := range efforts {
			fmt.Fprintf(&b, " effort %d |", e)
		}
		b.WriteString("\n| --- | --- |" + strings.Repeat(" ---: |", len(efforts)) + "\n")
		for _, c := range cases {
			var first Row
			for _, e := range efforts {
				if r, ok := get(c, e); ok {
					first = r
					break
				}
			}
			fmt.Fprintf(&b, "| %s | %d×%d |", first.caseName(), first.Width, first.Height)
			for _, e := range efforts {
				if r, ok := get(c, e); ok {
					fmt.Fprintf(&b, " %d · %s · %.3f |", r.Bytes, num(millis(r.Time)), r.Distance)
				} else {
					b.WriteString(" — |")
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// same reports whether efforts e1 and e2 gave equal bytes and distances in
// every case: a setting that never reached the encoder.
func same(cases []string, e1, e2 int, get func(string, int) (Row, bool)) bool {
	for _, c := range cases {
		r1, ok1 := get(c, e1)
		r2, ok2 := get(c, e2)
		if !ok1 || !ok2 || r1.Bytes != r2.Bytes || r1.Distance != r2.Distance {
			return false
		}
	}
	return len(cases) > 0
}

// QualityTable is Markdown for Measure's rows, one line a row.
func QualityTable(rows []Row) string {
	var b strings.Builder
	b.WriteString("| case | pipeline | size | format | quality | effort | bytes | bits/pixel | time ms | butteraugli |\n")
	b.WriteString("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		pipeline, q, e := "prism", "lossless", "—"
		switch {
		case r.Server != "":
			pipeline = r.Server + " (HTTP)"
		case r.Case.Thumbnail:
			pipeline = "vips thumbnail"
		}
		if r.Case.Format != imaging.PNG {
			q = fmt.Sprint(r.Case.Quality)
		}
		if (r.Case.Format == imaging.AVIF || r.Case.Format == imaging.WebP) && r.Server == "" {
			e = fmt.Sprint(r.Effort) // a server's is its own business
		}
		bpp := 0.0
		if px := r.Width * r.Height; px > 0 {
			bpp = float64(r.Bytes) * 8 / float64(px)
		}
		fmt.Fprintf(&b, "| %s | %s | %d×%d | %s | %s | %s | %d | %.2f | %s | %.3f |\n",
			r.caseName(), pipeline, r.Width, r.Height, r.Case.Format, q, e, r.Bytes, bpp, timeText(r.Time), r.Distance)
	}
	return b.String()
}

// caseName is the case's name, with the width asked for unless the name
// already says it.
func (r Row) caseName() string {
	n := r.Case.name()
	if w := fmt.Sprintf("w=%d", r.Case.Width); !strings.Contains(n, w) {
		n += " " + w
	}
	return n
}

// caseKey identifies a case across efforts.
func caseKey(r Row) string {
	return fmt.Sprintf("%s\x00%s\x00%d\x00%d\x00%t", r.Case.Name, r.Case.Source, r.Case.Width, r.Case.Quality, r.Case.Thumbnail)
}

func formats(rows []Row) []imaging.Format {
	return distinct(rows, func(r Row) imaging.Format { return r.Case.Format })
}

// qualities lists the qualities rows ran at: "60", or "60, 80".
func qualities(rows []Row) string {
	qs := distinct(rows, func(r Row) int { return r.Case.Quality })
	slices.Sort(qs)
	s := make([]string, len(qs))
	for i, q := range qs {
		s[i] = fmt.Sprint(q)
	}
	return strings.Join(s, ", ")
}

// distinct is key of each row, first occurrences in order.
func distinct[K comparable](rows []Row, key func(Row) K) []K {
	var out []K
	seen := map[K]bool{}
	for _, r := range rows {
		if k := key(r); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func filter(rows []Row, keep func(Row) bool) []Row {
	var out []Row
	for _, r := range rows {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// timeText is a row's time, "—" when it was judged only.
func timeText(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return num(millis(d))
}

// num is a time in ms with three significant figures at most.
func num(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f", ms)
	default:
		return fmt.Sprintf("%.2f", ms)
	}
}

// percent is a ratio as a signed change: "−12.3 %", "+0.0 %".
func percent(ratio float64) string {
	if math.IsNaN(ratio) || ratio == 0 {
		return "—"
	}
	return fmt.Sprintf("%+.1f %%", (ratio-1)*100)
}

// times is a ratio as a multiple: "2.31×".
func times(ratio float64) string {
	if math.IsNaN(ratio) || ratio == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", ratio)
}
