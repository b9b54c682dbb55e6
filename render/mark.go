package render

import (
	"context"
	"net/http"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/storage"
)

// A watermark is an original like any other: found through the catalog
// (its cached metadata, else storage), read within the source limits and
// drawn within the same admitted work as the image it marks. Its ETag is
// part of the variant's, and the catalog records who used it, so that
// replacing it purges them.

// foundMark is a transform's watermark as found before rendering.
type foundMark struct {
	info  storage.Info
	known bool // its metadata was cached
}

// findMark finds the watermark key names. A mark that is not there, or not
// an image Prism reads, is a 400 naming mark: the URL is at fault, not the
// image it asks for.
func (r *Renderer) findMark(ctx context.Context, key string) (*foundMark, error) {
	if err := storage.ValidateKey(key); err != nil {
		return nil, markError(key, err)
	}
	m, found, err := r.catalog.Lookup(ctx, key)
	switch {
	case err != nil: // a remembered failure of its analysis
		return nil, markError(key, err)
	case found == cache.Missing:
		return nil, markError(key, notFound())
	case found == cache.Hit:
		// Refused before storage or a worker is asked, as a source is.
		if m.Bytes > r.cfg.MaxSourceBytes {
			return nil, markError(key, prism.Fail(prism.CodeTooLarge, "%d bytes, over the limit of %d", m.Bytes, r.cfg.MaxSourceBytes))
		}
		if err := r.proc.CheckMark(key, header(m)); err != nil {
			return nil, err
		}
		return &foundMark{info: storage.Info{Key: key, Size: m.Bytes, ETag: m.ETag, LastModified: m.LastModified}, known: true}, nil
	}
	info, err := r.catalog.Stat(ctx, key)
	if err != nil {
		return nil, markError(key, err)
	}
	return &foundMark{info: info}, nil
}

// readMark gives t the watermark's bytes, read within the work that draws
// it. It reports whether they are the ones mark was found as: only then
// may the variant be cached under its ETag. A mark whose metadata was not
// cached, or described other bytes (it changed behind Prism's back), is
// learnt in the background, as a source is by its render.
func (r *Renderer) readMark(ctx context.Context, t *imaging.Transform, mark *foundMark) (fresh bool, err error) {
	src, current, err := r.catalog.ReadAll(ctx, mark.info.Key, r.cfg.MaxSourceBytes)
	if err != nil {
		return false, markError(mark.info.Key, err)
	}
	if err := t.SetMark(src); err != nil {
		return false, err
	}
	fresh = current.ETag == mark.info.ETag
	if !mark.known || !fresh {
		r.learn(ctx, mark.info.Key)
	}
	return fresh, nil
}

// markError names mark in err: a missing or unreadable watermark is a 400,
// and other failures (limits, storage) keep their status.
func markError(key string, err error) error {
	e := prism.AsError(err)
	switch e.Status {
	case http.StatusNotFound:
		return prism.InvalidParam("mark", "no image is stored at %s", key)
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return prism.InvalidParam("mark", "%s: %s", key, e.Message).WithCause(err)
	case http.StatusUnprocessableEntity:
		out := *e
		out.Param, out.Message = "mark", key+": "+e.Message
		return &out
	}
	return err
}
