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
	"strings"
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

// purgeSuffix ends the names, in tmpDir, of what DeletePrefix is removing.
const purgeSuffix = ".purge"

// maxCommitAttempts bounds the times Put makes key's directory and commits
// the file into it; see Put. An attempt costs a few system calls, and
// DeletePrefix purging the directory in a tight loop can take several.
const maxCommitAttempts = 100

// staleTemp is the age past which a temporary file, or a directory that
// DeletePrefix was removing, is taken for the leftover of a crashed process
// and removed by NewFile. No live Put or DeletePrefix takes anywhere near as
// long, and other processes may share the folder.
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

// sweepTemp removes, best effort, temporary files and DeletePrefix's
// leftovers older than staleTemp.
func (s *File) sweepTemp() {
	d, err := s.root.Open(tmpDir)
	if err != nil {
		return
	}
	defer d.Close()
	entries, _ := d.ReadDir(-1)
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) <= staleTemp {
			continue
		}
		name := filepath.Join(tmpDir, e.Name())
		switch {
		case strings.HasSuffix(e.Name(), purgeSuffix):
			s.root.RemoveAll(name)
		case fi.Mode().IsRegular():
			s.root.Remove(name)
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
// file or the new one whole. Missing parent directories of key are created
// (again, should a DeletePrefix take them away before the commit).
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
	// A DeletePrefix may take a directory away while MkdirAll makes it,
	// or before the commit: make it anew. (The bound only guards against
	// an ENOENT that has another cause.)
	for attempt := 1; ; attempt++ {
		retry := attempt < maxCommitAttempts
		if dir != "." {
			if err := s.root.MkdirAll(dir, 0o755); err != nil {
				if retry && errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return Info{}, putError(err, key)
			}
		}
		if err := ctx.Err(); err != nil {
			return Info{}, contextError(err)
		}
		var err error
		if opts.IfNoneMatch {
			err = s.root.Link(tmp, name)
		} else {
			err = s.root.Rename(tmp, name)
		}
		switch {
		case err == nil:
			renamed = !opts.IfNoneMatch
		case retry && errors.Is(err, fs.ErrNotExist):
			continue
		case opts.IfNoneMatch && errors.Is(err, fs.ErrExist):
			return Info{}, prism.Wrap(err, http.StatusPreconditionFailed, prism.CodePreconditionFailed, "already exists: "+key)
		default:
			return Info{}, putError(err, key)
		}
		break
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

// DeletePrefix implements Storage. Only a directory at prefix has anything
// under it, or a symlink to a directory inside the root, which stands for
// one; a regular file at prefix is an object and is left alone, and so is
// whatever the os.Root will not reach (a symlink out of the root among
// them). The directory, or the symlink, is renamed into .prism/tmp and
// removed there, with os.Root.RemoveAll (which removes a symlink itself, not
// its target): everything under prefix goes at once, and a Put that makes
// the directory anew meanwhile is not caught up in the removal. A Put into
// the directory that commits just as it is renamed away may still go with
// it, as it would have an instant earlier.
//
// Should prefix turn into a file between the check and the rename (another
// DeletePrefix removed the directory, then a Put stored a file there), the
// file is linked back at prefix, unless a newer one has been put there
// since.
//
// ctx is checked once, before anything is removed.
func (s *File) DeletePrefix(ctx context.Context, prefix string) error {
	if err := ValidateKey(prefix); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return contextError(err)
	}
	name := filepath.FromSlash(prefix)
	fi, err := s.root.Lstat(name)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		fi, err = s.root.Stat(name)
	}
	if err != nil {
		if absent(err) {
			return nil
		}
		return storageError(err)
	}
	if !fi.IsDir() {
		return nil
	}

	if err := s.root.MkdirAll(tmpDir, 0o755); err != nil {
		return storageError(err)
	}
	trash := filepath.Join(tmpDir, rand.Text()+purgeSuffix)
	if err := s.root.Rename(name, trash); err != nil {
		if absent(err) { // removed meanwhile
			return nil
		}
		return storageError(err)
	}
	if fi, err := s.root.Lstat(trash); err == nil && fi.Mode().IsRegular() {
		if err := s.root.Link(trash, name); err != nil && !errors.Is(err, fs.ErrExist) {
			// Left in .prism/tmp, the object is at least not lost yet.
			return storageError(err)
		}
		s.root.Remove(trash)
		return nil
	}
	// A Put that reached the directory before the rename may still commit
	// into it, and RemoveAll then find it not empty: go again.
	for attempt := 1; ; attempt++ {
		err := s.root.RemoveAll(trash)
		if err == nil {
			return nil
		}
		if attempt == 3 {
			// Nothing is left under prefix; NewFile sweeps up the rest.
			return storageError(err)
		}
	}
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
	if absent(err) {
		return prism.Wrap(err, http.StatusNotFound, prism.CodeNotFound, "not found: "+key)
	}
	return prism.Wrap(err, http.StatusBadGateway, prism.CodeStorage, "storage error")
}

// absent reports whether an error from the os.Root, reaching for a path,
// means that from this store's point of view there is nothing there.
func absent(err error) bool {
	var errno syscall.Errno
	return errors.Is(err, fs.ErrNotExist) ||
		errors.Is(err, syscall.ENOTDIR) || // a file where a directory was expected
		errors.Is(err, syscall.ENAMETOOLONG) || // a segment no file can be named
		errors.Is(err, syscall.ELOOP) || // a symlink cycle
		// Not the kernel's refusal but os.Root's: the path resolves, through
		// a symlink, to outside the root. Saying more than "not found" would
		// reveal the layout.
		!errors.As(err, &errno)
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
