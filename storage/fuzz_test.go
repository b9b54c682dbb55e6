package storage

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-image/prism"
)

// No key ValidateKey accepts names a path outside the storage root: in the
// folder backend (a write lands below the root, and nowhere else) or in S3
// (the object key stays under the prefix, with no dot segments a proxy or
// another client could resolve). Everything it refuses is a 400.
func FuzzValidateKey(f *testing.F) {
	for _, k := range []string{
		"uploads/2026/11/cat.jpg", "../etc/passwd", "a/../../b", "a/./b", "/abs", "a//b", `a\..\b`, ".prism/tmp",
		"%2e%2e/x", "a/%2F/b", "ü/🐱.jpg", "a\x00b", "a\nb", "..", ".", "a/", " ../x", "C:/x", "a/..\u2215b",
	} {
		f.Add(k)
	}
	root := f.TempDir()
	store, err := NewFile(filepath.Join(root, "data"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := ValidateKey(key)
		if err != nil {
			if pe := prism.AsError(err); pe.Status != 400 || pe.Code != prism.CodeInvalidKey {
				t.Fatalf("%q: %v is not a 400 invalid_key", key, err)
			}
			return
		}
		s3Key := "prefix/" + key
		if path.Clean(s3Key) != s3Key || !strings.HasPrefix(path.Clean(s3Key), "prefix/") {
			t.Fatalf("%q: the S3 key %q resolves elsewhere", key, s3Key)
		}
		if !filepath.IsLocal(filepath.FromSlash(key)) {
			t.Fatalf("%q is accepted but not local to the root", key)
		}
		info, err := store.Put(context.Background(), key, []byte("x"), PutOptions{})
		if err != nil {
			return // the file system may refuse what S3 takes (a name too long, a file where a folder is)
		}
		got, err := filepath.EvalSymlinks(filepath.Join(store.Dir(), filepath.FromSlash(info.Key)))
		if err != nil {
			t.Fatalf("%q: stored, but %v", key, err)
		}
		dataDir, _ := filepath.EvalSymlinks(store.Dir())
		if rel, err := filepath.Rel(dataDir, got); err != nil || !filepath.IsLocal(rel) {
			t.Fatalf("%q was written at %s, outside %s", key, got, dataDir)
		}
		_ = os.Remove(got)
	})
}
