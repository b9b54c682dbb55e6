// Command lambda runs Prism as an AWS Lambda function (a provided.al2023
// bootstrap or a container image): the same handler as cmd/server, fed by
// Function URL, API Gateway, ALB and S3 events through package awslambda.
//
// Initialisation does only what every invocation needs: the configuration
// (as cmd/server reads it, with Lambda defaults for the workers settings;
// see awslambda.EnvDefaults) and one libvips start-up. Nothing is fetched
// over the network before the first event.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/prism-image/prism/app"
	"github.com/prism-image/prism/awslambda"
	"github.com/prism-image/prism/config"
	"github.com/prism-image/prism/imaging"
)

func main() {
	imaging.RunSVGRasteriserIfChild() // when started to draw an SVG
	h, err := initialise(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lambda:", err)
		if rerr := awslambda.ReportInitError(err); rerr != nil {
			fmt.Fprintln(os.Stderr, "lambda: reporting the init error:", rerr)
		}
		os.Exit(1)
	}
	lambda.Start(h) // never returns
}

func initialise(args []string) (*awslambda.Handler, error) {
	if err := awslambda.SetEnvDefaults(); err != nil {
		return nil, err
	}
	cfg, err := config.Load(args, os.Stdout)
	if err != nil {
		return nil, err
	}
	// Lambda freezes the process between invocations: the handler flushes
	// the logs at the end of each.
	out := app.NewLogWriter(os.Stdout, 100*time.Millisecond)
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel}))
	prism, err := app.New(context.Background(), cfg, log, out)
	if err != nil {
		return nil, err
	}
	c := awslambda.FromApp(prism, cfg, log)
	c.AfterInvoke = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		prism.Flush(ctx)
		_ = out.Flush()
	}
	log.Info("initialised", "storage", cfg.Storage, "derived", cfg.DerivedURL, "redis", cfg.RedisURL != "",
		"workers", cfg.WorkerCount(), "queue", cfg.QueueLength(), "vips_concurrency", cfg.VipsConcurrency)
	_ = out.Flush()
	return awslambda.New(c), nil
}
