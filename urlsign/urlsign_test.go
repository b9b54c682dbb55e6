package urlsign

import (
	"net/url"
	"strings"
	"testing"
)

func TestSignAndVerify(t *testing.T) {
	key := []byte("secret")
	signed, err := SignURL(key, "https://img.example.com/uploads/2026/my%20cat.jpg?w=400&quality=80&utm_source=x")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(signed)
	sig := u.Query().Get("s")
	if len(sig) != 43 || !strings.HasPrefix(u.RawQuery, "w=400&quality=80&utm_source=x&s=") {
		t.Fatalf("signed URL %s", signed)
	}
	tests := []struct {
		name  string
		path  string
		query string
		key   string
		valid bool
	}{
		{"as signed", u.EscapedPath(), u.RawQuery, "secret", true},
		{"reordered", u.EscapedPath(), "s=" + sig + "&quality=80&w=400", "secret", true},
		{"trackers added or dropped", u.EscapedPath(), "w=400&fbclid=abc&quality=80&s=" + sig, "secret", true},
		{"tampered width", u.EscapedPath(), "w=4000&quality=80&s=" + sig, "secret", false},
		{"parameter added", u.EscapedPath(), "w=400&quality=80&fm=png&s=" + sig, "secret", false},
		{"parameter removed", u.EscapedPath(), "w=400&s=" + sig, "secret", false},
		{"other path", "/uploads/2026/dog.jpg", "w=400&quality=80&s=" + sig, "secret", false},
		{"other key", u.EscapedPath(), u.RawQuery, "Secret", false},
		{"missing", u.EscapedPath(), "w=400&quality=80", "secret", false},
		{"empty", u.EscapedPath(), "w=400&quality=80&s=", "secret", false},
		{"garbage", u.EscapedPath(), "w=400&quality=80&s=%%%", "secret", false},
		{"truncated", u.EscapedPath(), "w=400&quality=80&s=" + sig[:40], "secret", false},
		{"alias is another message", u.EscapedPath(), "w=400&q=80&s=" + sig, "secret", false},
		{"repeats after the first value do not count", u.EscapedPath(), "w=400&quality=80&w=9&s=" + sig, "secret", true},
		{"the first value does", u.EscapedPath(), "w=9&w=400&quality=80&s=" + sig, "secret", false},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		if got := Verify([]byte(tt.key), tt.path, q); got != tt.valid {
			t.Errorf("%s: Verify = %v, want %v", tt.name, got, tt.valid)
		}
	}
}

func TestSignURLReplacesSignature(t *testing.T) {
	key := []byte("k")
	once, _ := SignURL(key, "/a.jpg?w=1")
	twice, _ := SignURL(key, once)
	if once != twice {
		t.Errorf("re-signing changed the URL: %s → %s", once, twice)
	}
	bare, _ := SignURL(key, "/a.jpg")
	if !strings.HasPrefix(bare, "/a.jpg?s=") {
		t.Errorf("signing a URL without a query: %s", bare)
	}
}

func TestCanonical(t *testing.T) {
	q, _ := url.ParseQuery("w=400&crop=10,10,50px,50px&fm=webp&utm_campaign=x&s=abc&bg=%23fff")
	want := "/a/b.jpg?bg=%23fff&crop=10%2C10%2C50px%2C50px&fm=webp&w=400"
	if got := Canonical("/a/b.jpg", q); got != want {
		t.Errorf("Canonical = %q, want %q", got, want)
	}
}
