// Package server is Prism's HTTP face: the URL API (GET and HEAD of
// /{key}?params), the upload API, the health check, caching headers, JSON
// errors and request logs. It maps requests to the render package, which
// does the work, and its results back to responses; it is the one
// http.Handler that both the long-running server and the Lambda entry point
// serve.
package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/prism-image/prism/render"
)

// Config is what the handler needs to know beyond its collaborators.
type Config struct {
	MaxUploadBytes int64
	BrowserTTL     time.Duration // Cache-Control max-age of images
	CDNTTL         time.Duration // Cache-Control s-maxage of images
	APIKeys        []string      // bearer keys for writes; none: writes are refused
	PublicURL      string        // base of the URLs the upload API answers; "": from the request
	PresignExpiry  time.Duration // lifetime of direct-upload forms
	SigningKey     []byte        // when set, transform URLs must be signed (urlsign)
}

// Server answers the URL API and the upload API.
type Server struct {
	cfg          Config
	render       *render.Renderer
	log          *slog.Logger
	echo         *echo.Echo
	cacheControl string
}

// ReservedPrefixes start the routes Prism itself answers; no key may start
// with one.
var ReservedPrefixes = []string{"v1/", "healthz", "metrics", ".prism/"}

// New returns a Server answering with the work of r.
func New(cfg Config, r *render.Renderer, log *slog.Logger) *Server {
	s := &Server{
		cfg: cfg, render: r, log: log,
		cacheControl: fmt.Sprintf("public, max-age=%d, s-maxage=%d", int(cfg.BrowserTTL.Seconds()), int(cfg.CDNTTL.Seconds())),
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.writeError
	e.Use(s.logRequests, s.recoverPanics)
	e.GET("/healthz", s.health)
	e.HEAD("/healthz", s.health)
	e.GET("/metrics", echo.WrapHandler(promhttp.Handler()))
	s.routeUploadAPI(e.Group("/v1"))
	e.GET("/*", s.image)
	e.HEAD("/*", s.image)
	s.echo = e
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

func (s *Server) health(c echo.Context) error {
	if err := s.render.Health(c.Request().Context()); err != nil {
		s.log.Error("health check failed", "err", err)
		return c.JSONBlob(http.StatusServiceUnavailable, []byte(`{"status":"unhealthy"}`))
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSONBlob(http.StatusOK, []byte(`{"status":"ok"}`))
}
