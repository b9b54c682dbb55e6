package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/prism-image/prism"
)

// Keys of what a handler tells the request log.
const (
	logKey    = "prism.key"
	logParams = "prism.params"
	logCache  = "prism.cache"
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

// logRequests writes one JSON line per request. Being outermost, it also
// sets the headers every response carries.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		c.Response().Header().Set("X-Content-Type-Options", "nosniff")
		err := next(c)
		if err != nil {
			c.Error(err) // write the response now, so the log sees its status
		}
		res := c.Response()
		attrs := []slog.Attr{
			slog.String("method", c.Request().Method),
			slog.String("key", str(c.Get(logKey))),
			slog.String("params", str(c.Get(logParams))),
			slog.Int("status", res.Status),
			slog.Int64("bytes", res.Size),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("cache", str(c.Get(logCache))),
		}
		if err != nil {
			attrs = append(attrs, slog.String("err", err.Error()))
		}
		s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request", attrs...)
		return nil
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
