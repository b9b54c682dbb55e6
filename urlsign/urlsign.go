// Package urlsign signs and verifies Prism transform URLs. With a signing
// key configured, Prism renders only URLs that carry s=, an HMAC-SHA256 over
// the path and the canonical query, so strangers cannot fill the cache with
// endless variants. Other services sign their URLs with Sign or SignURL;
// this package needs nothing but the standard library and package prism.
package urlsign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"

	"github.com/prism-image/prism"
)

// Canonical is the message a signature covers: the URL path, "?", and the
// transform parameters of query sorted by name, each as name=value with
// query escaping, joined by "&". A repeated parameter counts by its first
// value, as it does for the transform (and as the CDN function keeps it).
// Unknown parameters (utm_*, fbclid…) and s itself are left out, so
// trackers appended to a signed URL, or a reordered query, do not break it.
func Canonical(path string, query url.Values) string {
	var pairs []string
	for _, name := range prism.TransformParams {
		if vs := query[name]; len(vs) > 0 {
			pairs = append(pairs, url.QueryEscape(name)+"="+url.QueryEscape(vs[0]))
		}
	}
	slices.Sort(pairs)
	return path + "?" + strings.Join(pairs, "&")
}

// Sign returns the signature of path and query: base64url, unpadded.
func Sign(key []byte, path string, query url.Values) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(Canonical(path, query)))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// SignURL returns rawURL with its signature set as s=, replacing any.
func SignURL(key []byte, rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	q, err := prism.ParseQuery(u.RawQuery)
	if err != nil {
		return "", err
	}
	q.Del(prism.SignatureParam)
	sig := Sign(key, u.EscapedPath(), q)
	if u.RawQuery != "" {
		u.RawQuery = removeParam(u.RawQuery, prism.SignatureParam) + "&"
	}
	u.RawQuery = strings.TrimPrefix(u.RawQuery+prism.SignatureParam+"="+sig, "&")
	return u.String(), nil
}

// removeParam drops name from a raw query, however its name is escaped
// (s, %73), keeping the rest as written.
func removeParam(raw, name string) string {
	var kept []string
	for _, part := range strings.Split(raw, "&") {
		k, _, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if k != name && part != "" {
			kept = append(kept, part)
		}
	}
	return strings.Join(kept, "&")
}

// Verify reports whether query carries a valid signature of path. It
// compares in constant time.
func Verify(key []byte, path string, query url.Values) bool {
	got, err := base64.RawURLEncoding.DecodeString(query.Get(prism.SignatureParam))
	if err != nil || len(got) != sha256.Size {
		return false
	}
	want, _ := base64.RawURLEncoding.DecodeString(Sign(key, path, query))
	return hmac.Equal(got, want)
}
