package storage

import (
	"context"
	"fmt"
	"strings"
)

// Location is what a storage URL names: a folder, or an S3 bucket and a
// key prefix (without slashes at either end).
type Location struct {
	Dir            string // file://DIR
	Bucket, Prefix string // s3://BUCKET[/PREFIX]
}

// ParseURL reads a storage URL:
//
//	file://./data            a folder relative to the working directory
//	file:///srv/originals    an absolute folder
//	s3://bucket              an S3 bucket
//	s3://bucket/some/prefix  keys under a prefix of an S3 bucket
//
// The URL is taken apart by hand rather than with net/url, which would read
// the "." of file://./data as a host name.
func ParseURL(url string) (Location, error) {
	if dir, ok := strings.CutPrefix(url, "file://"); ok {
		if dir == "." || strings.HasPrefix(dir, "/") || strings.HasPrefix(dir, "./") || strings.HasPrefix(dir, "../") {
			return Location{Dir: dir}, nil
		}
	}
	if rest, ok := strings.CutPrefix(url, "s3://"); ok {
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket != "" {
			return Location{Bucket: bucket, Prefix: strings.Trim(prefix, "/")}, nil
		}
	}
	return Location{}, fmt.Errorf("storage: unsupported storage URL %q: want file://./relative/dir, file:///absolute/dir, s3://bucket or s3://bucket/prefix", url)
}

// New returns the Storage a URL names (see ParseURL). pathStyle applies to
// S3 only; see S3Options.
func New(ctx context.Context, url string, pathStyle bool) (Storage, error) {
	loc, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	if loc.Bucket != "" {
		return NewS3(ctx, S3Options{Bucket: loc.Bucket, Prefix: loc.Prefix, PathStyle: pathStyle})
	}
	return NewFile(loc.Dir)
}
