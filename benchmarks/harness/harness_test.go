package harness

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prism-image/prism/internal/testutil"
)

// TestSmokeLoadbench runs the whole harness briefly against the compiled
// server, so that make bench cannot rot. It checks the report's shape and
// the consistency of its numbers, never timings or targets.
func TestSmokeLoadbench(t *testing.T) {
	bin, err := testutil.BuildBinary("./cmd/server", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "RESULTS.md")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr strings.Builder
	code := Main(ctx, []string{
		"-server", bin, "-out", out, "-duration", "500ms",
		"-clients", "4", "-uncached-clients", "2", "-overload-clients", "4", "-upload-clients", "1", "-limit-workers", "2",
		"-recovery-wait", "2s",
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
	if !strings.Contains(md, "-duration 500ms") {
		t.Errorf("the flags are not quoted:\n%s", md)
	}
	// goroutines | images | images/s | p50 | p99
	limit := regexp.MustCompile(`(?m)^\| 2 \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$`).FindStringSubmatch(md)
	if limit == nil || atoi(t, limit[1]) == 0 || atof(t, limit[2]) <= 0 || atof(t, limit[3]) > atof(t, limit[4]) {
		t.Errorf("no sane row for the in-process limit: %q\n%s", limit, md)
	}
	if m := regexp.MustCompile(`\| idle RSS \| (\d+) MB`).FindStringSubmatch(md); m == nil || atoi(t, m[1]) <= 0 {
		t.Errorf("no idle RSS: %q", m)
	}

	rows := scenarioRows(md)
	codes := map[string]string{}
	status := regexp.MustCompile(`(\d{3}): (\d+)`)
	for _, name := range Scenarios {
		cells, ok := rows[name]
		if !ok {
			t.Errorf("no row for %s:\n%s", name, md)
			continue
		}
		// scenario | clients | requests | req/s | p50 | p95 | p99 | statuses | errors | timeouts | cache | peak RSS
		if len(cells) != 12 {
			t.Errorf("%s: %d cells, want 12: %q", name, len(cells), cells)
			continue
		}
		requests := atoi(t, cells[2])
		perSec, p50, p95, p99 := atof(t, cells[3]), atof(t, cells[4]), atof(t, cells[5]), atof(t, cells[6])
		if requests <= 0 || perSec <= 0 {
			t.Errorf("%s: %d requests at %v/s", name, requests, perSec)
		}
		if !(0 < p50 && p50 <= p95 && p95 <= p99) {
			t.Errorf("%s: percentiles out of order: p50 %v, p95 %v, p99 %v", name, p50, p95, p99)
		}
		sum := 0
		for _, m := range status.FindAllStringSubmatch(cells[7], -1) {
			sum += atoi(t, m[2])
		}
		if sum != requests {
			t.Errorf("%s: status codes %q sum to %d, not the %d requests", name, cells[7], sum, requests)
		}
		if rss := strings.TrimSuffix(cells[11], " MB"); atof(t, rss) <= 0 {
			t.Errorf("%s: peak RSS %q", name, cells[11])
		}
		codes[name] = cells[7]
	}

	// Whatever the speed, the revalidations get 304s and the uploads 201s.
	if !strings.Contains(codes[Revalidation], "304: ") {
		t.Errorf("no 304 among the revalidations: %q", codes[Revalidation])
	}
	if !strings.Contains(codes[Uploads], "201: ") {
		t.Errorf("no upload succeeded: %q", codes[Uploads])
	}
	targets := md[strings.Index(md, "## Targets"):]
	if n := len(regexp.MustCompile(`(?m)^\| [^w].*\| (met|not met) \|$`).FindAllString(targets, -1)); n != 7 {
		t.Errorf("%d targets, want 7:\n%s", n, targets)
	}
	t.Logf("\n%s", md)
}

// scenarioRows maps each scenario row of the Markdown to its cells.
func scenarioRows(md string) map[string][]string {
	rows := map[string][]string{}
	for line := range strings.SplitSeq(md, "\n") {
		if !strings.HasPrefix(line, "| (") {
			continue
		}
		var cells []string
		for c := range strings.SplitSeq(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows[cells[0]] = cells
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
		w, q := DistinctVariant(n)
		if w < 200 || w > 600 || w == 400 || q < 60 || q > 100 {
			t.Fatalf("variant %d: w=%d q=%d", n, w, q)
		}
		if seen[[2]int{w, q}] {
			t.Fatalf("variant %d (w=%d q=%d) repeats", n, w, q)
		}
		seen[[2]int{w, q}] = true
	}
	if w, q := DistinctVariant(0); w != 200 || q != 80 {
		t.Fatalf("the first variant is w=%d q=%d", w, q)
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
