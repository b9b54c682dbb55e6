// Package storage reads originals from where they live: a local folder or an
// S3 bucket. It knows nothing of images; it hands out bytes with the identity
// (ETag, size, modification time) that caching decisions hang on.
package storage

import (
	"context"
	"io"
	"time"
)

// Info describes a stored object.
type Info struct {
	Key          string
	Size         int64
	ETag         string // strong, quoted, as it would appear in an HTTP header
	LastModified time.Time
	ContentType  string // as recorded by the backend; empty when it records none
}

// Object is an open stored object. Reads start at offset 0; Seek moves the
// read position (ranged reads for HTTP Range requests) without fetching data
// that is never read. Close must always be called.
type Object interface {
	io.ReadSeekCloser
	Info() Info
}

// Storage is where originals live.
type Storage interface {
	// Open opens key for reading. A missing key is a 404 *prism.Error; a
	// backend failure is a 502, a backend timeout a 504.
	Open(ctx context.Context, key string) (Object, error)
	// Stat returns the object's Info without reading its content.
	Stat(ctx context.Context, key string) (Info, error)
}
