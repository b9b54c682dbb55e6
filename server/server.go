// Package server is Prism's HTTP face: the URL API (GET and HEAD of
// /{key}?params), the upload API, the health check, caching headers, JSON
// errors, request IDs, request logs and request metrics. It maps requests to the render package, which
// does the work, and its results back to responses; it is the one
// http.Handler that both the long-running server and the Lambda entry point
// serve.
package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-image/prism"
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
	// Registerer is where the request metrics register; nil: nowhere.
	Registerer prometheus.Registerer
	// Observe, when set, is told of every answered request (CloudWatch
	// metrics).
	Observe func(RequestRecord)
}

// Server answers the URL API and the upload API.
type Server struct {
	cfg          Config
	render       *render.Renderer
	routes       []*echo.Route // for Allow
	log          *slog.Logger
	echo         *echo.Echo
	cacheControl string
	metrics      *requestMetrics
}

// ReservedPrefixes start the routes Prism itself answers; no key may start
// with one.
var ReservedPrefixes = []string{"v1/", "healthz", ".prism/"}

// New returns a Server answering with the work of r.
func New(cfg Config, r *render.Renderer, log *slog.Logger) *Server {
	s := &Server{
		cfg: cfg, render: r, log: log, metrics: newRequestMetrics(cfg.Registerer),
		cacheControl: fmt.Sprintf("public, max-age=%d, s-maxage=%d", int(cfg.BrowserTTL.Seconds()), int(cfg.CDNTTL.Seconds())),
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.writeError
	e.Use(s.logRequests, s.recoverPanics, refuseOptions)
	e.GET("/healthz", s.health)
	e.HEAD("/healthz", s.health)
	s.routeUploadAPI(e.Group("/v1"))
	e.GET("/*", s.image)
	e.HEAD("/*", s.image)
	s.routes = e.Routes()
	s.echo = e
	return s
}

// refuseOptions answers OPTIONS with a 405, as the README says: Prism has
// no CORS policy, and echo would otherwise answer 204. writeError names the
// methods the path takes.
func refuseOptions(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method == http.MethodOptions {
			return prism.Fail(prism.CodeMethodNotAllowed, "method not allowed")
		}
		return next(c)
	}
}

// allowed lists the methods of the routes that would serve the request's
// path: those of the longest pattern that matches it, matched on the path
// as sent, as echo routes.
func allowed(routes []*echo.Route, u *url.URL) string {
	path := u.EscapedPath()
	best, methods := -1, []string{}
	for _, r := range routes {
		prefix, wild := strings.CutSuffix(r.Path, "*")
		if (wild && !strings.HasPrefix(path, prefix)) || (!wild && path != r.Path) {
			continue
		}
		switch n := len(r.Path); {
		case n > best:
			best, methods = n, []string{r.Method}
		case n == best && !slices.Contains(methods, r.Method):
			methods = append(methods, r.Method)
		}
	}
	order := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete}
	slices.SortFunc(methods, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
	return strings.Join(methods, ", ")
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
