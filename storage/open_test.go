package storage

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/prism-image/prism/internal/testutil"
)

func TestNew(t *testing.T) {
	m := testutil.StartMinIO(t)
	m.Prefix = "some/prefix"
	testutil.SetAWSEnv(t, m)
	m.Put(t, "a.txt", []byte("from s3"), "text/plain")

	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "a.txt"), []byte("from file"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		url  string
		want string // content of a.txt; "" if New must fail
	}{
		{"file://./data", "from file"},
		{"file://" + filepath.Join(dir, "data"), "from file"},
		{"file://./new/dir", ""}, // created, but empty
		{m.StorageURL(), "from s3"},
		{"s3://" + m.Bucket + "/some/prefix/", "from s3"},

		{"", ""},
		{"./data", ""},
		{"/srv/data", ""},
		{"file://", ""},
		{"file://data", ""}, // "data" would be a host name
		{"s3://", ""},
		{"s3:///prefix", ""},
		{"http://example.com/bucket", ""},
		{"gs://bucket", ""},
	}
	ctx := context.Background()
	for _, tt := range tests {
		st, err := New(ctx, tt.url, true)
		valid := tt.want != "" || tt.url == "file://./new/dir"
		if !valid {
			if err == nil {
				t.Errorf("New(%q) = %T, want an error", tt.url, st)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tt.url, err)
			continue
		}
		if c, ok := st.(io.Closer); ok {
			defer c.Close()
		}
		if tt.want == "" {
			continue
		}
		o, err := st.Open(ctx, "a.txt")
		if err != nil {
			t.Errorf("New(%q).Open(a.txt): %v", tt.url, err)
			continue
		}
		got, err := io.ReadAll(o)
		o.Close()
		if err != nil || string(got) != tt.want {
			t.Errorf("New(%q).Open(a.txt) read %q, %v; want %q", tt.url, got, err, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "new", "dir")); err != nil {
		t.Errorf("file://./new/dir not created: %v", err)
	}
}
