package server

import (
	"bytes"
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

	// The storage deadline covers opening the object and, for transforms,
	// reading it; an original then streams for as long as the client reads.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	deadline := time.AfterFunc(s.cfg.StorageTimeout, func() { cancel(errStorageTimeout) })
	defer deadline.Stop()

	obj, err := s.store.Open(ctx, key)
	if err != nil {
		return storageError(ctx, err)
	}
	defer obj.Close()
	if opts.IsZero() {
		deadline.Stop()
		return s.original(c, key, obj)
	}
	return s.variant(c, ctx, deadline, obj, opts)
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
// read, so a revalidation costs one storage round trip and no decoding.
func (s *Server) variant(c echo.Context, ctx context.Context, deadline *time.Timer, obj storage.Object, opts imaging.Options) error {
	r, h := c.Request(), c.Response().Header()
	info := obj.Info()
	c.Set(logCache, "miss")
	if info.Size > s.cfg.MaxSourceBytes {
		return sourceTooLarge(info.Size, s.cfg.MaxSourceBytes)
	}
	accepts := imaging.ParseAccept(r.Header.Get("Accept"))
	etag := variantETag(info.ETag, opts, accepts)
	h.Set("ETag", etag)
	h.Set("Cache-Control", s.cacheControl)
	if opts.Format == imaging.FormatAuto {
		h.Add("Vary", "Accept")
	}
	if !info.LastModified.IsZero() {
		h.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	}
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		return c.NoContent(http.StatusNotModified)
	}

	src, err := readSource(obj, info.Size, s.cfg.MaxSourceBytes)
	if err != nil {
		return storageError(ctx, err)
	}
	deadline.Stop()
	v, err := s.proc.Process(src, opts, accepts)
	if err != nil {
		return err
	}
	h.Set("Content-Type", v.Format.ContentType())
	h.Set("Content-Length", strconv.Itoa(len(v.Data)))
	c.Response().WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err = c.Response().Write(v.Data)
	return err
}

// readSource reads a whole source into one buffer sized up front, refusing
// to read past limit even when the backend understated the size.
func readSource(r io.Reader, size, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(min(max(size, 0), limit)) + bytes.MinRead) // ReadFrom wants MinRead spare to not grow
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1)); err != nil {
		return nil, prism.Wrap(err, http.StatusBadGateway, prism.CodeStorage, "storage read failed")
	}
	if int64(buf.Len()) > limit {
		return nil, sourceTooLarge(int64(buf.Len()), limit)
	}
	return buf.Bytes(), nil
}

func sourceTooLarge(size, limit int64) error {
	return prism.Errorf(http.StatusUnprocessableEntity, prism.CodeTooLarge,
		"source is %d bytes, over the limit of %d", size, limit)
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
