package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/storage"
)

// pipelineVersion is part of every variant ETag, so that a change to how
// Prism renders invalidates what browsers and CDNs hold.
const pipelineVersion = "1"

var errStorageTimeout = errors.New("storage timeout")

// image answers GET and HEAD /{key}?params.
func (s *Server) image(c echo.Context) error {
	r := c.Request()
	key := strings.TrimPrefix(r.URL.Path, "/")
	c.Set(logKey, key)
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	opts, err := imaging.ParseOptions(r.URL.Query())
	if err != nil {
		return err
	}
	c.Set(logParams, opts.Canonical())

	// Cached metadata answers missing keys, oversized sources and
	// revalidations without touching storage.
	meta, known := s.catalog.Lookup(r.Context(), key)
	switch known {
	case cache.Missing:
		c.Set(logCache, "hit-missing")
		return prism.Errorf(http.StatusNotFound, prism.CodeNotFound, "no such image")
	case cache.Hit:
		if done, err := s.fromMetadata(c, meta, opts); done || err != nil {
			return err
		}
	}

	// The storage deadline covers opening the object and, for transforms,
	// reading it; an original then streams for as long as the client reads.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	deadline := time.AfterFunc(s.cfg.StorageTimeout, func() { cancel(errStorageTimeout) })
	defer deadline.Stop()

	obj, err := s.catalog.Storage().Open(ctx, key)
	if err != nil {
		if prism.StatusOf(err) == http.StatusNotFound {
			s.catalog.NotFound(r.Context(), key)
		}
		return storageError(ctx, err)
	}
	defer obj.Close()
	if opts.IsZero() {
		deadline.Stop()
		return s.original(c, key, obj)
	}
	src, err := s.variant(c, ctx, deadline, obj, opts)
	if err == nil && src != nil && (known != cache.Hit || meta.ETag != obj.Info().ETag) {
		// First use of an original that reached storage without the API,
		// or that changed there: learn it, after the response is out.
		s.catalog.LearnAsync(obj.Info(), src)
	}
	return err
}

// fromMetadata answers from cached metadata alone when it can: a 422 for a
// source over the limits, a 304 for a matching If-None-Match.
func (s *Server) fromMetadata(c echo.Context, meta prism.Metadata, opts imaging.Options) (done bool, err error) {
	r := c.Request()
	etag := meta.ETag
	if !opts.IsZero() {
		if meta.Bytes > s.cfg.MaxSourceBytes {
			return true, prism.Errorf(http.StatusUnprocessableEntity, prism.CodeTooLarge,
				"source is %d bytes, over the limit of %d", meta.Bytes, s.cfg.MaxSourceBytes)
		}
		if err := s.proc.CheckSize(meta.Width, meta.Height, meta.Frames); err != nil {
			return true, err
		}
		etag = variantETag(meta.ETag, opts, imaging.ParseAccept(r.Header.Get("Accept")))
	}
	if etag == "" || !etagMatches(r.Header.Get("If-None-Match"), etag) {
		return false, nil
	}
	s.setValidators(c, etag, meta.LastModified, opts)
	c.Set(logCache, "hit-metadata")
	return true, c.NoContent(http.StatusNotModified)
}

// original streams the stored bytes, with Range and conditional requests
// handled by net/http.
func (s *Server) original(c echo.Context, key string, obj storage.Object) error {
	info := obj.Info()
	h := c.Response().Header()
	ct, err := contentType(info, key, obj)
	if err != nil {
		return err
	}
	h.Set("Content-Type", ct)
	// Anything but a raster image could script the origin when opened
	// directly (SVG, HTML): let it render, never run.
	if !strings.HasPrefix(ct, "image/") || ct == "image/svg+xml" {
		h.Set("Content-Security-Policy", "sandbox")
	}
	if info.ETag != "" {
		h.Set("ETag", info.ETag)
	}
	h.Set("Cache-Control", s.cacheControl)
	c.Set(logCache, "none")
	http.ServeContent(c.Response(), c.Request(), "", info.LastModified, obj)
	return nil
}

// contentType is the type the backend recorded when it is specific, else
// the one the key's extension implies, else the one the bytes show.
func contentType(info storage.Info, key string, obj storage.Object) (string, error) {
	if ct := info.ContentType; ct != "" && ct != "application/octet-stream" && ct != "binary/octet-stream" {
		return ct, nil
	}
	if ct := mime.TypeByExtension(strings.ToLower(path.Ext(key))); ct != "" {
		return ct, nil
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(obj, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", prism.Wrap(err, http.StatusBadGateway, prism.CodeStorage, "storage read failed")
	}
	if _, err := obj.Seek(0, io.SeekStart); err != nil {
		return "", prism.Wrap(err, http.StatusBadGateway, prism.CodeStorage, "storage read failed")
	}
	if f := imaging.Sniff(head[:n]); f != "" {
		return f.ContentType(), nil
	}
	return http.DetectContentType(head[:n]), nil
}

// variant transforms the original. The ETag is known before the source is
// read, so a revalidation costs one storage round trip and no decoding. It
// returns the source bytes when it read them.
func (s *Server) variant(c echo.Context, ctx context.Context, deadline *time.Timer, obj storage.Object, opts imaging.Options) ([]byte, error) {
	r, h := c.Request(), c.Response().Header()
	info := obj.Info()
	c.Set(logCache, "miss")
	accepts := imaging.ParseAccept(r.Header.Get("Accept"))
	etag := variantETag(info.ETag, opts, accepts)
	s.setValidators(c, etag, info.LastModified, opts)
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		return nil, c.NoContent(http.StatusNotModified)
	}

	src, err := storage.ReadAll(obj, s.cfg.MaxSourceBytes)
	if err != nil {
		return nil, storageError(ctx, err)
	}
	deadline.Stop()
	v, err := s.proc.Process(src, opts, accepts)
	if err != nil {
		return nil, err
	}
	h.Set("Content-Type", v.Format.ContentType())
	h.Set("Content-Length", strconv.Itoa(len(v.Data)))
	c.Response().WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, err = c.Response().Write(v.Data)
	}
	return src, err
}

// setValidators sets the caching headers a variant and its 304 share.
func (s *Server) setValidators(c echo.Context, etag string, lastModified time.Time, opts imaging.Options) {
	h := c.Response().Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", s.cacheControl)
	if opts.Format == imaging.FormatAuto {
		h.Add("Vary", "Accept")
	}
	if !lastModified.IsZero() {
		h.Set("Last-Modified", lastModified.UTC().Format(http.TimeFormat))
	}
}

// storageError turns a failure that happened because the storage deadline
// passed into a 504, whatever the backend made of the cancellation.
func storageError(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errStorageTimeout) {
		return prism.Wrap(err, http.StatusGatewayTimeout, prism.CodeStorageTimeout, "storage did not answer in time")
	}
	return err
}

// variantETag is a strong validator for one rendering: the source's
// identity, the canonical transform and what decides the output format.
func variantETag(sourceETag string, opts imaging.Options, accepts imaging.Accepts) string {
	format := string(opts.Format)
	if opts.Format == imaging.FormatAuto {
		format += ":" + accepts.Token()
	}
	sum := sha256.Sum256([]byte(pipelineVersion + "\n" + sourceETag + "\n" + opts.Canonical() + "\n" + format))
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// etagMatches implements If-None-Match's weak comparison.
func etagMatches(header, etag string) bool {
	for _, candidate := range strings.Split(header, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == "*" || candidate == etag {
			return true
		}
	}
	return false
}
