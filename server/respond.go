package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/render"
)

// Keys of what a handler tells the request log.
const (
	logKey     = "prism.key"
	logParams  = "prism.params"
	logCache   = "prism.cache"
	logRoute   = "prism.route"   // transform or original, once the query is read
	logVariant = "prism.variant" // the render.Result answered
)

// errorCacheControl keeps failures short-lived at the CDN and in browsers:
// a missing key may be uploaded any moment, and a 5xx should heal fast.
func errorCacheControl(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "no-store"
	case status >= 500:
		return "public, max-age=10, s-maxage=10"
	default:
		return "public, max-age=60, s-maxage=60"
	}
}

// writeError answers err as JSON with the status it carries. It is echo's
// error handler, so routing errors (unknown method) arrive here too.
func (s *Server) writeError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	pe := asPrismError(err)
	if pe.Status >= 500 && errors.Is(c.Request().Context().Err(), context.Canceled) {
		// The client left, and the work or the storage read with it:
		// no failure of Prism's, nor of its storage.
		pe = prism.Fail(prism.CodeClientClosed, "the client closed the request").WithCause(err)
	}
	if pe.Status >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path,
			"status", pe.Status, "err", pe.Error())
	}
	if pe.Status == http.StatusMethodNotAllowed {
		c.Response().Header().Set("Allow", allowed(s.routes, c.Request().URL))
	}
	WriteError(c.Response(), c.Request().Method, pe)
}

// WriteError writes err as Prism's JSON error answer, with the headers
// every error carries, to a response not yet started. The Lambda adapter
// answers its own errors with it too.
func WriteError(w http.ResponseWriter, method string, err *prism.Error) {
	data := err.JSON()
	h := w.Header()
	for _, k := range []string{"ETag", "Last-Modified", "Vary", "Content-Security-Policy", "Content-Disposition", "Content-Range", "Accept-Ranges"} {
		h.Del(k)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Cache-Control", errorCacheControl(err.Status))
	h.Set("X-Content-Type-Options", "nosniff")
	if err.Status == http.StatusTooManyRequests || err.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(err.Status)
	if method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

func asPrismError(err error) *prism.Error {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return prism.Errorf(he.Code, prism.CodeNotFound, "no such route")
		case http.StatusMethodNotAllowed:
			return prism.Errorf(he.Code, prism.CodeMethodNotAllowed, "method not allowed")
		}
		return prism.Errorf(he.Code, http.StatusText(he.Code), "%v", he.Message)
	}
	return prism.AsError(err)
}

// recoverPanics turns a panic in a handler into a 500, logged with its
// stack, keeping the process up. http.ErrAbortHandler, net/http's way to
// abort a response, is let through.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("recovered from a panic", "in", "request", "path", c.Request().URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				err = prism.Wrap(fmt.Errorf("panic: %v", v), http.StatusInternalServerError, prism.CodeInternal, "internal error")
			}
		}()
		return next(c)
	}
}

// logRequests writes one JSON line per request and counts it in the
// request metrics. Being outermost, it also sets the headers every response
// carries: X-Content-Type-Options and X-Request-ID.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		id := requestID(c.Request())
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h["X-Request-Id"] = []string{id} // canonical already: no work per request
		err := next(c)
		if err != nil {
			c.Error(err) // write the response now, so the log sees its status
		}
		res := c.Response()
		rec := RequestRecord{
			ID: id, Route: routeOf(c), Method: c.Request().Method, Status: res.Status,
			Cache: str(c.Get(logCache)), Duration: time.Since(start),
		}
		if rec.Cache == "" {
			rec.Cache = noCache
		}
		attrs := make([]slog.Attr, 0, 17) // all below: one allocation
		attrs = append(attrs,
			slog.String("request_id", rec.ID),
			slog.String("route", rec.Route),
			slog.String("method", rec.Method),
			slog.String("key", str(c.Get(logKey))),
			slog.String("params", str(c.Get(logParams))),
			slog.Int("status", rec.Status),
			slog.Int64("bytes", res.Size),
			slog.Float64("duration_ms", milliseconds(rec.Duration)),
			slog.String("cache", rec.Cache),
		)
		if v, ok := c.Get(logVariant).(render.Result); ok && v.Data != nil {
			rec.OutputBytes = len(v.Data)
			attrs = append(attrs, slog.Int("output_bytes", rec.OutputBytes))
			if v.Rendered {
				rec.Rendered, rec.Stages = true, v.Stages
				attrs = append(attrs,
					slog.Float64("queue_ms", milliseconds(v.Stages.Queue)),
					slog.Float64("fetch_ms", milliseconds(v.Stages.Fetch)),
					slog.Float64("decode_ms", milliseconds(v.Stages.Decode)),
					slog.Float64("process_ms", milliseconds(v.Stages.Process)),
					slog.Float64("encode_ms", milliseconds(v.Stages.Encode)))
			}
		}
		if err != nil {
			attrs = append(attrs, slog.String("err", err.Error()))
		}
		s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request", attrs...)
		s.metrics.observe(rec)
		if rr, ok := c.Response().Writer.(RequestRecorder); ok {
			rr.RecordRequest(rec) // it reports the request itself
		} else if s.cfg.Observe != nil {
			s.cfg.Observe(rec)
		}
		return nil
	}
}

// milliseconds is d in milliseconds, to the microsecond.
func milliseconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func str(v any) string {
	s, _ := v.(string)
	return s
}
