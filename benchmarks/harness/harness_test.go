package harness

import (
	"cmp"
	"context"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prism-image/prism/internal/testutil"
)

// TestSmokeLoadbench runs the whole harness briefly against the compiled
// server, with the same binary as a baseline peer, so that make bench cannot
// rot. It checks the report's shape and the consistency of its numbers,
// never timings or targets.
func TestSmokeLoadbench(t *testing.T) {
	bin, err := testutil.BuildBinary("./cmd/server", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "RESULTS.md")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr strings.Builder
	code := Main(ctx, []string{
		"-server", bin, "-baseline", bin, "-out", out, "-duration", "300ms",
		"-clients", "4", "-uncached-clients", "2", "-overload-clients", "4", "-upload-clients", "1", "-limit-multiples", "1,2",
		"-recovery-wait", "2s", "-quality-widths", "64", "-quality-runs", "1",
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("loadbench exited %d:\n%s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	if strings.TrimSpace(stdout.String()) != strings.TrimSpace(md) {
		t.Errorf("the table printed differs from the one written:\n%s\n---\n%s", stdout.String(), md)
	}

	for _, field := range []string{"| date |", "| CPU model |", "| cores |", "| Go version |", "| libvips version |", "| flags |", "| idle RSS |", "**Headline:", "## Targets"} {
		if !strings.Contains(md, field) {
			t.Errorf("the report has no %q:\n%s", field, md)
		}
	}
	if !strings.Contains(md, "-duration 300ms") || !strings.Contains(md, "-limit-multiples 1,2") {
		t.Errorf("the flags are not quoted:\n%s", md)
	}
	if m := regexp.MustCompile(`\| idle RSS \| (\d+) MB`).FindStringSubmatch(md); m == nil || atoi(t, m[1]) <= 0 {
		t.Errorf("no idle RSS: %q", m)
	}

	cores := runtime.NumCPU()
	limits := rows(md, "## The limits")
	main := rows(md, "## Prism against the libvips limit")
	codes := map[string]string{}
	status := regexp.MustCompile(`(\d{3}): (\d+)`)
	for _, name := range Scenarios() {
		if len(main[name]) != 1 {
			t.Errorf("%d rows for %s:\n%s", len(main[name]), name, md)
			continue
		}
		cells := append([]string{name}, main[name][0]...)
		// scenario | clients | limit | req/s | ratio | limit CPU | CPU | limit bytes | bytes | p50 | p99 | statuses | errors | timeouts | cache | peak RSS
		if len(cells) != 16 {
			t.Errorf("%s: %d cells, want 16: %q", name, len(cells), cells)
			continue
		}
		// Drop the CPU columns: the rest read as before.
		cpu := cells[5:7]
		cells = append(cells[:5:5], cells[7:]...)
		p50, p99 := atof(t, cells[7]), atof(t, cells[8])
		if !(0 < p50 && p50 <= p99) {
			t.Errorf("%s: percentiles out of order: p50 %v, p99 %v", name, p50, p99)
		}
		requests := 0
		for _, m := range status.FindAllStringSubmatch(cells[9], -1) {
			requests += atoi(t, m[2])
		}
		if requests == 0 || atof(t, cells[3]) <= 0 {
			t.Errorf("%s: no success: %q at %s/s", name, cells[9], cells[3])
		}
		if rss := strings.TrimSuffix(cells[13], " MB"); atof(t, rss) <= 0 {
			t.Errorf("%s: peak RSS %q", name, cells[13])
		}
		codes[name] = cells[9]
		// Every scenario that does libvips work has its limit, at each
		// goroutine count tried, and a ratio that is the quotient.
		if name == CachedHits || name == Revalidation {
			if cells[2] != "—" || cells[4] != "—" {
				t.Errorf("%s: a limit for no libvips work: %q", name, cells)
			}
			continue
		}
		m := regexp.MustCompile(`^([\d.]+) \((\d+)(?: and (\d+))? goroutines\)$`).FindStringSubmatch(cells[2])
		if m == nil {
			t.Errorf("%s: no limit: %q", name, cells[2])
			continue
		}
		if want := atof(t, cells[3]) / atof(t, m[1]); math.Abs(atof(t, cells[4])-want) > 0.02+want*0.05 {
			t.Errorf("%s: ratio %s, but %s / %s = %.2f", name, cells[4], cells[3], m[1], want)
		}
		if name == Overload {
			continue // the first transform's limit
		}
		for _, c := range m[2:] {
			if g := atoi(t, cmp.Or(c, m[2])); g != cores && g != 2*cores {
				t.Errorf("%s: limit at %d goroutines, tried %d and %d", name, g, cores, 2*cores)
			}
		}
		if name != Uploads && (atof(t, cells[5]) <= 0 || atof(t, cells[6]) <= 0) {
			t.Errorf("%s: bytes %q and %q", name, cells[5], cells[6])
		}
		if atof(t, cpu[0]) <= 0 || atof(t, cpu[1]) <= 0 {
			t.Errorf("%s: CPU ms per image %q and %q", name, cpu[0], cpu[1])
		}
		var counts []int
		for _, l := range limits[name] {
			// goroutines | images | images/s | p50 | p99
			counts = append(counts, atoi(t, l[0]))
			if atoi(t, l[1]) == 0 || atof(t, l[2]) <= 0 || atof(t, l[3]) > atof(t, l[4]) {
				t.Errorf("%s: limit row %q", name, l)
			}
		}
		if !slices.Equal(counts, []int{cores, 2 * cores}) {
			t.Errorf("%s: limits at %v goroutines, want %d and %d", name, counts, cores, 2*cores)
		}
	}

	// Whatever the speed, the revalidations get 304s and the uploads 201s.
	if !strings.Contains(codes[Revalidation], "304: ") {
		t.Errorf("no 304 among the revalidations: %q", codes[Revalidation])
	}
	if !strings.Contains(codes[Uploads], "201: ") {
		t.Errorf("no upload succeeded: %q", codes[Uploads])
	}
	peers := rows(md, "## Beside other servers")
	for i := range Transforms {
		// server | req/s | Prism / it | its CPU | CPU ratio | its bytes | bytes ratio | p50 | p99 | statuses | its peak RSS
		if p := peers[UncachedName(i)]; len(p) != 1 || p[0][0] != "baseline" || !strings.Contains(p[0][9], "200: ") || atof(t, p[0][3]) <= 0 {
			t.Errorf("%s: the baseline's row is %q", UncachedName(i), p)
		}
	}
	targets, encoders, _ := strings.Cut(md[strings.Index(md, "## Targets"):], "## Encoders")
	// Per uncached transform: its ratio, and its bytes and quality against
	// the baseline; then 6 for the cached, 304 and overload scenarios.
	if n := len(regexp.MustCompile(`(?m)^\| [^w-].*\| (met|not met) \|$`).FindAllString(targets, -1)); n != 3*len(Transforms)+6 {
		t.Errorf("%d targets, want %d:\n%s", n, 3*len(Transforms)+6, targets)
	}
	// Every transform's output judged, Prism's in process and the
	// baseline's over HTTP, and both effort sweeps.
	for _, tr := range Transforms {
		for _, who := range []string{"prism", "baseline (HTTP)"} {
			row := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(tr.Name) + ` w=64 \| ` + regexp.QuoteMeta(who) + ` \| 64×\d+ \| ` + string(tr.Format) + ` \|.* \| (\d+) \| [\d.]+ \| [—\d.]+ \| ([\d.]+) \|$`)
			if m := row.FindStringSubmatch(encoders); m == nil || atoi(t, m[1]) == 0 || atof(t, m[2]) <= 0 {
				t.Errorf("no judged row for %s by %s:\n%s", tr.Name, who, encoders)
			}
		}
	}
	for _, sweep := range []string{"**AVIF effort**", "**WEBP effort**"} {
		if !strings.Contains(encoders, sweep) {
			t.Errorf("no %s sweep:\n%s", sweep, encoders)
		}
	}
	t.Logf("\n%s", md)
}

// rows maps each row of the table under heading whose first cell names a
// scenario to the rest of its cells, one slice a row.
func rows(md, heading string) map[string][][]string {
	rows := map[string][][]string{}
	_, section, ok := strings.Cut(md, heading+"\n")
	if !ok {
		return rows
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for line := range strings.SplitSeq(section, "\n") {
		if !strings.HasPrefix(line, "| (") {
			continue
		}
		var cells []string
		for c := range strings.SplitSeq(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows[cells[0]] = append(rows[cells[0]], cells[1:])
	}
	return rows
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not an integer", s)
	}
	return n
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return f
}

func TestDistinctVariant(t *testing.T) {
	seen := map[[2]int]bool{}
	for n := range int64(16_400) {
		w, step := DistinctVariant(n)
		if w < 300 || w > 700 || w == 400 || step < -20 || step > 20 {
			t.Fatalf("variant %d: w=%d step %d", n, w, step)
		}
		if seen[[2]int{w, step}] {
			t.Fatalf("variant %d (w=%d step %d) repeats", n, w, step)
		}
		seen[[2]int{w, step}] = true
	}
	for _, c := range []struct {
		n       int64
		w, step int
	}{{0, 300, 0}, {1, 458, 0}, {3, 371, 0}, {400, 300, 1}, {800, 300, -1}} {
		if w, step := DistinctVariant(c.n); w != c.w || step != c.step {
			t.Errorf("variant %d is w=%d step %d, want w=%d step %d", c.n, w, step, c.w, c.step)
		}
	}
}

// TestDistinctVariantSpread: any few dozen consecutive variants ask for
// widths of about the same mean, wherever the run starts.
func TestDistinctVariantSpread(t *testing.T) {
	for _, start := range []int64{0, 37, 200, 399, 1000} {
		sum := 0
		for n := start; n < start+50; n++ {
			w, _ := DistinctVariant(n)
			sum += w
		}
		if mean := float64(sum) / 50; mean < 470 || mean > 530 {
			t.Errorf("50 variants from %d: mean width %.0f, far from 500", start, mean)
		}
	}
}

func TestTransformQuery(t *testing.T) {
	for _, c := range []struct {
		t    Transform
		want string
	}{
		{Transforms[0], "quality=80&w=512"},
		{Transforms[2], "fm=webp&quality=80&w=512"},
		{Transforms[3], "fm=avif&quality=80&w=512"},
		{Transforms[4], "quality=80&w=512"},
	} {
		if got := c.t.query(512, 80); got != c.want {
			t.Errorf("%s: %q, want %q", c.t.Name, got, c.want)
		}
	}
	// imgproxy's URL for the same variant: fit to the width, never
	// enlarged, at the quality, in the format.
	if got, want := imgproxyPath(Transforms[3], 512, 61), "/insecure/rs:fit:512:0/q:61/plain/local:///bench/2569067123_aca715a2ee_o.jpg@avif"; got != want {
		t.Errorf("imgproxy path %q, want %q", got, want)
	}
}

func TestVariantPoolReusesRefusedNumbers(t *testing.T) {
	var p variantPool
	a, b := p.take(), p.take()
	p.give(a) // refused with 429: never rendered
	if c, d := p.take(), p.take(); a != 0 || b != 1 || c != 0 || d != 2 {
		t.Fatalf("took %d, %d, then %d, %d after giving back %d", a, b, c, d, a)
	}
}

func TestLimitsBest(t *testing.T) {
	at := func(g, images int) Limit {
		return Limit{Goroutines: g, Images: images, Window: time.Second, InWindow: float64(images)}
	}
	for _, c := range []struct {
		name        string
		limits      Limits
		rate        float64 // images/s
		goroutines  int
		countsShown string
	}{
		{"one measurement each: the fastest", Limits{at(2, 10), at(4, 12)}, 12, 4, "4"},
		{"both halves choose 4: its rate over both",
			Limits{halved(at(2, 10), at(2, 10)), halved(at(4, 12), at(4, 14))}, 13, 4, "4"},
		// The first half finds 4 fastest, the second 2: 4's second half
		// and 2's first, never the figure that chose a count.
		{"the halves disagree: crosswise",
			Limits{halved(at(2, 10), at(2, 13)), halved(at(4, 12), at(4, 11))}, 10.5, 0, "4 and 2"},
		{"nothing done: no limit", Limits{halved(at(2, 0), at(2, 0)), halved(at(4, 0), at(4, 3))}, 0, 0, "0"},
		{"no limits", nil, 0, 0, "0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			best := c.limits.Best()
			if best.PerSecond() != c.rate || best.Goroutines != c.goroutines || best.countsText() != c.countsShown {
				t.Errorf("Best() = %.2f images/s at %d goroutines (%q), want %.2f at %d (%q)",
					best.PerSecond(), best.Goroutines, best.countsText(), c.rate, c.goroutines, c.countsShown)
			}
		})
	}
}

// A scenario driven in parts adds up to one: answers, time, CPU and bytes
// sum, the percentiles are over every answer, the peak is the highest.
func TestResultAdd(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, n := range v {
			d = append(d, time.Duration(n)*time.Millisecond)
		}
		return d
	}
	part := func(lat map[int][]time.Duration, status map[int]int, rss int64) *Result {
		r := &Result{Status: status, Cache: map[string]int{"miss": status[200]}, Elapsed: time.Second,
			CPU: time.Second, Bytes: 100, PeakRSS: rss, latencies: lat, Window: time.Second, OKInWindow: float64(status[200])}
		r.summarise()
		return r
	}
	r := part(map[int][]time.Duration{200: ms(10, 20)}, map[int]int{200: 2}, 50)
	r.add(part(map[int][]time.Duration{200: ms(30), 429: ms(1)}, map[int]int{200: 1, 429: 1}, 70))
	if r.Requests != 4 || r.Status[200] != 3 || r.Status[429] != 1 || r.Cache["miss"] != 3 ||
		r.Elapsed != 2*time.Second || r.CPU != 2*time.Second || r.Bytes != 200 || r.PeakRSS != 70 {
		t.Errorf("added: %+v", r)
	}
	if r.P50 != 10*time.Millisecond || r.P99 != 30*time.Millisecond || r.ByStatus[200].P50 != 20*time.Millisecond || r.OKPerSecond() != 1.5 {
		t.Errorf("percentiles p50 %v p99 %v, 200s' p50 %v, %v OK/s", r.P50, r.P99, r.ByStatus[200].P50, r.OKPerSecond())
	}
}

func TestShareIn(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	for _, c := range []struct {
		name             string
		t0, t1, deadline int // ms
		want             float64
	}{
		{"ended before the deadline", 0, 100, 200, 1},
		{"ended at the deadline", 100, 200, 200, 1},
		{"a quarter before it", 150, 350, 200, 0.25},
		{"started at it", 200, 300, 200, 0},
		{"started after it", 250, 300, 200, 0},
	} {
		if got := shareIn(at(c.t0), at(c.t1), at(c.deadline)); got != c.want {
			t.Errorf("%s: shareIn = %v, want %v", c.name, got, c.want)
		}
	}
}
