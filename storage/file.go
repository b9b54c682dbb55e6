package storage

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prism-image/prism"
)

// File is a Storage backed by a local folder. Keys are resolved through an
// os.Root, so neither ".." nor a symlink can lead outside the folder.
//
// Put writes to a temporary file in .prism/tmp inside the folder, which no
// key can name (see ReservedDir), and renames it into place.
type File struct {
	root *os.Root
	// lastModTime is the modification time, in Unix nanoseconds, that the
	// latest Put gave its file; see nextModTime.
	lastModTime atomic.Int64
}

// tmpDir holds the files Put is writing, relative to the root.
var tmpDir = filepath.Join(ReservedDir, "tmp")

// staleTemp is the age past which a temporary file is taken for the
// leftover of a crashed process and removed by NewFile. No live Put takes
// anywhere near as long, and other processes may share the folder.
const staleTemp = time.Hour

// NewFile returns a File storage rooted at dir, creating dir if it is missing.
func NewFile(dir string) (*File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	s := &File{root: root}
	s.sweepTemp()
	return s, nil
}

// sweepTemp removes, best effort, temporary files older than staleTemp.
func (s *File) sweepTemp() {
	d, err := s.root.Open(tmpDir)
	if err != nil {
		return
	}
	defer d.Close()
	entries, _ := d.ReadDir(-1)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > staleTemp {
			s.root.Remove(filepath.Join(tmpDir, e.Name()))
		}
	}
}

// Dir returns the folder the storage reads from.
func (s *File) Dir() string { return s.root.Name() }

// Close releases the root directory.
func (s *File) Close() error { return s.root.Close() }

// Open implements Storage. ctx is not consulted: a local read has nothing to
// wait on that a deadline could usefully cut short.
func (s *File) Open(ctx context.Context, key string) (Object, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	f, err := s.root.Open(filepath.FromSlash(key))
	if err != nil {
		return nil, fileError(err, key)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fileError(err, key)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, notFound(key)
	}
	return &fileObject{f: f, info: fileInfo(key, fi)}, nil
}

// Stat implements Storage.
func (s *File) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	fi, err := s.root.Stat(filepath.FromSlash(key))
	if err != nil {
		return Info{}, fileError(err, key)
	}
	if !fi.Mode().IsRegular() {
		return Info{}, notFound(key)
	}
	return fileInfo(key, fi), nil
}

// Put implements Storage. The data is written to a new file in .prism/tmp
// and fsynced, then renamed over key, or with IfNoneMatch hard-linked to key
// (which fails if key exists, in the same step), so that readers see the old
// file or the new one whole. Missing parent directories of key are created.
// opts.ContentType is not recorded: the file backend records none.
//
// The new file's modification time, the ETag's main part, is set to a clock
// reading that no earlier Put of this File has used. The kernel's own stamp
// only moves on every clock tick, a few milliseconds, and a same-size
// replacement within one would otherwise keep the old ETag.
//
// ctx is checked before the write and again before the commit.
//
// A key that a file or directory stands in the way of (a file where key
// needs a directory, or a directory at key) is a 409 *prism.Error; with
// IfNoneMatch, a directory at key is an existing key, a 412.
func (s *File) Put(ctx context.Context, key string, data []byte, opts PutOptions) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, contextError(err)
	}
	tmp, fi, err := s.writeTemp(data)
	if err != nil {
		return Info{}, err
	}
	renamed := false
	defer func() {
		if !renamed {
			s.root.Remove(tmp)
		}
	}()

	name := filepath.FromSlash(key)
	dir := filepath.Dir(name)
	if dir != "." {
		if err := s.root.MkdirAll(dir, 0o755); err != nil {
			return Info{}, putError(err, key)
		}
	}
	if err := ctx.Err(); err != nil {
		return Info{}, contextError(err)
	}
	if opts.IfNoneMatch {
		if err := s.root.Link(tmp, name); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return Info{}, prism.Wrap(err, http.StatusPreconditionFailed, prism.CodePreconditionFailed, "already exists: "+key)
			}
			return Info{}, putError(err, key)
		}
	} else {
		if err := s.root.Rename(tmp, name); err != nil {
			return Info{}, putError(err, key)
		}
		renamed = true
	}
	// Make the new directory entry durable too. The object is in place
	// whatever this says, so a failure cannot fail the Put.
	if d, err := s.root.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return fileInfo(key, fi), nil
}

// writeTemp writes data to a new file in tmpDir, stamps its modification
// time, fsyncs it, and returns its name and its stat, taken last. On error,
// nothing is left behind.
func (s *File) writeTemp(data []byte) (name string, fi fs.FileInfo, err error) {
	if err := s.root.MkdirAll(tmpDir, 0o755); err != nil {
		return "", nil, putError(err, ReservedDir)
	}
	name = filepath.Join(tmpDir, rand.Text()+".tmp")
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", nil, storageError(err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			s.root.Remove(name)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return "", nil, storageError(err)
	}
	// A zero access time is left as it is.
	if err = s.root.Chtimes(name, time.Time{}, s.nextModTime()); err != nil {
		return "", nil, storageError(err)
	}
	if err = f.Sync(); err != nil {
		return "", nil, storageError(err)
	}
	// Renaming and linking leave the modification time alone, so this is
	// the stat that Stat will report under key.
	if fi, err = f.Stat(); err != nil {
		return "", nil, storageError(err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return "", nil, storageError(err)
	}
	return name, fi, nil
}

// nextModTime returns the current time, or a nanosecond past the time it
// last returned if the clock has not moved on (or has gone back).
func (s *File) nextModTime() time.Time {
	for {
		last := s.lastModTime.Load()
		now := time.Now().UnixNano()
		if now <= last {
			now = last + 1
		}
		if s.lastModTime.CompareAndSwap(last, now) {
			return time.Unix(0, now)
		}
	}
}

// Delete implements Storage. Whatever Open would not serve, a directory
// among it, is a 404. A symlink is removed itself, not its target.
func (s *File) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	name := filepath.FromSlash(key)
	fi, err := s.root.Stat(name)
	if err != nil {
		return fileError(err, key)
	}
	if !fi.Mode().IsRegular() {
		return notFound(key)
	}
	if err := s.root.Remove(name); err != nil {
		return fileError(err, key)
	}
	return nil
}

// PresignPost implements Storage: a folder cannot take uploads straight from
// browsers, so it answers a 501.
func (s *File) PresignPost(ctx context.Context, key string, maxBytes int64, expiry time.Duration) (PresignedPost, error) {
	return PresignedPost{}, prism.Errorf(http.StatusNotImplemented, prism.CodeNotImplemented,
		"direct uploads need the S3 backend; this server stores originals in a local folder, so upload through the API instead")
}

// fileInfo derives Info from a stat. The ETag is nginx's: modification time
// and size in hex. It costs nothing to compute and changes whenever the file
// is rewritten in place (a rewrite moves mtime; nanoseconds make a same-second
// rewrite visible too).
func fileInfo(key string, fi fs.FileInfo) Info {
	return Info{
		Key:          key,
		Size:         fi.Size(),
		ETag:         fmt.Sprintf(`"%x-%x"`, fi.ModTime().UnixNano(), fi.Size()),
		LastModified: fi.ModTime(),
	}
}

// fileError maps an error from the os.Root to a *prism.Error.
func fileError(err error, key string) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, fs.ErrNotExist),
		errors.Is(err, syscall.ENOTDIR),      // a file where a directory was expected
		errors.Is(err, syscall.ENAMETOOLONG), // a segment no file can be named
		errors.Is(err, syscall.ELOOP):        // a symlink cycle
		return prism.Wrap(err, http.StatusNotFound, prism.CodeNotFound, "not found: "+key)
	case !errors.As(err, &errno):
		// Not the kernel's refusal but os.Root's: the path resolves, through
		// a symlink, to outside the root. From this store's point of view
		// there is no such object, and saying more would reveal the layout.
		return prism.Wrap(err, http.StatusNotFound, prism.CodeNotFound, "not found: "+key)
	default:
		return prism.Wrap(err, http.StatusBadGateway, prism.CodeStorage, "storage error")
	}
}

// putError maps an error from writing key to a *prism.Error.
func putError(err error, key string) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, syscall.ENOTDIR), // a file where a directory is needed
		errors.Is(err, syscall.EISDIR), // a directory at key
		errors.Is(err, syscall.EEXIST),
		errors.Is(err, syscall.ENOTEMPTY),
		errors.Is(err, syscall.ELOOP),
		!errors.As(err, &errno): // os.Root's refusal: a symlink leads outside
		return prism.Wrap(err, http.StatusConflict, prism.CodeInvalidKey, "a file or directory is in the way of key: "+key)
	case errors.Is(err, syscall.ENAMETOOLONG):
		return prism.Wrap(err, http.StatusBadRequest, prism.CodeInvalidKey, "a segment of the key is too long for the file system: "+key)
	default:
		return storageError(err)
	}
}

func storageError(err error) error {
	return prism.Wrap(err, http.StatusBadGateway, prism.CodeStorage, "storage error")
}

// contextError maps ctx.Err() to a *prism.Error, as s3Error does.
func contextError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return prism.Wrap(err, http.StatusGatewayTimeout, prism.CodeStorageTimeout, "storage timed out")
	}
	return storageError(err)
}

func notFound(key string) error {
	return prism.Errorf(http.StatusNotFound, prism.CodeNotFound, "not found: %s", key)
}

// fileObject is an open file. Its methods are spelled out, rather than
// *os.File embedded, so that an Object cannot be written to.
type fileObject struct {
	f    *os.File
	info Info
}

func (o *fileObject) Read(p []byte) (int, error) { return o.f.Read(p) }

func (o *fileObject) Seek(offset int64, whence int) (int64, error) {
	return o.f.Seek(offset, whence)
}

func (o *fileObject) Close() error { return o.f.Close() }

func (o *fileObject) Info() Info { return o.info }
