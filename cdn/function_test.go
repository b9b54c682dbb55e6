package cdn

import (
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/prism-image/prism"
)

// The viewer-request function keeps exactly the parameters the server acts
// on, and the signature: a parameter it dropped could never be used behind
// the CDN, one it kept in excess would split the cache for nothing.
func TestFunctionKeepsTheServersParameters(t *testing.T) {
	src, err := os.ReadFile("viewer-request.js")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)const KNOWN = \[(.*?)\];`).FindSubmatch(src)
	if block == nil {
		t.Fatal("no `const KNOWN = [...]` in viewer-request.js")
	}
	var known []string
	for _, m := range regexp.MustCompile(`'([a-z_-]+)'`).FindAllSubmatch(block[1], -1) {
		known = append(known, string(m[1]))
	}
	want := append(slices.Clone(prism.TransformParams), prism.SignatureParam)
	slices.Sort(known)
	slices.Sort(want)
	if !slices.Equal(known, want) {
		t.Errorf("the function keeps %v; the server acts on %v", known, want)
	}
}
