package harness

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Main is the loadbench command: it parses args (flags only), runs the
// harness, prints the Markdown table on stdout, progress on stderr, writes
// the table to -out, and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Server, "server", cfg.Server, "the server binary to start (make build makes it)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of each scenario, and of each goroutine count of a limit")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent clients of the cached hits and 304 revalidations")
	fs.IntVar(&cfg.UncachedClients, "uncached-clients", cfg.UncachedClients, "concurrent clients of every uncached transform (0: 4 each)")
	fs.IntVar(&cfg.OverloadClients, "overload-clients", cfg.OverloadClients, "concurrent clients of the overload")
	fs.IntVar(&cfg.UploadClients, "upload-clients", cfg.UploadClients, "concurrent clients of the uploads (one per core)")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "parts each scenario with libvips work is driven in, each between two measurements of its limit")
	fs.Var((*ints)(&cfg.LimitMultiples), "limit-multiples", "goroutine counts of each limit, as multiples of the cores")
	fs.Var((*ints)(&cfg.QualityWidths), "quality-widths", `widths the encoders' bytes, time and quality are measured at ("" skips it)`)
	fs.IntVar(&cfg.QualityRuns, "quality-runs", cfg.QualityRuns, "runs of each encoder case, for its median time")
	fs.StringVar(&cfg.Baseline, "baseline", "", "also run the uncached scenarios on this Prism binary (one built from another commit)")
	fs.StringVar(&cfg.Imgproxy, "imgproxy", "", "also run the uncached scenarios on this imgproxy binary")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "client timeout of one request")
	fs.DurationVar(&cfg.RecoveryWait, "recovery-wait", cfg.RecoveryWait, "after (d), longest wait for the server's RSS to fall under 200 MB")
	out := fs.String("out", "benchmarks/RESULTS.md", `file to write the table to ("" writes none)`)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadbench: unexpected arguments %q\n", fs.Args())
		return 2
	}

	// The report quotes every flag's effective value, defaults included.
	var used []string
	fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		if v == "" {
			v = `""`
		}
		used = append(used, "-"+f.Name+" "+v)
	})
	cfg.Flags = strings.Join(used, " ")
	cfg.Progress = stderr

	rep, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "loadbench:", err)
		return 1
	}
	table := rep.Markdown()
	fmt.Fprint(stdout, "\n"+table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			fmt.Fprintln(stderr, "loadbench:", err)
			return 1
		}
		fmt.Fprintln(stderr, "loadbench: wrote", *out)
	}
	return 0
}

// ints is a comma-separated list of positive integers, as a flag.
type ints []int

func (m *ints) String() string {
	var parts []string
	for _, n := range *m {
		parts = append(parts, strconv.Itoa(n))
	}
	return strings.Join(parts, ",")
}

func (m *ints) Set(s string) error {
	*m = nil
	if s == "" {
		return nil
	}
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		*m = append(*m, n)
	}
	return nil
}
