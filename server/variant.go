package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/storage"
)

// variant answers a transform: a 304 or a cached rendering when it can,
// else a rendering made once for every identical request in flight.
func (s *Server) variant(c echo.Context, key string, opts imaging.Options, meta prism.Metadata, known cache.Lookup) error {
	r := c.Request()
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()

	// The source's identity: from cached metadata, else from storage.
	var info storage.Info
	layer := "hit-metadata"
	if known == cache.Hit {
		if meta.Bytes > s.cfg.MaxSourceBytes {
			return prism.Errorf(http.StatusUnprocessableEntity, prism.CodeTooLarge,
				"source is %d bytes, over the limit of %d", meta.Bytes, s.cfg.MaxSourceBytes)
		}
		if err := s.proc.CheckSize(meta.Width, meta.Height, meta.Frames); err != nil {
			return err
		}
		info = storage.Info{Key: key, Size: meta.Bytes, ETag: meta.ETag, LastModified: meta.LastModified}
	} else {
		var err error
		if info, err = s.stat(ctx, key); err != nil {
			return err
		}
		layer = "miss"
	}

	accepts := imaging.ParseAccept(r.Header.Get("Accept"))
	etag := variantETag(info.ETag, opts, accepts)
	s.setValidators(c, etag, info.LastModified, opts)
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		s.setLayer(c, layer)
		return c.NoContent(http.StatusNotModified)
	}

	k := cache.VariantKey{Source: key, ID: etag}
	if v, layer, ok := s.cached(ctx, k); ok {
		return s.writeVariant(c, v, layer)
	}
	v, err := s.render(ctx, k, info, known == cache.Hit, opts, accepts)
	if err != nil {
		return err
	}
	return s.writeVariant(c, v, "miss")
}

// stat reads a source's identity from storage within the storage timeout.
func (s *Server) stat(ctx context.Context, key string) (storage.Info, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, s.cfg.StorageTimeout, errStorageTimeout)
	defer cancel()
	info, err := s.catalog.Storage().Stat(ctx, key)
	if err != nil {
		return info, s.storageError(ctx, key, err)
	}
	return info, nil
}

// cached looks a variant up in memory, then in the derived store.
func (s *Server) cached(ctx context.Context, k cache.VariantKey) (cache.Variant, string, bool) {
	if v, ok := s.variants.Get(k); ok {
		return v, "hit-memory", true
	}
	if s.derived != nil {
		if v, ok := s.derived.Get(ctx, k); ok {
			s.variants.Set(k, v)
			return v, "hit-derived", true
		}
	}
	return cache.Variant{}, "", false
}

// pipelineRuns counts renderings: with the variant caches and singleflight
// in front, it grows by one per distinct variant a process renders.
var pipelineRuns = promauto.NewCounter(prometheus.CounterOpts{
	Name: "prism_pipeline_runs_total",
	Help: "Images rendered by the libvips pipeline.",
})

// renders mirrors pipelineRuns for the process's own use.
var renders atomic.Int64

// render runs the pipeline once for all identical requests in flight,
// within the admission bounds. The work carries on for the others, and for
// the caches, when the request that started it goes away; a request waits
// for it no longer than its own deadline.
func (s *Server) render(ctx context.Context, k cache.VariantKey, info storage.Info, knownSource bool, opts imaging.Options, accepts imaging.Accepts) (cache.Variant, error) {
	result := s.flight.DoChan(k.String(), func() (any, error) {
		work, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
		defer cancel()
		var v cache.Variant
		var err error
		// Waiting for a worker ends with the request that started the
		// work; the work itself does not.
		admitted := s.admission.do(ctx, func() { v, err = s.renderNow(work, k, info, knownSource, opts, accepts) })
		if admitted != nil {
			return v, admitted
		}
		return v, err
	})
	select {
	case res := <-result:
		if res.Err != nil {
			return cache.Variant{}, res.Err
		}
		return res.Val.(cache.Variant), nil
	case <-ctx.Done():
		return cache.Variant{}, errDeadline()
	}
}

// renderNow reads the source and transforms it, caching the result.
func (s *Server) renderNow(ctx context.Context, k cache.VariantKey, info storage.Info, knownSource bool, opts imaging.Options, accepts imaging.Accepts) (cache.Variant, error) {
	pipelineRuns.Inc()
	renders.Add(1)
	src, current, err := s.readSource(ctx, k.Source)
	if err != nil {
		return cache.Variant{}, err
	}
	out, err := s.proc.Process(src, opts, accepts)
	if err != nil {
		return cache.Variant{}, err
	}
	v := cache.Variant{Data: out.Data, ContentType: out.Format.ContentType()}
	// Cache only what the key names: the source read must be the one the
	// ETag was made from (a replace may have landed in between).
	if current.ETag == info.ETag {
		s.variants.Set(k, v)
		if s.derived != nil {
			s.derived.SaveAsync(k, v)
		}
	}
	if !knownSource || current.ETag != info.ETag {
		// First use of an original that reached storage without the API,
		// or that changed there: learn it in the background.
		s.catalog.LearnAsync(current, src)
	}
	return v, nil
}

// readSource reads a whole source within the storage timeout.
func (s *Server) readSource(ctx context.Context, key string) ([]byte, storage.Info, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, s.cfg.StorageTimeout, errStorageTimeout)
	defer cancel()
	obj, err := s.catalog.Storage().Open(ctx, key)
	if err != nil {
		return nil, storage.Info{}, s.storageError(ctx, key, err)
	}
	defer obj.Close()
	src, err := storage.ReadAll(obj, s.cfg.MaxSourceBytes)
	if err != nil {
		return nil, storage.Info{}, s.storageError(ctx, key, err)
	}
	return src, obj.Info(), nil
}

func (s *Server) writeVariant(c echo.Context, v cache.Variant, layer string) error {
	s.setLayer(c, layer)
	h := c.Response().Header()
	h.Set("Content-Type", v.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(v.Data)))
	c.Response().WriteHeader(http.StatusOK)
	if c.Request().Method == http.MethodHead {
		return nil
	}
	_, err := c.Response().Write(v.Data)
	return err
}

// setLayer says which layer served the request, to the client and the log.
func (s *Server) setLayer(c echo.Context, layer string) {
	c.Response().Header().Set("X-Prism-Cache", layer)
	c.Set(logCache, layer)
}

// storageError turns a failure that happened because the storage deadline
// passed into a 504, whatever the backend made of the cancellation, and
// remembers missing keys.
func (s *Server) storageError(ctx context.Context, key string, err error) error {
	if errors.Is(context.Cause(ctx), errStorageTimeout) {
		return prism.Wrap(err, http.StatusGatewayTimeout, prism.CodeStorageTimeout, "storage did not answer in time")
	}
	if prism.StatusOf(err) == http.StatusNotFound {
		s.catalog.NotFound(context.WithoutCancel(ctx), key)
	}
	return err
}
