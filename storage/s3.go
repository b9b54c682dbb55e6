package storage

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/prism-image/prism"
)

// S3Options configures an S3 storage.
type S3Options struct {
	Bucket string
	// Prefix is prepended, with a "/", to every key; leading and trailing
	// slashes are ignored.
	Prefix string
	// PathStyle addresses the bucket in the path (http://host/bucket/key)
	// rather than the host name, as MinIO and most S3 clones need.
	PathStyle bool
}

// S3 is a Storage backed by an S3 bucket.
type S3 struct {
	client *s3.Client
	bucket string
	prefix string // "" or ends in "/"
}

// NewS3 returns an S3 storage configured through the standard AWS SDK chain:
// AWS_REGION, credentials from the environment, shared files or instance
// roles, and AWS_ENDPOINT_URL_S3 for S3-compatible services. The region
// defaults to us-east-1, which is what S3 clones expect when told nothing.
func NewS3(ctx context.Context, opts S3Options) (*S3, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: loading AWS configuration: %w", err)
	}
	return newS3(cfg, opts)
}

func newS3(cfg aws.Config, opts S3Options) (*S3, error) {
	if opts.Bucket == "" {
		return nil, errors.New("storage: S3 bucket name is empty")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = opts.PathStyle
		// Ranged GETs, and objects stored without a checksum, carry none
		// to validate; the SDK would otherwise log that on every read.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	prefix := strings.Trim(opts.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3{client: client, bucket: opts.Bucket, prefix: prefix}, nil
}

// Open implements Storage. The object's body is the response to a single
// GetObject; a Read after a Seek elsewhere issues one ranged GetObject.
// Those later requests use ctx too, so the Object must not outlive it.
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: &s.bucket,
		Key:    aws.String(s.prefix + key),
	})
	if err != nil {
		return nil, s3Error(err, key)
	}
	info := Info{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
		ContentType:  aws.ToString(out.ContentType),
	}
	return &s3Object{ctx: ctx, s: s, key: key, info: info, body: out.Body}, nil
}

// Stat implements Storage.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: &s.bucket,
		Key:    aws.String(s.prefix + key),
	})
	if err != nil {
		return Info{}, s3Error(err, key)
	}
	return Info{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
		ContentType:  aws.ToString(out.ContentType),
	}, nil
}

// Put implements Storage with a single PutObject, which S3 applies
// atomically: readers see the old object or the new one, and a PUT that
// fails or is cut short stores nothing. (A ctx that ends after S3 has
// stored the object, but before its answer arrives, fails the Put all the
// same: the object is then whole, as with any remote store.)
//
// IfNoneMatch sends S3's conditional write, "If-None-Match: *", which the
// server checks and applies in one step; MinIO honours it too. S3 may
// answer a conditional write that races another write with 409
// ConditionalRequestConflict, meaning "retry"; Put retries twice.
//
// The Info returned is HeadObject's, pinned with If-Match to the ETag the
// PUT answered, since PutObject does not answer the modification time. If
// the object has been replaced or deleted meanwhile, or the HEAD fails,
// the Put has still succeeded: the Info is then built from what is known,
// with the current time, to the second, for LastModified.
func (s *S3) Put(ctx context.Context, key string, data []byte, opts PutOptions) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	var (
		out *s3.PutObjectOutput
		err error
	)
	for attempt := 0; ; attempt++ {
		in := &s3.PutObjectInput{
			Bucket:        &s.bucket,
			Key:           aws.String(s.prefix + key),
			Body:          bytes.NewReader(data),
			ContentLength: aws.Int64(int64(len(data))),
			ContentType:   nilIfEmpty(opts.ContentType),
		}
		if opts.IfNoneMatch {
			in.IfNoneMatch = aws.String("*")
		}
		out, err = s.client.PutObject(ctx, in)
		if err != nil && opts.IfNoneMatch && httpStatus(err) == http.StatusConflict && attempt < 2 {
			continue
		}
		break
	}
	if err != nil {
		if opts.IfNoneMatch && httpStatus(err) == http.StatusPreconditionFailed {
			return Info{}, prism.Wrap(err, http.StatusPreconditionFailed, prism.CodePreconditionFailed, "already exists: "+key)
		}
		return Info{}, s3Error(err, key)
	}

	etag := aws.ToString(out.ETag)
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:  &s.bucket,
		Key:     aws.String(s.prefix + key),
		IfMatch: nilIfEmpty(etag),
	})
	if err != nil {
		return Info{
			Key:          key,
			Size:         int64(len(data)),
			ETag:         etag,
			LastModified: time.Now().UTC().Truncate(time.Second),
			ContentType:  opts.ContentType,
		}, nil
	}
	return Info{
		Key:          key,
		Size:         aws.ToInt64(head.ContentLength),
		ETag:         aws.ToString(head.ETag),
		LastModified: aws.ToTime(head.LastModified),
		ContentType:  aws.ToString(head.ContentType),
	}, nil
}

// Delete implements Storage. S3 deletes missing keys without complaint, so
// a HeadObject first finds them.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if _, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: &s.bucket,
		Key:    aws.String(s.prefix + key),
	}); err != nil {
		return s3Error(err, key)
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: &s.bucket,
		Key:    aws.String(s.prefix + key),
	}); err != nil {
		return s3Error(err, key)
	}
	return nil
}

// maxDeleteBatch is the most keys one DeleteObjects takes.
const maxDeleteBatch = 1000

// DeletePrefix implements Storage: it lists the keys under prefix + "/"
// with ListObjectsV2 and deletes each page's with DeleteObjects, in batches
// of up to 1000 and in quiet mode, so that the answer lists only failures.
// Any failure is a 502 *prism.Error naming the first, and how many there
// were, after the rest of the page has been deleted; later pages are left
// alone. Objects put under prefix while the listing runs may survive it.
//
// MinIO, unlike S3, lists nothing under the name of an object + "/": there,
// objects stored under another object's key survive DeletePrefix of that key.
func (s *S3) DeletePrefix(ctx context.Context, prefix string) error {
	if err := ValidateKey(prefix); err != nil {
		return err
	}
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: &s.bucket,
		Prefix: aws.String(s.prefix + prefix + "/"),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return s3Error(err, prefix)
		}
		ids := make([]types.ObjectIdentifier, 0, len(page.Contents))
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		var failed []types.Error
		for batch := range slices.Chunk(ids, maxDeleteBatch) {
			out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
				Bucket: &s.bucket,
				Delete: &types.Delete{Objects: batch, Quiet: aws.Bool(true)},
			})
			if err != nil {
				return s3Error(err, prefix)
			}
			failed = append(failed, out.Errors...)
		}
		if len(failed) > 0 {
			e := failed[0]
			key := strings.TrimPrefix(aws.ToString(e.Key), s.prefix)
			return prism.Wrap(
				fmt.Errorf("DeleteObjects under %s/ failed for %d objects, among them %s: %s: %s",
					prefix, len(failed), key, aws.ToString(e.Code), aws.ToString(e.Message)),
				http.StatusBadGateway, prism.CodeStorage, "storage error")
		}
	}
	return nil
}

// PresignPost answers a form for S3's browser-based POST upload. The
// policy it signs allows exactly key (under Prefix), a body of 1 to
// maxBytes bytes, and a Content-Type form field that starts with "image/".
// The client must add that field itself, with its image's type: it is not
// among Fields, which hold the key, the policy and the signature fields. URL
// is the bucket's, path-style when PathStyle is set.
func (s *S3) PresignPost(ctx context.Context, key string, maxBytes int64, expiry time.Duration) (PresignedPost, error) {
	if err := ValidateKey(key); err != nil {
		return PresignedPost{}, err
	}
	if maxBytes < 1 || expiry <= 0 {
		return PresignedPost{}, fmt.Errorf("storage: PresignPost: maxBytes (%d) and expiry (%v) must be positive", maxBytes, expiry)
	}
	req, err := s3.NewPresignClient(s.client).PresignPostObject(ctx, &s3.PutObjectInput{
		Bucket: &s.bucket,
		Key:    aws.String(s.prefix + key),
	}, func(o *s3.PresignPostOptions) {
		o.Expires = expiry
		o.Conditions = []any{
			[]any{"content-length-range", 1, maxBytes},
			[]any{"starts-with", "$Content-Type", "image/"},
		}
	})
	if err != nil {
		return PresignedPost{}, s3Error(err, key)
	}
	// The policy's own expiration, which is whole seconds, is the truth.
	expires, err := policyExpiration(req.Values["policy"])
	if err != nil {
		return PresignedPost{}, fmt.Errorf("storage: PresignPost: %w", err)
	}
	return PresignedPost{URL: req.URL, Fields: req.Values, Key: key, Expires: expires}, nil
}

// maxPresignExpiry is the longest a SigV4 presigned URL may live.
const maxPresignExpiry = 7 * 24 * time.Hour

// PresignGet answers a SigV4 presigned GetObject URL for key
// (under Prefix), valid for expiry. It is computed locally: no request is
// made, and the object need not exist yet. URL is path-style when PathStyle
// is set.
func (s *S3) PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	if expiry <= 0 || expiry > maxPresignExpiry {
		return "", fmt.Errorf("storage: PresignGet: expiry %v must be positive and at most %v", expiry, maxPresignExpiry)
	}
	req, err := s3.NewPresignClient(s.client).PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: &s.bucket,
		Key:    aws.String(s.prefix + key),
	}, s3.WithPresignExpires(expiry))
	if err != nil {
		return "", s3Error(err, key)
	}
	return req.URL, nil
}

// policyExpiration returns the expiration of a POST policy document.
func policyExpiration(policy string) (time.Time, error) {
	doc, err := base64.StdEncoding.DecodeString(policy)
	if err != nil {
		return time.Time{}, fmt.Errorf("decoding the policy: %w", err)
	}
	var p struct {
		Expiration time.Time `json:"expiration"`
	}
	if err := json.Unmarshal(doc, &p); err != nil {
		return time.Time{}, fmt.Errorf("decoding the policy: %w", err)
	}
	if p.Expiration.IsZero() {
		return time.Time{}, errors.New("the policy has no expiration")
	}
	return p.Expiration, nil
}

// httpStatus returns the HTTP status of the response an SDK error came
// from, or 0.
func httpStatus(err error) int {
	var resp interface{ HTTPStatusCode() int }
	if errors.As(err, &resp) {
		return resp.HTTPStatusCode()
	}
	return 0
}

// s3Error maps an SDK error to a *prism.Error, keeping it as the cause.
func s3Error(err error, key string) error {
	var (
		noSuchKey    *types.NoSuchKey
		notFound     *types.NotFound
		noSuchBucket *types.NoSuchBucket
		api          smithy.APIError
		// The SDK wraps smithyhttp.ResponseError in its own types, which
		// embed it; the method set is what they share.
		resp    interface{ HTTPStatusCode() int }
		timeout interface{ Timeout() bool }
	)
	switch {
	case errors.As(err, &noSuchBucket),
		errors.As(err, &api) && api.ErrorCode() == "NoSuchBucket":
		// Also a 404 from S3, but a misconfiguration: answering 404 would
		// have CDNs cache every image as missing.
		return prism.Wrap(err, http.StatusBadGateway, prism.CodeStorage, "storage error")
	case errors.As(err, &noSuchKey),
		errors.As(err, &notFound),
		errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusNotFound:
		return prism.Wrap(err, http.StatusNotFound, prism.CodeNotFound, "not found: "+key)
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &timeout) && timeout.Timeout():
		return prism.Wrap(err, http.StatusGatewayTimeout, prism.CodeStorageTimeout, "storage timed out")
	default:
		return prism.Wrap(err, http.StatusBadGateway, prism.CodeStorage, "storage error")
	}
}

// s3Object reads an S3 object. Seek only moves pos; the body in hand is kept
// while reads continue where it stands, and replaced by a ranged GetObject
// when they do not. http.ServeContent, which seeks to the end for the size
// and then to the start of the range, thus costs one request per range.
type s3Object struct {
	ctx  context.Context
	s    *S3
	key  string
	info Info

	body    io.ReadCloser // nil once closed or exhausted
	bodyPos int64         // offset of the next byte body yields
	pos     int64         // offset of the next byte Read returns
}

func (o *s3Object) Info() Info { return o.info }

func (o *s3Object) Read(p []byte) (int, error) {
	if o.pos >= o.info.Size {
		return 0, io.EOF
	}
	if o.body == nil || o.bodyPos != o.pos {
		if err := o.reopen(); err != nil {
			return 0, err
		}
	}
	n, err := o.body.Read(p)
	o.pos += int64(n)
	o.bodyPos += int64(n)
	if err != nil && err != io.EOF {
		err = s3Error(err, o.key)
	}
	return n, err
}

// reopen replaces the body with one starting at pos. If-Match pins the
// request to the version Open saw: if the object has been replaced since,
// S3 answers 412 instead of splicing two versions into one stream.
func (o *s3Object) reopen() error {
	o.closeBody()
	out, err := o.s.client.GetObject(o.ctx, &s3.GetObjectInput{
		Bucket:  &o.s.bucket,
		Key:     aws.String(o.s.prefix + o.key),
		Range:   aws.String(fmt.Sprintf("bytes=%d-", o.pos)),
		IfMatch: nilIfEmpty(o.info.ETag),
	})
	if err != nil {
		return s3Error(err, o.key)
	}
	o.body = out.Body
	o.bodyPos = o.pos
	return nil
}

func (o *s3Object) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.pos
	case io.SeekEnd:
		offset += o.info.Size
	default:
		return 0, errors.New("storage: Seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("storage: Seek: negative position")
	}
	o.pos = offset
	return offset, nil
}

func (o *s3Object) Close() error {
	o.closeBody()
	return nil
}

func (o *s3Object) closeBody() {
	if o.body != nil {
		o.body.Close()
		o.body = nil
	}
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
