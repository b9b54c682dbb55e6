// Package storage keeps objects in a local folder or an S3 bucket: it
// reads, writes and deletes them by key, and the S3 backend also presigns
// direct uploads and downloads. It knows nothing of images; it hands out
// bytes with the identity (ETag, size, modification time) that caching
// decisions hang on.
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

// Storage is what every backend does. Presigning is S3's alone: (*S3)
// PresignPost and PresignGet, which callers reach through an interface of
// their own.
type Storage interface {
	// Open opens key for reading. A missing key is a 404 *prism.Error; a
	// backend failure is a 502, a backend timeout a 504.
	Open(ctx context.Context, key string) (Object, error)
	// Stat returns the object's Info without reading its content.
	Stat(ctx context.Context, key string) (Info, error)

	// Put stores data at key atomically: readers see the old object or the
	// new one, never a part; a failed Put leaves nothing at key. It returns
	// the stored object's Info, exactly as Open and Stat report it later
	// (unless another write has replaced it since). With IfNoneMatch, an
	// existing key is a 412 *prism.Error (code precondition_failed) and is
	// left untouched.
	Put(ctx context.Context, key string, data []byte, opts PutOptions) (Info, error)
	// Delete removes key. A missing key is a 404 *prism.Error.
	Delete(ctx context.Context, key string) error
	// DeletePrefix removes every object whose key starts with prefix + "/"
	// (prefix is a key-like path, validated like a key; the object at
	// prefix itself is NOT removed). Removing nothing is not an error. It
	// is used to purge all the rendered variants stored under a source key.
	DeletePrefix(ctx context.Context, prefix string) error
}

// PutOptions modify a Put.
type PutOptions struct {
	// ContentType is recorded with the object by backends that record one
	// (S3); the file backend records none. Empty records none either.
	ContentType string
	// IfNoneMatch refuses to replace an existing object: the Put fails with
	// a 412 *prism.Error, as for an HTTP "If-None-Match: *".
	IfNoneMatch bool
}

// PresignedPost is a browser-ready direct upload. The client POSTs a
// multipart/form-data body to URL holding every one of Fields, then a
// "Content-Type" field with the image's type (which must start with
// "image/"), then the file itself as the last field, named "file". Fields
// are sent as they are, unencoded beyond what multipart requires.
//
// Key is the Prism key the upload lands at, as Open takes it; Fields["key"]
// is the backend's own name for it, which includes any storage prefix.
type PresignedPost struct {
	URL     string            `json:"url"`
	Fields  map[string]string `json:"fields"`
	Key     string            `json:"key"`
	Expires time.Time         `json:"expires_at"`
}
