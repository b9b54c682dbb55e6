package server

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/render"
	"github.com/prism-image/prism/storage"
	"github.com/prism-image/prism/urlsign"
)

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
	query, err := prism.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return prism.InvalidParam("", "malformed query string: %v", err)
	}
	opts, err := imaging.ParseOptions(query)
	if err != nil {
		return err
	}
	c.Set(logParams, opts.Canonical())
	if opts.IsZero() {
		c.Set(logRoute, routeOriginal)
		return s.original(c, key)
	}
	c.Set(logRoute, routeTransform)
	if s.cfg.SigningKey != nil {
		if err := s.checkSignature(r, query); err != nil {
			return err
		}
	}
	return s.variant(c, key, opts)
}

// checkSignature refuses a transform URL that is not signed with the key.
func (s *Server) checkSignature(r *http.Request, q url.Values) error {
	if q.Get(prism.SignatureParam) == "" {
		return prism.Errorf(http.StatusForbidden, prism.CodeInvalidSignature, "transform URLs must be signed: s= is missing")
	}
	if !urlsign.Verify(s.cfg.SigningKey, r.URL.EscapedPath(), q) {
		return prism.Errorf(http.StatusForbidden, prism.CodeInvalidSignature, "the signature s= does not match this URL")
	}
	return nil
}

// variant answers a transform.
func (s *Server) variant(c echo.Context, key string, opts imaging.Options) error {
	r := c.Request()
	res, err := s.render.Variant(r.Context(), render.VariantRequest{
		Key: key, Options: opts, Accepts: imaging.ParseAccept(r.Header.Get("Accept")),
		Fresh: func(etag string) bool { return etagMatches(r.Header.Get("If-None-Match"), etag) },
	})
	if res.Layer != "" {
		s.setLayer(c, res.Layer)
	}
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("ETag", res.ETag)
	h.Set("Cache-Control", s.cacheControl)
	if res.VaryAccept {
		h.Add("Vary", "Accept")
	}
	setLastModified(h, res.LastModified)
	if res.NotModified {
		return c.NoContent(http.StatusNotModified)
	}
	c.Set(logVariant, res)
	if rec, ok := c.Response().Writer.(ResultRecorder); ok {
		rec.RecordVariant(res)
	}
	h.Set("Content-Type", res.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(res.Data)))
	c.Response().WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err = c.Response().Write(res.Data)
	return err
}

// original streams the stored bytes, with Range and conditional requests
// handled by net/http.
func (s *Server) original(c echo.Context, key string) error {
	r, h := c.Request(), c.Response().Header()
	st, err := s.render.Original(r.Context(), key, func(etag string) bool {
		return etagMatches(r.Header.Get("If-None-Match"), etag)
	})
	if st.Layer != "" {
		s.setLayer(c, st.Layer)
	}
	if err != nil {
		return err
	}
	h.Set("Cache-Control", s.cacheControl)
	if st.ETag != "" {
		h.Set("ETag", st.ETag)
	}
	if st.NotModified {
		return c.NoContent(http.StatusNotModified)
	}
	defer st.Object.Close()
	if rec, ok := c.Response().Writer.(ResultRecorder); ok {
		rec.RecordOriginal(key, st)
	}
	if rh := r.Header.Get("Range"); rh != "" {
		if tidy := tidyRanges(rh, st.Object.Info().Size); tidy != "" {
			r.Header.Set("Range", tidy)
		} else {
			r.Header.Del("Range")
		}
	}
	h.Set("Content-Type", st.ContentType)
	if st.Scriptable {
		h.Set("Content-Security-Policy", "sandbox")
	}
	if st.Download {
		h.Set("Content-Disposition", "attachment")
	}
	http.ServeContent(c.Response(), r, "", st.LastModified, st.Object)
	return nil
}

// RequestRecorder is a response writer that reports the request itself,
// instead of Config.Observe: the Lambda adapter, whose answer may still
// change (a redirect to S3) after the handler's.
type RequestRecorder interface {
	RecordRequest(RequestRecord)
}

// ResultRecorder is a response writer that wants to know which variant or
// original a response carries: the Lambda adapter, which hands responses
// too large for Lambda to S3 by their names there.
type ResultRecorder interface {
	RecordVariant(render.Result)
	RecordOriginal(key string, st render.Stream)
}

func setLastModified(h http.Header, t time.Time) {
	if !t.IsZero() {
		h.Set("Last-Modified", t.UTC().Format(http.TimeFormat))
	}
}

// setLayer says which layer served the request, to the client and the log.
func (s *Server) setLayer(c echo.Context, layer render.Layer) {
	c.Response().Header().Set("X-Prism-Cache", string(layer))
	c.Set(logCache, string(layer))
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
