package storage

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prism-image/prism"
)

// TestFileSymlinks checks that symlinks work inside the root and fail, without
// revealing content, when they lead outside it.
func TestFileSymlinks(t *testing.T) {
	base := t.TempDir()
	secret := filepath.Join(base, "secret.txt")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewFile(filepath.Join(base, "root"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	root := s.Dir()
	if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"inside":          "a.txt",
		"escape-relative": "../secret.txt",
		"escape-absolute": secret,
		"escape-dir":      "..",
		"escape-abs-dir":  base,
		"loop":            "loop",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}

	ctx := context.Background()
	o, err := s.Open(ctx, "inside")
	if err != nil {
		t.Fatalf("Open(inside): %v", err)
	}
	got, _ := io.ReadAll(o)
	o.Close()
	if string(got) != "inside" {
		t.Errorf("Open(inside) read %q, want %q", got, "inside")
	}

	for _, key := range []string{
		"escape-relative",
		"escape-absolute",
		"escape-dir/secret.txt",
		"escape-abs-dir/secret.txt",
		"loop",
	} {
		o, err := s.Open(ctx, key)
		if err == nil {
			got, _ := io.ReadAll(o)
			o.Close()
			t.Errorf("Open(%q) read %q, want an error", key, got)
			continue
		}
		wantStatus(t, "Open("+key+")", err, http.StatusNotFound, prism.CodeNotFound)
		_, err = s.Stat(ctx, key)
		wantStatus(t, "Stat("+key+")", err, http.StatusNotFound, prism.CodeNotFound)
	}
}

// TestFileETag checks that the ETag follows the file's content.
func TestFileETag(t *testing.T) {
	s, err := NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := filepath.Join(s.Dir(), "a.txt")
	ctx := context.Background()
	etag := func() string {
		t.Helper()
		info, err := s.Stat(ctx, "a.txt")
		if err != nil {
			t.Fatal(err)
		}
		return info.ETag
	}

	if err := os.WriteFile(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := etag()
	if again := etag(); again != first {
		t.Errorf("ETag changed without a write: %s, then %s", first, again)
	}
	// Same size, new content: only the modification time tells them apart.
	if err := os.WriteFile(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if second := etag(); second == first {
		t.Errorf("ETag %s unchanged after a rewrite", second)
	}
}

// TestNewFileCreatesRoot checks that a missing root is created.
func TestNewFileCreatesRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("root %s not created: %v", dir, err)
	}
}
