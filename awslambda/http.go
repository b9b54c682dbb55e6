package awslambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/render"
	"github.com/prism-image/prism/server"
)

// v2Response is the answer to a Function URL or an API Gateway HTTP API
// (payload 2.0) event: events.LambdaFunctionURLResponse and
// events.APIGatewayV2HTTPResponse, without their null fields.
type v2Response struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers,omitempty"`
	Cookies         []string          `json:"cookies,omitempty"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

// albResponse is the answer to an ALB event: events.ALBTargetGroupResponse
// with either Headers or MultiValueHeaders, as the target group is set up.
type albResponse struct {
	StatusCode        int                 `json:"statusCode"`
	StatusDescription string              `json:"statusDescription"`
	Headers           map[string]string   `json:"headers,omitempty"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders,omitempty"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

// httpV2 answers a Function URL or API Gateway HTTP API event.
func (h *Handler) httpV2(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("awslambda: decoding an HTTP event: %w", err)
	}
	rc := ev.RequestContext
	path := ev.RawPath
	// On the execute-api endpoint, a named stage is the first segment of
	// the path; a custom domain maps it away, and $default has none.
	if st := rc.Stage; st != "" && st != "$default" && strings.Contains(rc.DomainName, ".execute-api.") {
		if rest, ok := strings.CutPrefix(path, "/"+st); ok && (rest == "" || rest[0] == '/') {
			path = rest
		}
	}
	header := http.Header{}
	for k, v := range ev.Headers {
		header.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	host := header.Get("Host")
	if host == "" {
		host = rc.DomainName
	}
	return h.serve(ctx, rc.HTTP.Method, path, ev.RawQueryString, header, host, rc.HTTP.SourceIP, ev.Body, ev.IsBase64Encoded, h.cfg.MaxResponseBytes,
		func(rec *recorded) ([]byte, error) { return json.Marshal(rec.v2()) }), nil
}

// alb answers an ALB event. Its query string arrives as the client sent it,
// URL-encoded, and is re-encoded canonically.
func (h *Handler) alb(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.ALBTargetGroupRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("awslambda: decoding an ALB event: %w", err)
	}
	multi := ev.MultiValueHeaders != nil || ev.MultiValueQueryStringParameters != nil
	header := http.Header{}
	query := ev.MultiValueQueryStringParameters
	if multi {
		// One field line per name, as Function URLs and API Gateway give
		// it: Header.Get, which Prism reads Accept with, sees every value.
		for k, vs := range ev.MultiValueHeaders {
			sep := ", "
			if http.CanonicalHeaderKey(k) == "Cookie" {
				sep = "; "
			}
			header.Set(k, strings.Join(vs, sep))
		}
	} else {
		for k, v := range ev.Headers {
			header.Set(k, v)
		}
		query = map[string][]string{}
		for k, v := range ev.QueryStringParameters {
			query[k] = []string{v}
		}
	}
	source, _, _ := strings.Cut(header.Get("X-Forwarded-For"), ",")
	return h.serve(ctx, ev.HTTPMethod, ev.Path, albQuery(query), header, header.Get("Host"), strings.TrimSpace(source), ev.Body, ev.IsBase64Encoded, h.cfg.MaxALBResponseBytes,
		func(rec *recorded) ([]byte, error) { return json.Marshal(rec.alb(multi)) }), nil
}

// albQuery encodes ALB's query parameters, which are as the client sent
// them (percent-encoded, or not), canonically: keys sorted, each key's
// values in the order received.
func albQuery(params map[string][]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(params)) {
		for _, v := range params[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(queryUnescape(k)))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(queryUnescape(v)))
		}
	}
	return b.String()
}

// queryUnescape decodes s, or keeps it as it is when it is not valid
// percent-encoding (a client that sent a raw "%").
func queryUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// recorded is a response the handler wrote.
type recorded struct {
	status int
	header http.Header
	body   []byte
	// What the body is, when the server said: a variant, or an original.
	variant  *render.Result
	original string
	// originalRaster says the original is a raster image, which S3 may
	// serve as it is; anything else needs the server's sandbox headers.
	originalRaster bool
	// request is what the server knew of the request; nil when the
	// adapter answered without it.
	request *server.RequestRecord
}

// serve runs the HTTP handler on the request an event describes and
// encodes its response with encode, redirecting it when the encoding is
// over limit bytes.
func (h *Handler) serve(ctx context.Context, method, rawPath, rawQuery string, header http.Header, host, sourceIP, body string, base64Body bool, limit int,
	encode func(*recorded) ([]byte, error)) []byte {
	start := time.Now()
	if header == nil {
		header = http.Header{}
	}
	// The invocation's ID follows a request that brings none of its own.
	if lc, ok := lambdacontext.FromContext(ctx); ok && !server.ValidRequestID(header.Get("X-Request-ID")) {
		header.Set("X-Request-ID", lc.AwsRequestID)
	}
	id := header.Get("X-Request-ID")
	rec := h.roundTrip(ctx, method, rawPath, rawQuery, header, host, sourceIP, body, base64Body)
	answer := func(final *recorded) []byte {
		if final.header.Get("X-Request-ID") == "" {
			final.header.Set("X-Request-ID", id)
		}
		h.report(rec, final, method, id, start)
		return mustEncode(encode, final)
	}
	// A body whose encoding alone is over the limit is not encoded at all.
	if rec.minEncodedLen() <= limit {
		out, err := encode(rec)
		if err == nil && len(out) <= limit {
			h.report(rec, rec, method, id, start)
			return out
		}
		if err != nil {
			h.cfg.Log.Error("encoding a Lambda response failed", "path", rawPath, "err", err)
			return answer(errorResponse(http.StatusInternalServerError, prism.CodeInternal, "the response could not be encoded"))
		}
	}
	return answer(h.tooLarge(ctx, rawPath, rec, limit))
}

// report tells Config.Observe of a request answered with final, which may
// not be the response the handler wrote (rec): a redirect to S3, or an
// error of the adapter's own.
func (h *Handler) report(rec, final *recorded, method, id string, start time.Time) {
	if h.cfg.Observe == nil {
		return
	}
	r := server.RequestRecord{ID: id, Route: "other", Method: method, Cache: "none"}
	if rec.request != nil {
		r = *rec.request
	}
	r.Status, r.Duration = final.status, time.Since(start)
	h.cfg.Observe(r)
}

// mustEncode encodes one of the small, plain responses made here, which
// cannot fail.
func mustEncode(encode func(*recorded) ([]byte, error), rec *recorded) []byte {
	out, err := encode(rec)
	if err != nil {
		panic(err)
	}
	return out
}

// roundTrip builds the *http.Request and serves it.
func (h *Handler) roundTrip(ctx context.Context, method, rawPath, rawQuery string, header http.Header, host, sourceIP, body string, base64Body bool) *recorded {
	data := []byte(body)
	if base64Body {
		var err error
		if data, err = base64.StdEncoding.DecodeString(body); err != nil {
			return errorResponse(http.StatusBadRequest, prism.CodeInvalidBody, "the body is not valid base64")
		}
	}
	if method == "" || !strings.HasPrefix(rawPath, "/") {
		return errorResponse(http.StatusBadRequest, prism.CodeInvalidKey, "the event has no method or no path")
	}
	p, err := url.PathUnescape(rawPath)
	if err != nil {
		return errorResponse(http.StatusBadRequest, prism.CodeInvalidKey, "the path is not valid percent-encoding")
	}
	u := &url.URL{Path: p, RawPath: rawPath, RawQuery: rawQuery}
	r, err := http.NewRequestWithContext(ctx, method, "/", bytes.NewReader(data))
	if err != nil {
		return errorResponse(http.StatusBadRequest, prism.CodeMethodNotAllowed, "invalid method")
	}
	r.URL = u
	r.RequestURI = u.RequestURI()
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.Header = header
	r.Host = host
	if sourceIP != "" {
		r.RemoteAddr = net.JoinHostPort(sourceIP, "0")
	}
	r.ContentLength = int64(len(data))
	if len(data) == 0 {
		r.Body = http.NoBody
		r.Header.Del("Content-Length")
	} else {
		r.Header.Set("Content-Length", strconv.Itoa(len(data)))
	}
	w := &responseRecorder{header: http.Header{}}
	h.cfg.Handler.ServeHTTP(w, r)
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return &recorded{status: w.status, header: w.sent, body: w.body.Bytes(), variant: w.variant, original: w.original, originalRaster: w.originalRaster, request: w.request}
}

// responseRecorder is the http.ResponseWriter the handler writes to.
type responseRecorder struct {
	header   http.Header
	sent     http.Header // header as of WriteHeader
	status   int
	wrote    bool
	body     bytes.Buffer
	variant  *render.Result
	original string
	// originalRaster: see recorded.
	originalRaster bool
	request        *server.RequestRecord
}

// RecordVariant implements server.ResultRecorder.
func (w *responseRecorder) RecordVariant(res render.Result) { w.variant = &res }

// RecordOriginal implements server.ResultRecorder.
func (w *responseRecorder) RecordOriginal(key string, st render.Stream) {
	w.original, w.originalRaster = key, !st.Scriptable
}

// RecordRequest implements server.RequestRecorder: the request is
// reported once its answer to Lambda is final (see Handler.report).
func (w *responseRecorder) RecordRequest(r server.RequestRecord) { w.request = &r }

var (
	_ server.ResultRecorder  = (*responseRecorder)(nil)
	_ server.RequestRecorder = (*responseRecorder)(nil)
)

func (w *responseRecorder) Header() http.Header { return w.header }

func (w *responseRecorder) WriteHeader(status int) {
	if w.wrote || status < 200 { // informational answers are not relayed
		return
	}
	w.wrote, w.status, w.sent = true, status, w.header.Clone()
}

func (w *responseRecorder) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.body.Write(p)
}

// Flush implements http.Flusher: there is nothing to flush before the end.
func (w *responseRecorder) Flush() {}

// encodedBody returns the body as Lambda takes it: text as it is, anything
// else (images) base64.
func (rec *recorded) encodedBody() (string, bool) {
	if len(rec.body) == 0 {
		return "", false
	}
	if isText(rec.header) && utf8.Valid(rec.body) {
		return string(rec.body), false
	}
	return base64.StdEncoding.EncodeToString(rec.body), true
}

// minEncodedLen is the length of the body as Lambda takes it: a lower
// bound of the whole answer's.
func (rec *recorded) minEncodedLen() int {
	if isText(rec.header) && utf8.Valid(rec.body) {
		return len(rec.body)
	}
	return base64.StdEncoding.EncodedLen(len(rec.body))
}

// isText reports whether a response with header is text that JSON can
// carry as it is.
func isText(header http.Header) bool {
	if header.Get("Content-Encoding") != "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		return false
	}
	if strings.HasPrefix(mt, "text/") {
		return true
	}
	if sub, ok := strings.CutPrefix(mt, "application/"); ok {
		return sub == "json" || sub == "xml" || sub == "javascript" || sub == "x-www-form-urlencoded" ||
			strings.HasSuffix(sub, "+json") || strings.HasSuffix(sub, "+xml")
	}
	return false
}

func (rec *recorded) v2() v2Response {
	body, b64 := rec.encodedBody()
	res := v2Response{StatusCode: rec.status, Headers: map[string]string{}, Body: body, IsBase64Encoded: b64}
	for k, vs := range rec.header {
		if k == "Set-Cookie" {
			res.Cookies = append(res.Cookies, vs...)
			continue
		}
		res.Headers[k] = strings.Join(vs, ", ")
	}
	return res
}

func (rec *recorded) alb(multi bool) albResponse {
	body, b64 := rec.encodedBody()
	res := albResponse{
		StatusCode:        rec.status,
		StatusDescription: strconv.Itoa(rec.status) + " " + http.StatusText(rec.status),
		Body:              body,
		IsBase64Encoded:   b64,
	}
	if multi {
		res.MultiValueHeaders = map[string][]string(rec.header.Clone())
		return res
	}
	res.Headers = map[string]string{}
	for k, vs := range rec.header {
		if k == "Set-Cookie" { // cookies cannot be joined: one only
			res.Headers[k] = vs[0]
			continue
		}
		res.Headers[k] = strings.Join(vs, ", ")
	}
	return res
}

// errorResponse is an error in Prism's JSON shape, as the server answers
// its own.
func errorResponse(status int, code, message string) *recorded {
	w := &responseRecorder{header: http.Header{}}
	server.WriteError(w, http.MethodGet, prism.Errorf(status, code, "%s", message))
	return &recorded{status: w.status, header: w.sent, body: w.body.Bytes()}
}

// tooLarge replaces a response over Lambda's limit by a redirect to a copy
// of it in S3: an original to the original, a variant to the derived store.
func (h *Handler) tooLarge(ctx context.Context, rawPath string, rec *recorded, limit int) *recorded {
	log := h.cfg.Log.With("path", rawPath, "status", rec.status, "bytes", len(rec.body), "limit", limit)
	expiry := h.cfg.RedirectExpiry

	var location string
	var err error
	switch {
	case rec.original != "" && !rec.originalRaster:
		// S3 would serve it without the sandbox and attachment headers
		// the server gives an SVG or a file that is no image.
		return h.notRedirected(log, nil, "an original that is a raster image: SVGs and other files this large are not handed to S3, which would serve them unsandboxed")
	case rec.original != "" && h.cfg.Originals != nil && (rec.status == http.StatusOK || rec.status == http.StatusPartialContent):
		location, err = h.cfg.Originals.PresignDownload(ctx, rec.original, expiry)
		if err != nil {
			return h.notRedirected(log, err, "PRISM_STORAGE=s3://… (originals this large are redirected to S3)")
		}
	case rec.variant != nil && rec.status == http.StatusOK && h.cfg.Derived != nil:
		k := rec.variant.VariantKey
		// Signing is local and fails at once on a store that is not S3.
		if location, err = h.cfg.Derived.PresignGet(ctx, k, expiry); err != nil {
			return h.notRedirected(log, err, "PRISM_DERIVED_URL=s3://…")
		}
		if rec.variant.Layer != render.LayerDerived { // else it is there already
			v := cache.Variant{Data: rec.variant.Data, ContentType: rec.variant.ContentType}
			if err := h.cfg.Derived.Put(ctx, k, v); err != nil {
				log.Error("storing an oversized response failed", "err", err)
				return errorResponse(http.StatusBadGateway, prism.CodeStorage, "the response is over Lambda's size limit and could not be stored in the derived store")
			}
		}
	default:
		return h.notRedirected(log, nil, "PRISM_DERIVED_URL=s3://…")
	}

	log.Info("response over Lambda's limit: redirected to S3")
	maxAge := expiry - min(expiry/10, time.Minute)
	header := http.Header{
		"Location":               {location},
		"Cache-Control":          {"private, max-age=" + strconv.Itoa(int(maxAge.Seconds()))},
		"Content-Length":         {"0"},
		"X-Content-Type-Options": {"nosniff"},
	}
	for _, k := range []string{"Vary", "X-Prism-Cache"} {
		if v, ok := rec.header[k]; ok {
			header[k] = v
		}
	}
	return &recorded{status: http.StatusFound, header: header}
}

// notRedirected is the 502 of a response too large for Lambda that cannot
// be redirected to S3; need says what would allow it.
func (h *Handler) notRedirected(log *slog.Logger, err error, need string) *recorded {
	if err != nil {
		log.Error("response over Lambda's limit cannot be redirected", "err", err)
	} else {
		log.Error("response over Lambda's limit cannot be redirected")
	}
	return errorResponse(http.StatusBadGateway, CodeResponseTooLarge,
		"the response is over Lambda's size limit; answering it needs a redirect to S3, which needs "+need)
}
