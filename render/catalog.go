package render

import (
	"context"
	"time"

	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/storage"
)

// What the catalog does without decoding, and the health of libvips, so
// that callers of the image work have one owner to ask.

// Delete removes key and everything derived from it.
func (r *Renderer) Delete(ctx context.Context, key string) error { return r.catalog.Delete(ctx, key) }

// Forget drops what is known of key after it changed outside the API.
func (r *Renderer) Forget(ctx context.Context, key string) { r.catalog.Forget(ctx, key) }

// Stat asks storage for key within the storage deadline, remembering a
// missing key as missing.
func (r *Renderer) Stat(ctx context.Context, key string) (storage.Info, error) {
	return r.catalog.Stat(ctx, key)
}

// PresignDownload returns a URL from which anyone may GET the original at
// key (S3 only; a 501 otherwise).
func (r *Renderer) PresignDownload(ctx context.Context, key string, expiry time.Duration) (string, error) {
	return r.catalog.PresignDownload(ctx, key, expiry)
}

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
