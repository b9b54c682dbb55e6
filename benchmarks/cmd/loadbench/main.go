// Command loadbench is Prism's load harness (make bench): it starts the
// server binary on its embedded defaults, measures the in-process libvips
// limit, drives the server over loopback HTTP through five scenarios, prints
// a Markdown table and writes it to benchmarks/RESULTS.md. The work is in
// package harness (loadbench -help lists the flags); see
// benchmarks/README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/prism-image/prism/benchmarks/harness"
	"github.com/prism-image/prism/imaging"
)

func main() {
	imaging.RunSVGRasteriserIfChild() // its in-process limit uses imaging
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := harness.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
