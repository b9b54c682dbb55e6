package testutil

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The distribution a FakeCloudFront serves, and the credentials it expects
// unless told others.
const (
	CloudFrontAccessKey    = "AKIDPRISMTEST"
	CloudFrontSecretKey    = "prism-test-secret"
	CloudFrontDistribution = "E2PRISMTEST"
)

// FakeCloudFront is the in-process stand-in for CloudFront's API, which
// cannot run here. It checks every request as CloudFront would: the path,
// the body, and the SigV4 signature, recomputed from the request itself.
type FakeCloudFront struct {
	T        testing.TB
	Failures int // answer this many requests with a throttling error first
	// AccessKey and SecretKey sign the requests it takes (default
	// CloudFrontAccessKey and CloudFrontSecretKey).
	AccessKey, SecretKey string

	mu      sync.Mutex
	batches [][]string
	refs    []string
}

// StartFakeCloudFront serves a FakeCloudFront taking requests signed with
// accessKey and secretKey on a loopback port until the test ends, and
// returns it with the environment that points a Prism process's AWS SDK at
// it (for distribution CloudFrontDistribution; the process's own AWS
// credentials sign).
func StartFakeCloudFront(t testing.TB, accessKey, secretKey string) (*FakeCloudFront, []string) {
	f := &FakeCloudFront{T: t, AccessKey: accessKey, SecretKey: secretKey}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, []string{
		"PRISM_CLOUDFRONT_DISTRIBUTION_ID=" + CloudFrontDistribution,
		"AWS_ENDPOINT_URL_CLOUDFRONT=" + srv.URL,
	}
}

// Batches returns the paths of every invalidation created, batch by batch.
func (f *FakeCloudFront) Batches() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

// Refs returns the caller reference of every request, failed ones too.
func (f *FakeCloudFront) Refs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.refs)
}

// Paths returns every path invalidated so far, sorted.
func (f *FakeCloudFront) Paths() []string {
	var all []string
	for _, b := range f.Batches() {
		all = append(all, b...)
	}
	slices.Sort(all)
	return all
}

type invalidationBatch struct {
	XMLName         xml.Name `xml:"InvalidationBatch"`
	CallerReference string
	Paths           struct {
		Quantity int
		Items    []string `xml:"Items>Path"`
	}
}

func (f *FakeCloudFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.URL.Path != "/2020-05-31/distribution/"+CloudFrontDistribution+"/invalidation" {
		f.T.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		http.Error(w, "no", http.StatusNotFound)
		return
	}
	if err := f.checkSigV4(r, body); err != nil {
		f.T.Errorf("signature: %v", err)
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	var b invalidationBatch
	if err := xml.Unmarshal(body, &b); err != nil || b.Paths.Quantity != len(b.Paths.Items) || b.CallerReference == "" {
		f.T.Errorf("body %s: %v", body, err)
	}
	f.mu.Lock()
	fail := f.Failures > 0
	if fail {
		f.Failures--
	}
	f.refs = append(f.refs, b.CallerReference)
	if !fail {
		f.batches = append(f.batches, b.Paths.Items)
	}
	n := len(f.batches)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	if fail {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>TooManyInvalidationsInProgress</Code><Message>slow down</Message></Error><RequestId>x</RequestId></ErrorResponse>`)
		return
	}
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `<?xml version="1.0"?><Invalidation><Id>I%d</Id><Status>InProgress</Status><CreateTime>2026-11-22T00:00:00Z</CreateTime><InvalidationBatch><CallerReference>%s</CallerReference><Paths><Quantity>%d</Quantity></Paths></InvalidationBatch></Invalidation>`,
		n, b.CallerReference, len(b.Paths.Items))
}

// checkSigV4 recomputes the request's SigV4 signature over the headers it
// says it signed, with the same time and credentials.
func (f *FakeCloudFront) checkSigV4(r *http.Request, body []byte) error {
	access, secret := cmp.Or(f.AccessKey, CloudFrontAccessKey), cmp.Or(f.SecretKey, CloudFrontSecretKey)
	auth := r.Header.Get("Authorization")
	date := r.Header.Get("X-Amz-Date")
	if len(date) < 8 {
		return fmt.Errorf("X-Amz-Date %q", date)
	}
	prefix := "AWS4-HMAC-SHA256 Credential=" + access + "/" + date[:8] + "/us-east-1/cloudfront/aws4_request, SignedHeaders="
	if !strings.HasPrefix(auth, prefix) {
		return fmt.Errorf("Authorization %q lacks %q", auth, prefix)
	}
	signed := strings.Split(strings.SplitN(strings.TrimPrefix(auth, prefix), ",", 2)[0], ";")
	when, err := time.Parse("20060102T150405Z", date)
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range signed {
		if h != "host" {
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: access, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "cloudfront", "us-east-1", when); err != nil {
		return err
	}
	if got := req.Header.Get("Authorization"); got != auth {
		return fmt.Errorf("recomputed signature differs:\n got %s\nsent %s", got, auth)
	}
	return nil
}
