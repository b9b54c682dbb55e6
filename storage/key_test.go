package storage

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/prism-image/prism"
)

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"a.jpg", true},
		{"photos/2024/a.jpg", true},
		{"ünïcode/ä b.png", true},
		{"with space.jpg", true},
		{"..hidden/x..y/...", true}, // dots inside names are fine
		{".well-known/a", true},
		{"%00", true}, // a literal percent sign; decoding is the server's job
		{strings.Repeat("a", MaxKeyLen), true},

		{"", false},
		{strings.Repeat("a", MaxKeyLen+1), false},
		{"bad\xffutf8", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\tb", false},
		{"a\x1fb", false},
		{"a\x7fb", false},
		{"/etc/passwd", false},
		{"/", false},
		{"a/", false},
		{"a//b", false},
		{`a\b`, false},
		{`..\..\etc\passwd`, false},
		{".", false},
		{"..", false},
		{"./a", false},
		{"a/./b", false},
		{"../etc/passwd", false},
		{"a/../../b", false},
		{"a/..", false},

		// Reserved for Prism's own files.
		{".prism", false},
		{".prism/tmp/x", false},
		{".prism/a.jpg", false},
		{".Prism/tmp/x", false},
		{".PRISM", false},
		{"a/.prism/b", true}, // only the first segment is reserved
		{".prism2/a", true},
		{".prismx", true},
		{"prism/a", true},
	}
	for _, tt := range tests {
		err := ValidateKey(tt.key)
		if tt.ok {
			if err != nil {
				t.Errorf("ValidateKey(%q) = %v, want nil", tt.key, err)
			}
			continue
		}
		var pe *prism.Error
		if !errors.As(err, &pe) {
			t.Errorf("ValidateKey(%q) = %v, want *prism.Error", tt.key, err)
			continue
		}
		if pe.Status != http.StatusBadRequest || pe.Code != prism.CodeInvalidKey {
			t.Errorf("ValidateKey(%q) = %d %s, want 400 %s", tt.key, pe.Status, pe.Code, prism.CodeInvalidKey)
		}
	}
}
