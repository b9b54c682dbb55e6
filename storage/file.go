package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"syscall"

	"github.com/prism-image/prism"
)

// File is a Storage backed by a local folder. Keys are resolved through an
// os.Root, so neither ".." nor a symlink can lead outside the folder.
type File struct {
	root *os.Root
}

// NewFile returns a File storage rooted at dir, creating dir if it is missing.
func NewFile(dir string) (*File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return &File{root: root}, nil
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
