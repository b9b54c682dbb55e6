package render

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/storage"
)

// Stream is an original opened to be sent as it is stored.
type Stream struct {
	Object       storage.Object // nil when NotModified; the caller closes it
	ContentType  string
	ETag         string
	LastModified time.Time
	// Scriptable says the bytes are no raster image (SVG, HTML…): opened
	// directly, they could run script.
	Scriptable  bool
	Layer       Layer
	NotModified bool
}

// Original opens key's stored bytes. fresh, when set, reports whether the
// client holds the ETag cached metadata gives: then storage is not asked
// and the Stream is NotModified. A remembered miss fails with Stream.Layer
// LayerMissing.
func (r *Renderer) Original(ctx context.Context, key string, fresh func(etag string) bool) (Stream, error) {
	// A remembered analysis failure does not matter here: the bytes are
	// served as they are.
	m, found, _ := r.catalog.Lookup(ctx, key)
	switch {
	case found == cache.Missing:
		return Stream{Layer: LayerMissing}, notFound()
	case found == cache.Hit && m.ETag != "" && fresh != nil && fresh(m.ETag):
		return Stream{ETag: m.ETag, LastModified: m.LastModified, Layer: LayerMetadata, NotModified: true}, nil
	}
	obj, err := r.catalog.Open(ctx, key)
	if err != nil {
		return Stream{}, err
	}
	info := obj.Info()
	ct, err := contentType(info, key, obj)
	if err != nil {
		obj.Close()
		return Stream{}, err
	}
	return Stream{
		Object: obj, ContentType: ct, ETag: info.ETag, LastModified: info.LastModified,
		Scriptable: !strings.HasPrefix(ct, "image/") || ct == imaging.SVG.ContentType(),
		Layer:      LayerOriginal,
	}, nil
}

// contentType is the type the backend recorded when it is specific, else
// the one the key's extension implies, else the one the bytes show.
func contentType(info storage.Info, key string, obj storage.Object) (string, error) {
	if ct := info.ContentType; ct != "" && ct != "application/octet-stream" && ct != "binary/octet-stream" {
		return ct, nil
	}
	if ct := mime.TypeByExtension(strings.ToLower(path.Ext(key))); ct != "" {
		return ct, nil
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(obj, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", prism.Fail(prism.CodeStorage, "storage read failed").WithCause(err)
	}
	if _, err := obj.Seek(0, io.SeekStart); err != nil {
		return "", prism.Fail(prism.CodeStorage, "storage read failed").WithCause(err)
	}
	if f := imaging.Sniff(head[:n]); f != "" {
		return f.ContentType(), nil
	}
	return http.DetectContentType(head[:n]), nil
}
