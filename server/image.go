package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/storage"
	"github.com/prism-image/prism/urlsign"
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
	// r.URL.Query() would silently drop a malformed pair, and with it,
	// say, the w= the client meant.
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return prism.Errorf(http.StatusBadRequest, prism.CodeInvalidParam, "malformed query string: %v", err)
	}
	opts, err := imaging.ParseOptions(query)
	if err != nil {
		return err
	}
	c.Set(logParams, opts.Canonical())
	if s.cfg.SigningKey != nil && !opts.IsZero() {
		if err := s.checkSignature(r); err != nil {
			return err
		}
	}

	// Cached metadata answers missing keys, oversized sources and
	// revalidations without touching storage.
	meta, known := s.catalog.Lookup(r.Context(), key)
	if known == cache.Missing {
		s.setLayer(c, "hit-missing")
		return notFound()
	}
	if opts.IsZero() {
		return s.original(c, key, meta, known)
	}
	return s.variant(c, key, opts, meta, known)
}

// checkSignature refuses a transform URL that is not signed with the key.
func (s *Server) checkSignature(r *http.Request) error {
	q := r.URL.Query()
	if q.Get(prism.SignatureParam) == "" {
		return prism.Errorf(http.StatusForbidden, prism.CodeInvalidSignature, "transform URLs must be signed: s= is missing")
	}
	if !urlsign.Verify(s.cfg.SigningKey, r.URL.EscapedPath(), q) {
		return prism.Errorf(http.StatusForbidden, prism.CodeInvalidSignature, "the signature s= does not match this URL")
	}
	return nil
}

func notFound() error { return prism.Errorf(http.StatusNotFound, prism.CodeNotFound, "no such image") }

// original streams the stored bytes, with Range and conditional requests
// handled by net/http.
func (s *Server) original(c echo.Context, key string, meta prism.Metadata, known cache.Lookup) error {
	r, h := c.Request(), c.Response().Header()
	h.Set("Cache-Control", s.cacheControl)
	if known == cache.Hit && meta.ETag != "" && etagMatches(r.Header.Get("If-None-Match"), meta.ETag) {
		h.Set("ETag", meta.ETag)
		s.setLayer(c, "hit-metadata")
		return c.NoContent(http.StatusNotModified)
	}

	// The storage deadline covers opening the object; it then streams for
	// as long as the client reads.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	deadline := time.AfterFunc(s.cfg.StorageTimeout, func() { cancel(errStorageTimeout) })
	obj, err := s.catalog.Storage().Open(ctx, key)
	deadline.Stop()
	if err != nil {
		return s.storageError(ctx, key, err)
	}
	defer obj.Close()

	info := obj.Info()
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
	s.setLayer(c, "original")
	http.ServeContent(c.Response(), r, "", info.LastModified, obj)
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
