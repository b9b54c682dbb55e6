package storage

import (
	"context"
	"fmt"
	"strings"
)

// New returns the Storage a URL names:
//
//	file://./data            a folder relative to the working directory
//	file:///srv/originals    an absolute folder
//	s3://bucket              an S3 bucket
//	s3://bucket/some/prefix  keys under a prefix of an S3 bucket
//
// pathStyle applies to S3 only; see S3Options.
//
// The URL is taken apart by hand rather than with net/url, which would read
// the "." of file://./data as a host name.
func New(ctx context.Context, url string, pathStyle bool) (Storage, error) {
	if dir, ok := strings.CutPrefix(url, "file://"); ok {
		if dir == "." || strings.HasPrefix(dir, "/") || strings.HasPrefix(dir, "./") || strings.HasPrefix(dir, "../") {
			return NewFile(dir)
		}
	}
	if rest, ok := strings.CutPrefix(url, "s3://"); ok {
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket != "" {
			return NewS3(ctx, S3Options{Bucket: bucket, Prefix: prefix, PathStyle: pathStyle})
		}
	}
	return nil, fmt.Errorf("storage: unsupported storage URL %q: want file://./relative/dir, file:///absolute/dir, s3://bucket or s3://bucket/prefix", url)
}
