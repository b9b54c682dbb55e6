package storage

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/prism-image/prism"
)

// MaxKeyLen is the longest key accepted, in bytes. It is S3's own limit.
const MaxKeyLen = 1024

// ReservedDir is the first key segment reserved for Prism's own files (the
// file backend's temporary files among them). No key may start with it, in
// any letter case, since some file systems ignore case.
const ReservedDir = ".prism"

// ValidateKey reports whether key is acceptable to every backend: a relative,
// slash-separated path of non-empty segments with no "." or ".." among them,
// whose first segment is not ReservedDir.
// Keys are checked before any backend sees them, so that the file backend
// never has to reason about escaping its root and the S3 backend never holds
// objects the file backend could not. The error is a 400 *prism.Error.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return invalidKey("empty key")
	case len(key) > MaxKeyLen:
		return invalidKey("key longer than %d bytes", MaxKeyLen)
	case !utf8.ValidString(key):
		return invalidKey("key is not valid UTF-8")
	case strings.HasPrefix(key, "/"):
		return invalidKey("key must not start with /")
	case strings.HasSuffix(key, "/"):
		return invalidKey("key must not end with /")
	case strings.Contains(key, `\`):
		// A separator on Windows, and never needed in a key.
		return invalidKey(`key must not contain \`)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c == 0x7f {
			return invalidKey("key contains control character 0x%02x", c)
		}
	}
	if first, _, _ := strings.Cut(key, "/"); strings.EqualFold(first, ReservedDir) {
		return invalidKey("keys under %s/ are reserved", ReservedDir)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return invalidKey("key contains an empty path segment")
		case ".", "..":
			return invalidKey("key contains a %q path segment", seg)
		}
	}
	return nil
}

func invalidKey(format string, args ...any) error {
	return prism.Errorf(http.StatusBadRequest, prism.CodeInvalidKey, format, args...)
}

// EscapePath is key as the path of a URL: each segment percent-escaped,
// the slashes between them kept.
func EscapePath(key string) string {
	segments := strings.Split(key, "/")
	for i, seg := range segments {
		segments[i] = url.PathEscape(seg)
	}
	return strings.Join(segments, "/")
}
