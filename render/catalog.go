package render

import (
	"context"
	"time"

	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/storage"
)

// The catalog's writes that need no decoding, and the health of libvips,
// so that callers of the image work have one owner to ask.

// Delete removes key and everything derived from it.
func (r *Renderer) Delete(ctx context.Context, key string) error { return r.catalog.Delete(ctx, key) }

// PresignUpload returns a form with which a browser uploads straight to
// storage (S3 only; a 501 otherwise).
func (r *Renderer) PresignUpload(ctx context.Context, key string, maxBytes int64, expiry time.Duration) (storage.PresignedPost, error) {
	return r.catalog.PresignUpload(ctx, key, maxBytes, expiry)
}

// Health reports whether libvips can still do work: a tiny encode, which
// takes no worker (a busy server is a healthy one) but is refused once
// Close has begun, since libvips is shut down after it.
func (r *Renderer) Health(ctx context.Context) error {
	_, end, err := r.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	return imaging.Health()
}
