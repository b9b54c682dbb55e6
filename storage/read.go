package storage

import (
	"bytes"
	"io"
	"net/http"

	"github.com/prism-image/prism"
)

// ReadAll reads a whole object into one buffer sized up front. An object
// over limit bytes is a 422 *prism.Error: refused from its recorded size
// before any byte is read, and never read past limit even when the backend
// understated the size.
func ReadAll(obj Object, limit int64) ([]byte, error) {
	size := obj.Info().Size
	if size > limit {
		return nil, tooLarge(size, limit)
	}
	var buf bytes.Buffer
	buf.Grow(int(max(size, 0)) + bytes.MinRead) // ReadFrom wants MinRead spare to not grow
	if _, err := buf.ReadFrom(io.LimitReader(obj, limit+1)); err != nil {
		return nil, prism.Wrap(err, http.StatusBadGateway, prism.CodeStorage, "storage read failed")
	}
	if int64(buf.Len()) > limit {
		return nil, tooLarge(int64(buf.Len()), limit)
	}
	return buf.Bytes(), nil
}

func tooLarge(size, limit int64) error {
	return prism.Errorf(http.StatusUnprocessableEntity, prism.CodeTooLarge,
		"source is %d bytes, over the limit of %d", size, limit)
}
