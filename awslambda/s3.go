package awslambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/storage"
)

// S3Result is the answer to an S3 event: the Prism keys whose metadata was
// learnt afresh, those remembered as missing, and the records left alone
// ("<event name> <object key>: <why>").
type S3Result struct {
	Updated []string `json:"updated"`
	Removed []string `json:"removed"`
	Skipped []string `json:"skipped"`
}

// s3 handles an S3 event notification. Every record is handled; those that
// failed in a way a retry may mend (storage or Redis trouble) fail the
// invocation together, so that Lambda retries the event. Handling a record
// twice is harmless.
func (h *Handler) s3(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.S3Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("awslambda: decoding an S3 event: %w", err)
	}
	res := S3Result{Updated: []string{}, Removed: []string{}, Skipped: []string{}}
	var errs []error
	for _, r := range ev.Records {
		key, outcome, err := h.s3Record(ctx, r)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %s: %w", r.EventName, r.S3.Object.Key, err))
			h.cfg.Log.Error("S3 event failed", "event", r.EventName, "bucket", r.S3.Bucket.Name, "object", r.S3.Object.Key, "err", err)
		case outcome == "updated":
			res.Updated = append(res.Updated, key)
		case outcome == "removed":
			res.Removed = append(res.Removed, key)
		default:
			res.Skipped = append(res.Skipped, r.EventName+" "+r.S3.Object.Key+": "+outcome)
		}
		if err == nil {
			h.cfg.Log.Info("S3 event", "event", r.EventName, "bucket", r.S3.Bucket.Name, "object", r.S3.Object.Key, "key", key, "outcome", outcome)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return json.Marshal(res)
}

// s3Record handles one record. The outcome is "updated", "removed" or why
// the record was skipped.
func (h *Handler) s3Record(ctx context.Context, r events.S3EventRecord) (key, outcome string, err error) {
	if r.EventSource != "aws:s3" {
		return "", "not an S3 record", nil
	}
	// Keys arrive form-encoded: "a b+c.jpg" is "a+b%2Bc.jpg".
	objectKey, err := url.QueryUnescape(r.S3.Object.Key)
	if err != nil {
		return "", "the key is not valid form encoding", nil
	}
	bucket := r.S3.Bucket.Name
	if _, ok := h.derived.key(bucket, objectKey); ok && (h.derived.Prefix != "" || h.derived.Bucket != h.origins.Bucket) {
		return "", "in the derived store", nil
	}
	key, ok := h.origins.key(bucket, objectKey)
	if !ok {
		return "", "outside PRISM_STORAGE", nil
	}
	if err := storage.ValidateKey(key); err != nil {
		return key, "not a valid key", nil
	}
	switch {
	case strings.HasPrefix(r.EventName, "ObjectCreated:"):
		return h.created(ctx, key)
	case strings.HasPrefix(r.EventName, "ObjectRemoved:"):
		return h.removed(ctx, key)
	}
	return key, "not a creation or a removal", nil
}

// created drops what was known of key and learns its metadata afresh.
func (h *Handler) created(ctx context.Context, key string) (string, string, error) {
	h.cfg.Originals.Forget(ctx, key)
	return h.learn(ctx, key)
}

// learn caches key's metadata from storage.
func (h *Handler) learn(ctx context.Context, key string) (string, string, error) {
	_, err := h.cfg.Originals.Metadata(ctx, key)
	if err == nil {
		return key, "updated", nil
	}
	switch prism.StatusOf(err) {
	case http.StatusNotFound:
		// Deleted since (its removal event follows): the catalog now
		// remembers it as missing.
		return key, "removed", nil
	case http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusBadRequest:
		// Not an image Prism reads, or over the limits: nothing to learn,
		// and a retry would not change that.
		return key, "not an image Prism serves: " + prism.AsError(err).Message, nil
	}
	return key, "", err
}

// removed drops what was known of key and remembers it as missing, unless
// it is back already (events may arrive out of order).
func (h *Handler) removed(ctx context.Context, key string) (string, string, error) {
	h.cfg.Originals.Forget(ctx, key)
	_, err := h.cfg.Originals.Stat(ctx, key)
	switch {
	case err == nil:
		return h.learn(ctx, key)
	case prism.StatusOf(err) == http.StatusNotFound: // now remembered as missing
		return key, "removed", nil
	}
	return key, "", err
}
