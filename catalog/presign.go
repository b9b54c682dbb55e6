package catalog

import (
	"context"
	"time"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/storage"
)

// uploadPresigner is a store browsers can upload to directly (S3).
type uploadPresigner interface {
	PresignPost(ctx context.Context, key string, maxBytes int64, expiry time.Duration) (storage.PresignedPost, error)
}

// downloadPresigner is a store that hands out download URLs (S3).
type downloadPresigner interface {
	PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error)
}

// PresignUpload returns a form with which a browser uploads straight to
// storage at key, within maxBytes, until expiry; a 501 when the store
// cannot take direct uploads (a folder). Such an original is learnt the
// first time it is served.
func (c *Catalog) PresignUpload(ctx context.Context, key string, maxBytes int64, expiry time.Duration) (storage.PresignedPost, error) {
	p, ok := c.store.(uploadPresigner)
	if !ok {
		return storage.PresignedPost{}, prism.Fail(prism.CodeNotImplemented,
			"direct uploads need the S3 backend; this server stores originals in a local folder, so upload through the API instead")
	}
	if err := storage.ValidateKey(key); err != nil {
		return storage.PresignedPost{}, err
	}
	return p.PresignPost(ctx, key, maxBytes, expiry)
}

// PresignDownload returns a URL from which anyone may GET the original at
// key until expiry; a 501 when the store has no URLs of its own (a folder).
func (c *Catalog) PresignDownload(ctx context.Context, key string, expiry time.Duration) (string, error) {
	p, ok := c.store.(downloadPresigner)
	if !ok {
		return "", prism.Fail(prism.CodeNotImplemented, "presigned downloads need the S3 backend; this store is a local folder")
	}
	return p.PresignGet(ctx, key, expiry)
}
