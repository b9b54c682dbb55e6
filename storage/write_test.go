package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prism-image/prism"
)

// TestWrites runs the write tests against every backend.
func TestWrites(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Run("Put", func(t *testing.T) { testPut(t, b) })
			t.Run("Delete", func(t *testing.T) { testDelete(t, b) })
			t.Run("ReservedKey", func(t *testing.T) { testWriteInvalidKey(t, b) })
			t.Run("Concurrent", func(t *testing.T) { testConcurrentPut(t, b) })
			t.Run("ConcurrentCreate", func(t *testing.T) { testConcurrentCreate(t, b) })
			t.Run("FailedPut", func(t *testing.T) { testFailedPut(t, b) })
			t.Run("InterruptedPut", func(t *testing.T) { testInterruptedPut(t, b) })
			// Whatever happened above, no temporary file survives it.
			noTempFiles(t, b)
		})
	}
}

func testPut(t *testing.T, b backend) {
	ctx := context.Background()
	tests := []struct {
		name     string
		key      string
		existing []byte // stored first when not nil
		data     []byte
		opts     PutOptions
		status   int // the Put's error status; 0 for success
	}{
		{"new", "put/new.bin", nil, testData, PutOptions{}, 0},
		{"new with content type", "put/typed.jpg", nil, []byte("\xff\xd8\xff jpeg"), PutOptions{ContentType: "image/jpeg"}, 0},
		{"empty", "put/empty", nil, []byte{}, PutOptions{}, 0},
		{"new parent directories", "put/a/b/c/deep.png", nil, []byte("deep"), PutOptions{}, 0},
		{"unicode key", "put/ünï/ä b.png", nil, []byte("unicode"), PutOptions{}, 0},
		// Same size: the ETag must move anyway, however fast the rewrite.
		{"replace same size", "put/same-size", []byte("old!"), []byte("new!"), PutOptions{}, 0},
		{"replace other size", "put/other-size", []byte("old"), testData, PutOptions{}, 0},
		{"replace with identical bytes", "put/identical", []byte("same"), []byte("same"), PutOptions{}, 0},
		{"replace fixture", "a.bin", nil, []byte("a.bin replaced"), PutOptions{}, 0},
		{"if-none-match new", "put/inm-new", nil, []byte("first"), PutOptions{IfNoneMatch: true}, 0},
		{"if-none-match existing", "put/inm-existing", []byte("old"), []byte("new"), PutOptions{IfNoneMatch: true}, http.StatusPreconditionFailed},
		{"if-none-match existing typed", "put/inm-typed", []byte("old"), []byte("new"), PutOptions{IfNoneMatch: true, ContentType: "image/png"}, http.StatusPreconditionFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var old Info
			if tt.existing != nil {
				var err error
				if old, err = b.st.Put(ctx, tt.key, tt.existing, PutOptions{}); err != nil {
					t.Fatalf("Put(existing): %v", err)
				}
			} else if fixture, ok := fixtures[tt.key]; ok {
				var err error
				if old, err = b.st.Stat(ctx, tt.key); err != nil {
					t.Fatal(err)
				}
				tt.existing = fixture
			}

			info, err := b.st.Put(ctx, tt.key, tt.data, tt.opts)
			if tt.status != 0 {
				wantStatus(t, "Put", err, tt.status, prism.CodePreconditionFailed)
				// The old object is untouched.
				wantContent(t, b, tt.key, tt.existing)
				if stat, err := b.st.Stat(ctx, tt.key); err != nil || !sameInfo(stat, old) {
					t.Errorf("Stat after a refused Put = %+v, %v; want the old %+v", stat, err, old)
				}
				return
			}
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if info.Key != tt.key || info.Size != int64(len(tt.data)) || !strongETag(info.ETag) {
				t.Errorf("Put's Info = %+v, want key %q, size %d and a strong ETag", info, tt.key, len(tt.data))
			}
			if lm := info.LastModified; time.Since(lm) > time.Minute || time.Until(lm) > time.Second {
				t.Errorf("Put's Info.LastModified = %v, want about now", lm)
			}
			want := ""
			if b.name == "s3" {
				want = tt.opts.ContentType
			}
			if want != "" && info.ContentType != want {
				t.Errorf("Put's Info.ContentType = %q, want %q", info.ContentType, want)
			}
			if b.name == "file" && info.ContentType != "" {
				t.Errorf("Put's Info.ContentType = %q, want none", info.ContentType)
			}
			if tt.existing != nil && info.ETag == old.ETag && b.name == "file" {
				// S3's ETag is the content's MD5: it moves with the
				// content only, which is what the identity is for.
				t.Errorf("replacement kept the ETag %s", info.ETag)
			}
			if tt.existing != nil && !bytes.Equal(tt.existing, tt.data) && info.ETag == old.ETag {
				t.Errorf("replacement with new content kept the ETag %s", info.ETag)
			}

			stat, err := b.st.Stat(ctx, tt.key)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if !sameInfo(stat, info) {
				t.Errorf("Stat = %+v, Put's Info = %+v", stat, info)
			}
			o := wantContent(t, b, tt.key, tt.data)
			if !sameInfo(o, info) {
				t.Errorf("Open's Info = %+v, Put's Info = %+v", o, info)
			}
		})
	}
}

func testDelete(t *testing.T, b backend) {
	ctx := context.Background()
	put(t, b, "del/dir/child", []byte("child"))
	tests := []struct {
		name   string
		key    string
		create bool // Put key first
		status int  // 0 for success
	}{
		{"existing", "del/existing", true, 0},
		{"nested", "del/x/y/z", true, 0},
		{"fixture", "nested/dir/b.jpg", false, 0},
		{"missing", "del/missing", false, http.StatusNotFound},
		{"below missing", "del/nowhere/missing", false, http.StatusNotFound},
		{"directory", "del/dir", false, http.StatusNotFound}, // a mere prefix in S3
		{"below a file", "del/dir/child/grandchild", false, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.create {
				put(t, b, tt.key, []byte("to be deleted"))
			}
			err := b.st.Delete(ctx, tt.key)
			if tt.status != 0 {
				wantStatus(t, "Delete", err, tt.status, prism.CodeNotFound)
			} else if err != nil {
				t.Fatalf("Delete: %v", err)
			}
			o, err := b.st.Open(ctx, tt.key)
			if err == nil {
				o.Close()
			}
			wantStatus(t, "Open after Delete", err, http.StatusNotFound, prism.CodeNotFound)
			_, err = b.st.Stat(ctx, tt.key)
			wantStatus(t, "Stat after Delete", err, http.StatusNotFound, prism.CodeNotFound)
			err = b.st.Delete(ctx, tt.key)
			wantStatus(t, "Delete again", err, http.StatusNotFound, prism.CodeNotFound)
		})
	}
	// Refusing to delete the directory left what is in it alone.
	wantContent(t, b, "del/dir/child", []byte("child"))
}

// testWriteInvalidKey checks that writes refuse what reads refuse, the
// reserved .prism/ above all.
func testWriteInvalidKey(t *testing.T, b backend) {
	wantInvalidKeys(t, b, []string{
		".prism",
		".prism/tmp",
		".prism/tmp/x.tmp",
		".prism/a.jpg",
		".PRISM/tmp/x",
		"",
		"../escape",
		"a/../../escape",
		"/abs",
		"a//b",
		"a\x00b",
	})
	if f, ok := b.st.(*File); ok {
		// The temporary directory exists by now, and is out of reach.
		if fi, err := os.Stat(filepath.Join(f.Dir(), ".prism", "tmp")); err != nil || !fi.IsDir() {
			t.Fatalf(".prism/tmp: %v", err)
		}
	}
}

// testConcurrentPut has writers race to replace one key while readers read
// it: every read is one payload whole, and so is the end result.
func testConcurrentPut(t *testing.T, b backend) {
	const (
		key     = "concurrent/obj"
		writers = 8
		rounds  = 4
		readers = 4
	)
	ctx := context.Background()
	payloads := make([][]byte, writers)
	bySize := map[int]int{} // payload size to index
	for i := range payloads {
		p := make([]byte, 20_000*(i+1)+i) // all sizes differ
		for j := range p {
			p[j] = byte(i*37 + j%241)
		}
		payloads[i] = p
		bySize[len(p)] = i
	}
	put(t, b, key, payloads[0])

	var (
		wg       sync.WaitGroup
		done     atomic.Bool
		reads    atomic.Int64
		mu       sync.Mutex
		putInfos []Info
	)
	for i := range writers {
		wg.Go(func() {
			for range rounds {
				info, err := b.st.Put(ctx, key, payloads[i], PutOptions{})
				if err != nil {
					t.Errorf("writer %d: Put: %v", i, err)
					return
				}
				mu.Lock()
				putInfos = append(putInfos, info)
				mu.Unlock()
			}
		})
	}
	var rwg sync.WaitGroup
	for r := range readers {
		rwg.Go(func() {
			// At least a few reads each, however fast the writers are.
			for n := 0; n < 5 || !done.Load(); n++ {
				o, err := b.st.Open(ctx, key)
				if err != nil {
					t.Errorf("reader %d: Open: %v", r, err)
					return
				}
				got, err := io.ReadAll(o)
				info := o.Info()
				o.Close()
				if err != nil {
					t.Errorf("reader %d: reading: %v", r, err)
					return
				}
				i, ok := bySize[len(got)]
				if !ok || !bytes.Equal(got, payloads[i]) {
					t.Errorf("reader %d read %d bytes that are no payload", r, len(got))
					return
				}
				if info.Size != int64(len(got)) {
					t.Errorf("reader %d: Info().Size = %d for %d bytes read", r, info.Size, len(got))
				}
				reads.Add(1)
			}
		})
	}
	wg.Wait()
	done.Store(true)
	rwg.Wait()
	t.Logf("%d reads during %d writes", reads.Load(), writers*rounds)

	o, err := b.st.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(o)
	final := o.Info()
	o.Close()
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := bySize[len(got)]; !ok || !bytes.Equal(got, payloads[i]) {
		t.Fatalf("final content: %d bytes that are no payload", len(got))
	}
	// The survivor is one of the writes, exactly as its Put described it.
	found := false
	for _, info := range putInfos {
		if info.ETag == final.ETag && info.Size == final.Size {
			found = true
		}
	}
	if !found {
		t.Errorf("final object %+v matches no Put's Info", final)
	}
}

// testConcurrentCreate has writers race to create one key with IfNoneMatch:
// exactly one wins, and the key holds its payload.
func testConcurrentCreate(t *testing.T, b backend) {
	const writers = 8
	ctx := context.Background()
	for round := range 3 {
		key := fmt.Sprintf("create/%d", round)
		var (
			wg      sync.WaitGroup
			winners atomic.Int64
			winner  atomic.Int64
		)
		for i := range writers {
			wg.Go(func() {
				_, err := b.st.Put(ctx, key, []byte(fmt.Sprintf("writer %d", i)), PutOptions{IfNoneMatch: true})
				if err == nil {
					winners.Add(1)
					winner.Store(int64(i))
					return
				}
				wantStatus(t, fmt.Sprintf("writer %d", i), err, http.StatusPreconditionFailed, prism.CodePreconditionFailed)
			})
		}
		wg.Wait()
		if n := winners.Load(); n != 1 {
			t.Fatalf("%s: %d writers succeeded, want exactly 1", key, n)
		}
		wantContent(t, b, key, []byte(fmt.Sprintf("writer %d", winner.Load())))
	}
}

// testFailedPut checks that Puts that fail leave nothing behind.
func testFailedPut(t *testing.T, b backend) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	ctx := context.Background()

	put(t, b, "fail/file", []byte("a file"))
	put(t, b, "fail/dir/x", []byte("in a directory"))
	put(t, b, "fail/existing", []byte("old"))

	tests := []struct {
		name   string
		ctx    context.Context
		key    string
		opts   PutOptions
		status int
		code   string
		want   []byte // content of key afterwards; nil: nothing
		only   string // backend the case applies to; "" for all
	}{
		{"cancelled", cancelled, "fail/cancelled", PutOptions{}, http.StatusBadGateway, prism.CodeStorage, nil, ""},
		{"cancelled replace", cancelled, "fail/existing", PutOptions{}, http.StatusBadGateway, prism.CodeStorage, []byte("old"), ""},
		{"expired", expired, "fail/expired", PutOptions{}, http.StatusGatewayTimeout, prism.CodeStorageTimeout, nil, ""},
		{"cancelled if-none-match", cancelled, "fail/cancelled-inm", PutOptions{IfNoneMatch: true}, http.StatusBadGateway, prism.CodeStorage, nil, ""},
		{"if-none-match existing", ctx, "fail/existing", PutOptions{IfNoneMatch: true}, http.StatusPreconditionFailed, prism.CodePreconditionFailed, []byte("old"), ""},
		// A folder cannot hold both a/b and a/b/c; S3 can.
		{"parent is a file", ctx, "fail/file/child", PutOptions{}, http.StatusConflict, prism.CodeInvalidKey, nil, "file"},
		{"grandparent is a file", ctx, "fail/file/child/grandchild", PutOptions{}, http.StatusConflict, prism.CodeInvalidKey, nil, "file"},
		{"parent is a file, if-none-match", ctx, "fail/file/child", PutOptions{IfNoneMatch: true}, http.StatusConflict, prism.CodeInvalidKey, nil, "file"},
		{"directory at key", ctx, "fail/dir", PutOptions{}, http.StatusConflict, prism.CodeInvalidKey, nil, "file"},
		{"segment too long", ctx, "fail/" + strings.Repeat("x", 300), PutOptions{}, http.StatusBadRequest, prism.CodeInvalidKey, nil, "file"},
	}
	for _, tt := range tests {
		if tt.only != "" && tt.only != b.name {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.st.Put(tt.ctx, tt.key, []byte("new content"), tt.opts)
			wantStatus(t, "Put", err, tt.status, tt.code)
			if tt.want != nil {
				wantContent(t, b, tt.key, tt.want)
			} else {
				_, err := b.st.Stat(ctx, tt.key)
				wantStatus(t, "Stat after a failed Put", err, http.StatusNotFound, prism.CodeNotFound)
			}
			noTempFiles(t, b)
		})
	}
	// Nothing in the way was harmed.
	wantContent(t, b, "fail/file", []byte("a file"))
	wantContent(t, b, "fail/dir/x", []byte("in a directory"))
}

// testInterruptedPut cancels large Puts at various points of their course:
// each either succeeds whole or leaves nothing.
func testInterruptedPut(t *testing.T, b backend) {
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i % 253)
	}
	for i, delay := range []time.Duration{0, 100 * time.Microsecond, time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond, 100 * time.Millisecond} {
		key := fmt.Sprintf("interrupted/%d", i)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(delay, cancel)
		_, err := b.st.Put(ctx, key, data, PutOptions{})
		cancel()
		t.Logf("cancelled after %v: %v", delay, err)
		_, statErr := b.st.Stat(context.Background(), key)
		switch {
		case err == nil, b.name == "s3" && statErr == nil:
			// S3 may store the object and the cancellation end the
			// wait for its answer: the Put fails, but the object is
			// whole all the same.
			wantContent(t, b, key, data)
		default:
			wantStatus(t, fmt.Sprintf("Stat after a Put cancelled after %v", delay), statErr, http.StatusNotFound, prism.CodeNotFound)
		}
		noTempFiles(t, b)
	}
}

// TestFileSweepTemp checks that NewFile removes the temporary files of a
// crashed process, and only old ones.
func TestFileSweepTemp(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, ".prism", "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"old.tmp", "fresh.tmp"} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(filepath.Join(tmp, "old.tmp"), old, old); err != nil {
		t.Fatal(err)
	}
	s, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(tmp, "old.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old temporary file survived NewFile: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "fresh.tmp")); err != nil {
		t.Errorf("fresh temporary file removed: %v", err)
	}
}

// TestFileSymlinkWrites checks that writes, like reads, stay inside the root.
func TestFileSymlinkWrites(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("victim"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewFile(filepath.Join(base, "root"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Symlink(outside, filepath.Join(s.Dir(), "escape")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{"escape/new", "escape/victim"} {
		_, err := s.Put(ctx, key, []byte("written"), PutOptions{})
		wantStatus(t, "Put("+key+")", err, http.StatusConflict, prism.CodeInvalidKey)
		err = s.Delete(ctx, key)
		wantStatus(t, "Delete("+key+")", err, http.StatusNotFound, prism.CodeNotFound)
	}
	if got, err := os.ReadFile(filepath.Join(outside, "victim")); err != nil || string(got) != "victim" {
		t.Errorf("outside file now %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was created outside the root: %v", err)
	}
}

// put stores data at key or fails t.
func put(t *testing.T, b backend, key string, data []byte) Info {
	t.Helper()
	info, err := b.st.Put(context.Background(), key, data, PutOptions{})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

// wantContent checks that key holds data, and returns Open's Info.
func wantContent(t *testing.T, b backend, key string, data []byte) Info {
	t.Helper()
	o, err := b.st.Open(context.Background(), key)
	if err != nil {
		t.Errorf("Open(%q): %v", key, err)
		return Info{}
	}
	defer o.Close()
	got, err := io.ReadAll(o)
	if err != nil {
		t.Errorf("Open(%q): reading: %v", key, err)
	} else if !bytes.Equal(got, data) {
		t.Errorf("Open(%q) read %d bytes %.40q, want %d bytes %.40q", key, len(got), got, len(data), data)
	}
	return o.Info()
}

// noTempFiles checks that a file backend's temporary directory is empty.
func noTempFiles(t *testing.T, b backend) {
	t.Helper()
	f, ok := b.st.(*File)
	if !ok {
		return
	}
	entries, err := os.ReadDir(filepath.Join(f.Dir(), ".prism", "tmp"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("temporary file left behind: .prism/tmp/%s", e.Name())
	}
}

func sameInfo(a, b Info) bool {
	return a.Key == b.Key && a.Size == b.Size && a.ETag == b.ETag &&
		a.LastModified.Equal(b.LastModified) && a.ContentType == b.ContentType
}

func strongETag(etag string) bool {
	return len(etag) >= 3 && strings.HasPrefix(etag, `"`) && strings.HasSuffix(etag, `"`)
}
