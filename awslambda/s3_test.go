package awslambda

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/internal/testutil"
	"github.com/prism-image/prism/storage"
)

// fakeOriginals records the calls S3 events make.
type fakeOriginals struct {
	store   *fakeStorage
	calls   []string
	metaErr map[string]error
}

func (c *fakeOriginals) Forget(_ context.Context, key string) {
	c.calls = append(c.calls, "forget "+key)
}

// Stat is storage's, and remembers a missing key, as the catalog's does.
func (c *fakeOriginals) Stat(ctx context.Context, key string) (storage.Info, error) {
	info, err := c.store.Stat(ctx, key)
	if prism.StatusOf(err) == http.StatusNotFound {
		c.calls = append(c.calls, "notfound "+key)
	}
	return info, err
}

func (c *fakeOriginals) PresignDownload(ctx context.Context, key string, expiry time.Duration) (string, error) {
	return c.store.PresignGet(ctx, key, expiry)
}

// Metadata stands for the renderer's.
func (c *fakeOriginals) Metadata(_ context.Context, key string) (prism.Metadata, error) {
	c.calls = append(c.calls, "metadata "+key)
	if err := c.metaErr[key]; err != nil {
		return prism.Metadata{}, err
	}
	return prism.Metadata{Key: key}, nil
}

func s3Event(t *testing.T, template, bucket string, keys ...string) map[string]any {
	t.Helper()
	var records []any
	for _, k := range keys {
		ev := testutil.LambdaEvent(t, template, map[string]string{"BUCKET": bucket, "KEY": k})
		records = append(records, ev["Records"].([]any)...)
	}
	return map[string]any{"Records": records}
}

func TestLambdaS3Events(t *testing.T) {
	newHandler := func() (*Handler, *fakeOriginals) {
		cat := &fakeOriginals{store: &fakeStorage{present: map[string]bool{"back/again.jpg": true}}, metaErr: map[string]error{
			"text.txt":  prism.Errorf(http.StatusUnsupportedMediaType, prism.CodeUndecodable, "not an image"),
			"huge.jpg":  prism.Errorf(http.StatusUnprocessableEntity, prism.CodeTooLarge, "too large"),
			"gone.jpg":  prism.Errorf(http.StatusNotFound, prism.CodeNotFound, "not found"),
			"flaky.jpg": prism.Errorf(http.StatusBadGateway, prism.CodeStorage, "storage error"),
		}}
		return New(Config{Handler: &stub{}, Originals: cat, Storage: "s3://originals/prefix/", DerivedURL: "s3://originals/prefix/derived"}), cat
	}

	t.Run("created", func(t *testing.T) {
		h, cat := newHandler()
		out := invoke(t, h, s3Event(t, "s3-object-created.json", "originals",
			"prefix/uploads/Happy+Face%282%29.jpg", // form-encoded: "Happy Face(2).jpg"
			"prefix/text.txt", "prefix/huge.jpg", "prefix/gone.jpg",
			"other/a.jpg",                    // outside the prefix
			"prefix/derived/uploads/x.jpg/e", // the derived store's own object
			"prefix/a//b.jpg",                // not a valid key
		))
		var res S3Result
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		wantCalls := []string{
			"forget uploads/Happy Face(2).jpg", "metadata uploads/Happy Face(2).jpg",
			"forget text.txt", "metadata text.txt", "forget huge.jpg", "metadata huge.jpg",
			"forget gone.jpg", "metadata gone.jpg",
		}
		if !slices.Equal(cat.calls, wantCalls) {
			t.Errorf("calls\n%q\nwant\n%q", cat.calls, wantCalls)
		}
		if !slices.Equal(res.Updated, []string{"uploads/Happy Face(2).jpg"}) || !slices.Equal(res.Removed, []string{"gone.jpg"}) || len(res.Skipped) != 5 {
			t.Errorf("result %+v", res)
		}
		for i, why := range []string{"not an image", "not an image", "outside PRISM_STORAGE", "in the derived store", "not a valid key"} {
			if i < len(res.Skipped) && !strings.Contains(res.Skipped[i], why) {
				t.Errorf("skipped[%d] = %q, want %q", i, res.Skipped[i], why)
			}
		}
	})

	t.Run("other bucket", func(t *testing.T) {
		h, cat := newHandler()
		invoke(t, h, s3Event(t, "s3-object-created.json", "somebody-else", "prefix/a.jpg"))
		if len(cat.calls) != 0 {
			t.Errorf("calls %q for another bucket", cat.calls)
		}
	})

	t.Run("removed", func(t *testing.T) {
		h, cat := newHandler()
		var res S3Result
		if err := json.Unmarshal(invoke(t, h, s3Event(t, "s3-object-removed.json", "originals", "prefix/old.jpg", "prefix/back/again.jpg")), &res); err != nil {
			t.Fatal(err)
		}
		// A key that is back (the creation came first) is learnt, not
		// remembered as missing.
		want := []string{"forget old.jpg", "notfound old.jpg", "forget back/again.jpg", "metadata back/again.jpg"}
		if !slices.Equal(cat.calls, want) {
			t.Errorf("calls %q, want %q", cat.calls, want)
		}
		if !slices.Equal(res.Removed, []string{"old.jpg"}) || !slices.Equal(res.Updated, []string{"back/again.jpg"}) {
			t.Errorf("result %+v", res)
		}
	})

	t.Run("failures are retried", func(t *testing.T) {
		h, cat := newHandler()
		payload, _ := json.Marshal(s3Event(t, "s3-object-created.json", "originals", "prefix/flaky.jpg", "prefix/fine.jpg"))
		_, err := h.Invoke(context.Background(), payload)
		if err == nil || !strings.Contains(err.Error(), "flaky.jpg") {
			t.Fatalf("Invoke = %v, want the flaky record's error", err)
		}
		// The other records were handled all the same.
		if !slices.Contains(cat.calls, "metadata fine.jpg") {
			t.Errorf("calls %q", cat.calls)
		}

		cat.store.statErr = prism.Errorf(http.StatusGatewayTimeout, prism.CodeStorageTimeout, "slow")
		payload, _ = json.Marshal(s3Event(t, "s3-object-removed.json", "originals", "prefix/x.jpg"))
		if _, err := h.Invoke(context.Background(), payload); err == nil {
			t.Errorf("a removal whose Stat failed succeeded")
		}
	})

	t.Run("no prefix", func(t *testing.T) {
		cat := &fakeOriginals{store: &fakeStorage{}}
		h := New(Config{Originals: cat, Storage: "s3://b", DerivedURL: "s3://b/derived"})
		invoke(t, h, s3Event(t, "s3-object-created.json", "b", "img/a.jpg", "derived/img/a.jpg/123"))
		if !slices.Equal(cat.calls, []string{"forget img/a.jpg", "metadata img/a.jpg"}) {
			t.Errorf("calls %q", cat.calls)
		}
	})

	t.Run("file storage", func(t *testing.T) {
		cat := &fakeOriginals{store: &fakeStorage{}}
		h := New(Config{Originals: cat, Storage: "file://./data"})
		invoke(t, h, s3Event(t, "s3-object-created.json", "b", "a.jpg"))
		if len(cat.calls) != 0 {
			t.Errorf("calls %q with originals in a folder", cat.calls)
		}
	})
}
