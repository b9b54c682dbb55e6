// Package awslambda runs Prism as an AWS Lambda function: it turns Lambda
// events into calls of the same http.Handler that cmd/server serves, and S3
// event notifications into catalog updates. cmd/lambda is a thin main around
// it.
//
// # Events
//
// Handler.Invoke takes any of:
//
//   - a Lambda Function URL or API Gateway HTTP API (payload 2.0) request;
//   - an Application Load Balancer target request, with or without
//     multi-value headers (the answer uses the mode the request came in);
//   - an S3 event notification: ObjectCreated:* learns the object's metadata
//     afresh, ObjectRemoved:* remembers it as missing, and both first drop
//     what was derived from it (metadata, cached variants, the derived
//     store's objects, CDN copies) through the catalog's invalidators.
//
// Binary bodies travel base64 in both directions; JSON and text answers are
// sent as they are.
//
// # Responses over Lambda's limit
//
// Lambda buffers a response in one JSON document of at most 6 MB (an ALB
// takes at most 1 MB), and base64 adds a third: an image over about 4.5 MB
// cannot be answered inline. Such a response is redirected rather than
// streamed: the rendered variant is written to the derived store (which
// must be on S3, PRISM_DERIVED_URL=s3://…) under the name the shared
// variant cache gives it, and the answer is a 302 to a presigned GET URL of
// that object, cacheable by the browser for a little less than the URL
// lives and never by a CDN ("private"). An original that large is
// redirected to a presigned URL of the original itself. Redirecting keeps
// one buffered invocation model for every event source (ALB and API Gateway
// cannot stream), lets S3 serve the bytes with range requests, and costs
// nothing for the next request of the same variant, which the derived store
// already holds. Without an S3 derived store the answer is a 502 with code
// response_too_large.
package awslambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/app"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/config"
	"github.com/prism-image/prism/server"
	"github.com/prism-image/prism/storage"
)

// Originals is what S3 events and oversized originals need of
// *render.Renderer.
type Originals interface {
	// Forget drops what was derived from key.
	Forget(ctx context.Context, key string)
	// Stat asks storage, and remembers a missing key as missing.
	Stat(ctx context.Context, key string) (storage.Info, error)
	// Metadata works out key's metadata under admission control, and
	// caches it.
	Metadata(ctx context.Context, key string) (prism.Metadata, error)
	PresignDownload(ctx context.Context, key string, expiry time.Duration) (string, error)
}

// DerivedStore is what oversized responses need of *cache.Derived.
type DerivedStore interface {
	Put(ctx context.Context, k cache.VariantKey, v cache.Variant) error
	PresignGet(ctx context.Context, k cache.VariantKey, expiry time.Duration) (string, error)
}

// Lambda's limits on a buffered response: the whole JSON document.
const (
	MaxResponseBytes    = 6 << 20 // Lambda itself, for Function URLs and API Gateway
	MaxALBResponseBytes = 1 << 20 // an ALB target's response
)

// CodeResponseTooLarge is the error code of a response over Lambda's limit
// that could not be redirected.
const CodeResponseTooLarge = "response_too_large"

// Config is what a Handler serves.
type Config struct {
	Handler   http.Handler // the URL and upload APIs: app.App.Handler
	Originals Originals    // app.App.Render
	Derived   DerivedStore // nil: no derived store, so no redirects of large variants

	// Storage and DerivedURL are PRISM_STORAGE and PRISM_DERIVED_URL: S3
	// events are acted on only for objects of the originals' bucket and
	// prefix, and never for the derived store's own objects.
	Storage    string
	DerivedURL string

	// RedirectExpiry is how long the URL of a redirected response lives
	// (default 15 minutes).
	RedirectExpiry time.Duration
	// MaxResponseBytes and MaxALBResponseBytes bound the JSON answer
	// (defaults: the package constants).
	MaxResponseBytes    int
	MaxALBResponseBytes int

	// Observe, when set, is told of every HTTP request answered, with the
	// status Lambda sends (CloudWatch metrics): app.App.Observe.
	Observe func(server.RequestRecord)
	// AfterInvoke, when set, runs at the end of every invocation, before
	// the answer is sent: Lambda may freeze the process right after, so
	// buffered logs are flushed here.
	AfterInvoke func()
	Log         *slog.Logger
}

// FromApp is the Config of a Lambda over a, which was started from cfg.
// Redirected responses live PRISM_PRESIGN_EXPIRY.
func FromApp(a *app.App, cfg config.Config, log *slog.Logger) Config {
	c := Config{
		Handler:        a.Handler,
		Originals:      a.Render,
		Storage:        cfg.Storage,
		DerivedURL:     cfg.DerivedURL,
		RedirectExpiry: cfg.PresignExpiry,
		Observe:        a.Observe,
		Log:            log,
	}
	if a.Derived != nil { // no typed nil in the interface
		c.Derived = a.Derived
	}
	return c
}

// Handler answers Lambda invocations. It implements the lambda.Handler
// interface of github.com/aws/aws-lambda-go.
type Handler struct {
	cfg     Config
	origins s3Location // the originals' bucket and prefix; zero unless on S3
	derived s3Location // the derived store's; zero unless on S3
}

// New returns a Handler for cfg.
func New(cfg Config) *Handler {
	if cfg.RedirectExpiry <= 0 {
		cfg.RedirectExpiry = 15 * time.Minute
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = MaxResponseBytes
	}
	if cfg.MaxALBResponseBytes <= 0 {
		cfg.MaxALBResponseBytes = MaxALBResponseBytes
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg}
	h.origins = parseS3URL(cfg.Storage)
	h.derived = parseS3URL(cfg.DerivedURL)
	return h
}

// eventProbe holds the fields that tell the kinds of event apart.
type eventProbe struct {
	Version        string `json:"version"`
	RequestContext struct {
		HTTP json.RawMessage `json:"http"`
		ELB  json.RawMessage `json:"elb"`
	} `json:"requestContext"`
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
}

// Invoke handles one event and returns the JSON answer. An error fails the
// invocation, which Lambda retries for asynchronous events (S3).
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if h.cfg.AfterInvoke != nil {
		defer h.cfg.AfterInvoke()
	}
	var probe eventProbe
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, fmt.Errorf("awslambda: the event is not a JSON object: %w", err)
	}
	switch {
	case isPresent(probe.RequestContext.ELB):
		return h.alb(ctx, payload)
	case probe.Version == "2.0" && isPresent(probe.RequestContext.HTTP):
		return h.httpV2(ctx, payload)
	case len(probe.Records) > 0 && probe.Records[0].EventSource == "aws:s3":
		return h.s3(ctx, payload)
	}
	return nil, errors.New("awslambda: unsupported event: want a Function URL, API Gateway HTTP API (payload 2.0), ALB or S3 event")
}

func isPresent(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// s3Location is where a storage URL keeps its objects on S3; zero when it
// is not on S3.
type s3Location storage.Location

func parseS3URL(u string) s3Location {
	loc, _ := storage.ParseURL(u)
	return s3Location(loc)
}

// key returns the Prism key of objectKey in l, and whether it is in l.
func (l s3Location) key(bucket, objectKey string) (string, bool) {
	if l.Bucket == "" || bucket != l.Bucket {
		return "", false
	}
	if l.Prefix == "" {
		return objectKey, true
	}
	return strings.CutPrefix(objectKey, l.Prefix+"/")
}
