package render

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/storage"
)

// Stream is an original opened to be sent as it is stored.
type Stream struct {
	Object storage.Object // nil when NotModified; the caller closes it
	// ContentType is what the bytes are, never what the key's name says:
	// an image format Prism reads, else application/octet-stream.
	ContentType  string
	ETag         string
	LastModified time.Time
	// Scriptable says the bytes are no raster image (an SVG, or anything
	// Prism does not read): opened directly, they could run script.
	Scriptable bool
	// Download says the bytes are no image Prism reads: browsers should
	// save them, never display them.
	Download    bool
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
	f, replay, err := sniff(obj)
	if err != nil {
		obj.Close()
		return Stream{}, err
	}
	obj = replay
	info := obj.Info()
	st := Stream{
		Object: obj, ContentType: f.ContentType(), ETag: info.ETag, LastModified: info.LastModified,
		Scriptable: f == imaging.SVG || f == "", Download: f == "", Layer: LayerOriginal,
	}
	return st, nil
}

// sniff names what obj's bytes are from its head, and returns obj as it
// was: its head is replayed from memory, so that streaming it from the
// start costs no second storage request.
func sniff(obj storage.Object) (imaging.Format, storage.Object, error) {
	head := make([]byte, imaging.SniffHeadBytes)
	n, err := io.ReadFull(obj, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", nil, prism.Fail(prism.CodeStorage, "storage read failed").WithCause(err)
	}
	head = head[:n]
	return imaging.SniffHead(head), &replayed{Object: obj, head: head, under: int64(n)}, nil
}

// replayed is an object whose head has been read already: reads within it
// come from memory, and the object underneath is asked to seek only when a
// read leaves the place it stands.
type replayed struct {
	storage.Object
	head  []byte
	pos   int64 // where the next read starts
	under int64 // where the object underneath stands
}

func (r *replayed) Read(p []byte) (int, error) {
	if r.pos < int64(len(r.head)) {
		n := copy(p, r.head[r.pos:])
		r.pos += int64(n)
		return n, nil
	}
	if r.under != r.pos {
		if _, err := r.Object.Seek(r.pos, io.SeekStart); err != nil {
			return 0, err
		}
		r.under = r.pos
	}
	n, err := r.Object.Read(p)
	r.pos += int64(n)
	r.under += int64(n)
	return n, err
}

func (r *replayed) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.Info().Size
	}
	if offset < 0 {
		return 0, errors.New("render: seek before the start")
	}
	r.pos = offset
	return offset, nil
}
