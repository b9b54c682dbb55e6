package urlsign

import (
	"net/url"
	"testing"
)

// A signed URL verifies; no change to its path or to a transform
// parameter's value verifies with the same signature.
func FuzzSignVerify(f *testing.F) {
	f.Add("/uploads/cat.jpg", "w=400&quality=80", "w", "401")
	f.Add("/a b/ü.jpg", "resize=800,600&crop_strategy=smart&utm_source=x", "resize", "800,601")
	f.Add("/x", "", "fm", "avif")
	key := []byte("fuzz-key")
	f.Fuzz(func(t *testing.T, path, rawQuery, param, value string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		q.Del("s")
		signed := url.Values{}
		for k, vs := range q {
			signed[k] = append([]string(nil), vs...)
		}
		signed.Set("s", Sign(key, path, q))
		if !Verify(key, path, signed) {
			t.Fatalf("%q?%q: its own signature does not verify", path, rawQuery)
		}
		if other := path + "x"; Verify(key, other, signed) {
			t.Fatalf("%q?%q: verifies for path %q too", path, rawQuery, other)
		}
		if Canonical(path, q) == Canonical(path, withParam(q, param, value)) {
			return // not a change the signature covers (an unknown parameter, or the same value)
		}
		tampered := withParam(signed, param, value)
		if Verify(key, path, tampered) {
			t.Fatalf("%q?%q: still verifies with %s=%q", path, rawQuery, param, value)
		}
	})
}

// What SignURL signs verifies, whatever the URL held before (an old s=,
// an escaped one, trackers).
func FuzzSignURL(f *testing.F) {
	f.Add("/uploads/cat.jpg", "w=400&quality=80")
	f.Add("/a", "w=1&%73=junk&utm_source=x")
	f.Add("/a%20b/c.jpg", "s=old&fm=webp&s=older")
	key := []byte("fuzz-key")
	f.Fuzz(func(t *testing.T, path, rawQuery string) {
		u, err := url.Parse("https://img.example.com" + path + "?" + rawQuery)
		if err != nil || u.Path == "" || u.Host != "img.example.com" {
			return
		}
		if _, err := url.ParseQuery(u.RawQuery); err != nil {
			return
		}
		signed, err := SignURL(key, u.String())
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		v, err := url.Parse(signed)
		if err != nil || !Verify(key, v.EscapedPath(), v.Query()) {
			t.Fatalf("%s signed as %s does not verify (%v)", u, signed, err)
		}
	})
}

// withParam is q with name's first value set to value.
func withParam(q url.Values, name, value string) url.Values {
	out := url.Values{}
	for k, vs := range q {
		out[k] = append([]string(nil), vs...)
	}
	if vs := out[name]; len(vs) > 0 {
		vs[0] = value
	} else {
		out[name] = []string{value}
	}
	return out
}
