package harness

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/prism-image/prism/imaging"
)

// Report is one run's figures and the machine they were measured on.
type Report struct {
	Date      time.Time
	CPU       string // model name from /proc/cpuinfo
	LoadAvg   string // /proc/loadavg's 1, 5 and 15 minute load when the run started
	Cores     int
	GoVersion string // the harness's toolchain
	ServerGo  string // the toolchain that built the server, when readable
	Vips      string // libvips, as govips was built against it
	Server    string // the binary
	ServerEnv []string
	Flags     string
	Config    Config
	IdleRSS   int64     // bytes, before the first scenario
	Scenarios []*Result // Prism's, in the order of Scenarios()
	Peers     []*Result // other servers' uncached scenarios
	Recovery  Recovery
	Quality   *Quality // the encoders' bytes and quality, when measured
}

func newReport(cfg Config, serverPath string) *Report {
	r := &Report{
		Date:      time.Now().UTC(),
		CPU:       cpuModel(),
		LoadAvg:   loadAverage(),
		Cores:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
		Vips:      vips.Version,
		Server:    cfg.Server,
		Flags:     cfg.Flags,
		Config:    cfg,
	}
	if bi, err := buildinfo.ReadFile(serverPath); err == nil {
		r.ServerGo = bi.GoVersion
	}
	// What the server inherits beyond the embedded defaults.
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "PRISM_STORAGE" || name == "PRISM_API_KEYS" || name == "PRISM_ADDR" || name == "MALLOC_ARENA_MAX" {
			continue
		}
		if strings.HasPrefix(name, "PRISM_") || strings.HasPrefix(name, "VIPS_") || strings.HasPrefix(name, "MALLOC_") ||
			name == "GOMEMLIMIT" || name == "GOGC" || name == "GOMAXPROCS" || name == "GODEBUG" {
			r.ServerEnv = append(r.ServerEnv, kv)
		}
	}
	slices.Sort(r.ServerEnv)
	return r
}

// loadAverage says how busy the machine was before the run: figures
// measured beside other work are not the machine's.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH + " (no /proc/cpuinfo)"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// Scenario is Prism's result of the named scenario, or nil.
func (r *Report) Scenario(name string) *Result {
	for _, s := range r.Scenarios {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Uncached is Prism's results of the uncached transforms.
func (r *Report) Uncached() []*Result {
	var rs []*Result
	for i := range Transforms {
		if s := r.Scenario(UncachedName(i)); s != nil {
			rs = append(rs, s)
		}
	}
	return rs
}

// UncachedTarget is the least an uncached transform over HTTP must reach
// of its in-process libvips limit.
const UncachedTarget = 0.97

// Target is one line of the targets, with what this run measured.
type Target struct {
	What, Goal, Measured string
	Met                  bool
	Limit                string // when not met: what this run shows limits it
}

// Targets evaluates the targets. They assume 32 clients for cached hits and
// revalidations and 64 for overload, on the 2-core development machine; the
// measured column says how many clients there were.
func (r *Report) Targets() []Target {
	var ts []Target
	for _, a := range r.Uncached() {
		best := a.Limits.Best()
		ts = append(ts, Target{
			a.Name, fmt.Sprintf("≥ %.2f × its limit", UncachedTarget),
			fmt.Sprintf("%.2f × (%.1f vs %.1f images/s, %d clients)", a.Ratio(), a.OKPerSecond(), best.PerSecond(), a.Clients),
			a.Ratio() >= UncachedTarget, "",
		})
	}
	// Bytes and quality against the baseline, on the same variants.
	for i, t := range Transforms {
		if r.Quality == nil {
			break
		}
		mine, myDist, n := r.Quality.of(t.Name, "")
		theirs, theirDist, m := r.Quality.of(t.Name, "baseline")
		if n == 0 || m == 0 {
			continue
		}
		goal, most := "bytes ≤ the baseline's", 1.0
		if t.Format == imaging.PNG {
			goal, most = "bytes ≤ 0.7 × the baseline's", 0.7
		}
		ratio := float64(mine) / float64(theirs)
		ts = append(ts,
			Target{UncachedName(i) + ": bytes", goal,
				fmt.Sprintf("%.2f × (%d vs %d bytes over the encoder cases)", ratio, mine, theirs), ratio <= most, ""},
			Target{UncachedName(i) + ": quality", "mean butteraugli ≤ the baseline's",
				fmt.Sprintf("%.3f vs %.3f", myDist, theirDist), myDist <= theirDist, ""})
	}
	b, c, d := r.Scenario(CachedHits), r.Scenario(Revalidation), r.Scenario(Overload)
	if b != nil {
		ts = append(ts,
			Target{"Cached hits: throughput", "≥ 10,000 req/s at 32 clients",
				fmt.Sprintf("%.0f req/s (%d clients)", b.StatusPerSecond(200), b.Clients), b.StatusPerSecond(200) >= 10_000, ""},
			Target{"Cached hits: latency", "p99 < 5 ms at 32 clients",
				fmt.Sprintf("p99 %s ms", ms(b.P99)), b.Status[200] > 0 && b.P99 < 5*time.Millisecond, ""},
		)
		if c != nil && c.Status[304] > 0 {
			ts[len(ts)-1].Limit = fmt.Sprintf("the load generator and the server share the machine's %d cores, "+
				"at %.0f req/s: in the same run, 304s, which send no image at all, had p99 %s ms, so the tail is CPU "+
				"scheduling between the two processes rather than the work of serving a cached image", r.Cores,
				b.StatusPerSecond(200), ms(c.P99))
		}
	}
	if b != nil && c != nil {
		ts = append(ts, Target{"304 revalidations", "at least as fast as cached hits",
			fmt.Sprintf("%.0f vs %.0f req/s", c.StatusPerSecond(304), b.StatusPerSecond(200)),
			c.Status[304] > 0 && c.StatusPerSecond(304) >= b.StatusPerSecond(200), ""})
	}
	if d != nil {
		others := d.Requests - d.Status[200] - d.Status[429]
		ts = append(ts,
			Target{"Overload: outcomes", "only 200 and 429: zero 5xx, zero timeouts",
				fmt.Sprintf("%s; %d transport errors, %d timeouts (%d clients)", d.statusText(), d.Errors, d.Timeouts, d.Clients),
				others == 0 && d.Errors == 0 && d.Timeouts == 0, ""},
			Target{"Overload: memory", "peak RSS < 600 MB",
				mb(d.PeakRSS), d.PeakRSS < 600*MB, ""},
			Target{"Overload: recovery", fmt.Sprintf("under %s within 30 s of the load ending", mb(RecoveryRSS)),
				r.recoveryText(), r.Recovery.Recovered && r.Recovery.After <= 30*time.Second, ""},
		)
	}
	return ts
}

func (r *Report) recoveryText() string {
	if r.Recovery.Recovered {
		return fmt.Sprintf("%.1f s (%s)", r.Recovery.After.Seconds(), mb(r.Recovery.Last))
	}
	return fmt.Sprintf(">%.0f s (last %s)", r.Recovery.Waited.Seconds(), mb(r.Recovery.Last))
}

// Markdown renders the report: the machine, the headline, every scenario
// against its limit, the limits, other servers, the targets and the
// encoders' bytes and quality.
func (r *Report) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("# Prism load benchmark\n\n")
	p("Written by `make bench` (benchmarks/cmd/loadbench); see benchmarks/README.md for what each figure means.\n\n")
	p("| | |\n| --- | --- |\n")
	p("| date | %s |\n", r.Date.Format("2006-01-02 15:04 MST"))
	p("| CPU model | %s |\n", r.CPU)
	p("| cores | %d |\n", r.Cores)
	p("| load average | %s (1, 5, 15 min, when the run started) |\n", r.LoadAvg)
	goVersion := r.GoVersion
	if r.ServerGo != "" && r.ServerGo != r.GoVersion {
		goVersion += " (server built with " + r.ServerGo + ")"
	}
	p("| Go version | %s |\n", goVersion)
	p("| libvips version | %s |\n", r.Vips)
	p("| flags | `%s` |\n", r.Flags)
	env := "embedded defaults, with `PRISM_STORAGE=file://<temp dir>`, `PRISM_API_KEYS=<random>`, `MALLOC_ARENA_MAX=2`"
	if len(r.ServerEnv) > 0 {
		env += "; inherited: `" + strings.Join(r.ServerEnv, "`, `") + "`"
	}
	p("| server | `%s`: %s |\n", r.Server, env)
	p("| idle RSS | %s, before the first scenario |\n\n", mb(r.IdleRSS))

	lo, hi := math.Inf(1), math.Inf(-1)
	for _, a := range r.Uncached() {
		lo, hi = math.Min(lo, a.Ratio()), math.Max(hi, a.Ratio())
	}
	if len(r.Uncached()) > 0 {
		p("**Headline: uncached transforms over HTTP run at %.2f–%.2f × the in-process libvips limit** (libvips' thumbnail path with Prism's save parameters, at its fastest goroutine count), on %d cores.\n\n", lo, hi, r.Cores)
	}

	p("## Prism against the libvips limit\n\n")
	p("| scenario | clients | limit images/s | Prism req/s | Prism / limit | limit CPU ms | Prism CPU ms | limit bytes | Prism bytes | p50 ms | p99 ms | status codes | transport errors | timeouts | %s | peak RSS |\n", CacheHeader)
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | ---: |\n")
	for _, s := range r.Scenarios {
		limit, ratio, limitCPU, limitBytes, bytes := "—", "—", "—", "—", "—"
		if best := s.Limits.Best(); best.Images > 0 {
			limit, ratio = fmt.Sprintf("%.1f (%s goroutines)", best.PerSecond(), best.countsText()), fmt.Sprintf("%.2f", s.Ratio())
			limitCPU = ms(best.CPUPerImage())
			if s.Name != Uploads {
				limitBytes = fmt.Sprintf("%.0f", best.MeanBytes())
			}
		}
		if s.Status[200] > 0 {
			bytes = fmt.Sprintf("%.0f", s.MeanBytes())
		}
		p("| %s | %d | %s | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d | %s | %s |\n",
			s.Name, s.Clients, limit, s.OKPerSecond(), ratio, limitCPU, ms(s.CPUPerOK()), limitBytes, bytes, ms(s.P50), ms(s.P99),
			s.statusText(), s.Errors, s.Timeouts, s.cacheText(), mb(s.PeakRSS))
	}
	p("\n")
	for _, s := range r.Scenarios {
		p("- %s: %s", s.Name, s.Desc)
		if len(s.ByStatus) > 1 { // mixed outcomes: each status's own latency
			var parts []string
			for _, code := range slices.Sorted(maps.Keys(s.ByStatus)) {
				l := s.ByStatus[code]
				parts = append(parts, fmt.Sprintf("%d p50 %s ms, p99 %s ms", code, ms(l.P50), ms(l.P99)))
			}
			p("; by status: %s", strings.Join(parts, "; "))
		}
		p(".\n")
	}
	p("- After %s, RSS back under %s: %s.\n", Overload, mb(RecoveryRSS), r.recoveryText())
	p("- Bytes are the mean body of a 200 answer, and the mean output of the limit. CPU ms is the CPU time, user and system over every thread, of one image: the harness process's during the limit, the server process's per answer that did the work (HTTP, storage and caching included); unlike throughput it does not depend on what else the machine did meanwhile.\n\n")

	p("## The limits\n\n")
	p("In the harness's process, libvips at one thread per image, for %v at each goroutine count while the servers were idle: the scenario ran in %d parts, and the limit was measured for an equal share of that time just before and just after each. The limit is the fastest count's: the count is chosen on what was measured before the parts and its rate taken from what was measured after them, and the other way round, so that the noise which makes a count look fastest does not also inflate the limit.\n\n", r.Config.Duration, r.Config.Rounds)
	p("| scenario | goroutines | images | images/s | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range r.Scenarios {
		if s.Name == Overload {
			continue // the first transform's
		}
		for _, l := range s.Limits {
			p("| %s | %d | %d | %.1f | %s | %s |\n", s.Name, l.Goroutines, l.Images, l.PerSecond(), ms(l.P50), ms(l.P99))
		}
	}
	p("\n")

	if len(r.Peers) > 0 {
		p("## Beside other servers\n\n")
		p("Each measured right after Prism on the same scenario, with the same clients; all the servers stay up throughout.\n\n")
		p("| scenario | server | req/s | Prism / it | its CPU ms | Prism's CPU / its | its bytes | Prism's bytes / its | p50 ms | p99 ms | status codes | its peak RSS |\n")
		p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n")
		for _, o := range r.Peers {
			name, _, _ := strings.Cut(o.Name, " on ")
			a := r.Scenario(name)
			p("| %s | %s | %.1f | %.2f | %s | %.2f | %.0f | %.2f | %s | %s | %s | %s |\n", name, o.Peer, o.OKPerSecond(),
				a.OKPerSecond()/o.OKPerSecond(), ms(o.CPUPerOK()), float64(a.CPUPerOK())/float64(o.CPUPerOK()),
				o.MeanBytes(), a.MeanBytes()/o.MeanBytes(), ms(o.P50), ms(o.P99), o.statusText(), mb(o.PeakRSS))
		}
		p("\n")
	}

	p("## Targets\n\n")
	p("| what | target | measured | met |\n| --- | --- | --- | --- |\n")
	for _, t := range r.Targets() {
		met := "not met"
		if t.Met {
			met = "met"
		}
		p("| %s | %s | %s | %s |\n", t.What, t.Goal, t.Measured, met)
	}
	for _, t := range r.Targets() {
		if !t.Met && t.Limit != "" {
			p("\n%s, not met: %s.\n", t.What, t.Limit)
		}
	}
	if r.Quality != nil {
		p("\n%s", r.Quality.markdown(r.Config.QualityWidths, r.Config.QualityRuns))
	}
	return b.String()
}

// ms renders a latency in milliseconds, with more digits for small ones.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func mb(bytes int64) string { return fmt.Sprintf("%.0f MB", float64(bytes)/MB) }
