package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/catalog"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/storage"
)

//go:embed openapi.json
var openAPIDoc []byte

// multipartOverhead is what a multipart body may carry beyond its file:
// boundaries, headers and a key field.
const multipartOverhead = 64 << 10

func (s *Server) routeUploadAPI(g *echo.Group) {
	g.GET("/openapi.json", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, openAPIDoc) })
	g.GET("/images/*", s.getMetadata)
	g.POST("/images", s.postImage, s.requireKey)
	g.PUT("/images/*", s.putImage, s.requireKey)
	g.DELETE("/images/*", s.deleteImage, s.requireKey)
	g.POST("/uploads", s.presignUpload, s.requireKey)
}

// requireKey admits requests bearing one of the configured API keys. With
// no key configured every write is refused.
func (s *Server) requireKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if len(s.cfg.APIKeys) == 0 {
			return prism.Errorf(http.StatusForbidden, prism.CodeForbidden, "writes are disabled: no API key is configured (PRISM_API_KEYS)")
		}
		scheme, token, _ := strings.Cut(c.Request().Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || !s.validKey(strings.TrimSpace(token)) {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="prism"`)
			return prism.Errorf(http.StatusUnauthorized, prism.CodeUnauthorized, "a valid API key is needed: Authorization: Bearer <key>")
		}
		return next(c)
	}
}

// validKey compares token with every key in constant time: comparing
// digests makes the lengths equal, and no key ends the loop early.
func (s *Server) validKey(token string) bool {
	digest := sha256.Sum256([]byte(token))
	match := 0
	for _, k := range s.cfg.APIKeys {
		kd := sha256.Sum256([]byte(k))
		match |= subtle.ConstantTimeCompare(digest[:], kd[:])
	}
	return token != "" && match == 1
}

// writableKey refuses keys that are invalid or that routes shadow.
func writableKey(key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	for _, p := range ReservedPrefixes {
		if strings.HasPrefix(key, p) {
			return prism.Errorf(http.StatusBadRequest, prism.CodeInvalidKey, "keys may not start with %q: Prism answers that path itself", p)
		}
	}
	return nil
}

func keyAfter(c echo.Context, prefix string) string {
	key := strings.TrimPrefix(c.Request().URL.Path, prefix)
	c.Set(logKey, key)
	return key
}

// postImage stores a multipart or raw upload, at the given key or at one
// made from the content: YYYY/MM/<hash>-<name>.
func (s *Server) postImage(c echo.Context) error {
	r := c.Request()
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var data []byte
	var key, filename string
	var err error
	switch {
	case mediaType == "multipart/form-data":
		data, key, filename, err = s.readMultipart(c, params["boundary"])
	case strings.HasPrefix(mediaType, "image/"):
		key, filename = r.URL.Query().Get("key"), r.URL.Query().Get("filename")
		if filename == "" {
			_, cd, _ := mime.ParseMediaType(r.Header.Get("Content-Disposition"))
			filename = cd["filename"]
		}
		data, err = s.readBody(c, s.cfg.MaxUploadBytes)
	default:
		return prism.Errorf(http.StatusUnsupportedMediaType, prism.CodeUnsupportedMedia,
			"send multipart/form-data with a file field, or the image itself with its image/* Content-Type")
	}
	if err != nil {
		return err
	}
	if key == "" {
		sum := sha256.Sum256(data)
		key = datedKey(hex.EncodeToString(sum[:])[:12], filename, imaging.Sniff(data))
	}
	return s.store(c, key, data, catalog.Overwrite, true)
}

// putImage stores the raw body at exactly the key in the path.
func (s *Server) putImage(c echo.Context) error {
	key := keyAfter(c, "/v1/images/")
	if err := writableKey(key); err != nil {
		return err
	}
	data, err := s.readBody(c, s.cfg.MaxUploadBytes)
	if err != nil {
		return err
	}
	cond := catalog.Overwrite
	if strings.TrimSpace(c.Request().Header.Get("If-None-Match")) == "*" {
		cond = catalog.IfAbsent
	}
	return s.store(c, key, data, cond, false)
}

// store validates and stores an upload. A POST always answers 201 (it made
// a new image, even over an old one); a PUT answers 201 when the key is new
// and 200 when it replaced one.
func (s *Server) store(c echo.Context, key string, data []byte, cond catalog.Precondition, post bool) error {
	c.Set(logKey, key)
	if err := writableKey(key); err != nil {
		return err
	}
	m, created, err := s.render.Upload(c.Request().Context(), key, data, cond)
	if err != nil {
		return err
	}
	m.URL = s.publicURL(c, key)
	status := http.StatusOK
	if created || post {
		status = http.StatusCreated
		c.Response().Header().Set("Location", m.URL)
	}
	return writeJSON(c, status, m)
}

func (s *Server) deleteImage(c echo.Context) error {
	key := keyAfter(c, "/v1/images/")
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	if err := s.render.Delete(c.Request().Context(), key); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) getMetadata(c echo.Context) error {
	key := keyAfter(c, "/v1/images/")
	m, err := s.render.Metadata(c.Request().Context(), key)
	if err != nil {
		return err
	}
	m.URL = s.publicURL(c, key)
	c.Response().Header().Set("Cache-Control", "no-cache")
	return writeJSON(c, http.StatusOK, m)
}

type uploadRequest struct {
	Key      string `json:"key"`
	Filename string `json:"filename"`
}

// presignUpload answers a form with which a browser uploads straight to S3.
func (s *Server) presignUpload(c echo.Context) error {
	var req uploadRequest
	body, err := s.readBody(c, 64<<10)
	if err != nil {
		return err
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return prism.Errorf(http.StatusBadRequest, prism.CodeInvalidBody, "body must be JSON: {\"key\": …, \"filename\": …}, both optional")
		}
	}
	key := req.Key
	if key == "" {
		var nonce [6]byte
		_, _ = rand.Read(nonce[:])
		key = datedKey(hex.EncodeToString(nonce[:]), req.Filename, "")
	}
	c.Set(logKey, key)
	if err := writableKey(key); err != nil {
		return err
	}
	post, err := s.render.PresignUpload(c.Request().Context(), key, s.cfg.MaxUploadBytes, s.cfg.PresignExpiry)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, post)
}

// readBody reads the request body, refusing (413) to read past limit.
func (s *Server) readBody(c echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > limit {
		return nil, bodyTooLarge(limit)
	}
	data, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, limit))
	return data, bodyError(err, limit)
}

// readMultipart reads the file and key fields of a multipart upload.
func (s *Server) readMultipart(c echo.Context, boundary string) (data []byte, key, filename string, err error) {
	r := c.Request()
	limit := s.cfg.MaxUploadBytes
	if r.ContentLength > limit+multipartOverhead {
		return nil, "", "", bodyTooLarge(limit)
	}
	if boundary == "" {
		return nil, "", "", prism.Errorf(http.StatusBadRequest, prism.CodeInvalidBody, "multipart body without a boundary")
	}
	mr := multipart.NewReader(http.MaxBytesReader(c.Response(), r.Body, limit+multipartOverhead), boundary)
	found := false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", "", bodyError(err, limit)
		}
		switch part.FormName() {
		case "file":
			filename, found = part.FileName(), true
			data, err = io.ReadAll(io.LimitReader(part, limit+1))
			if err == nil && int64(len(data)) > limit {
				return nil, "", "", bodyTooLarge(limit)
			}
		case "key":
			var b []byte
			b, err = io.ReadAll(io.LimitReader(part, storage.MaxKeyLen+1))
			key = strings.TrimSpace(string(b))
		}
		if err != nil {
			return nil, "", "", bodyError(err, limit)
		}
	}
	if !found {
		return nil, "", "", prism.Errorf(http.StatusBadRequest, prism.CodeInvalidBody, "multipart body has no file field")
	}
	return data, key, filename, nil
}

func bodyTooLarge(limit int64) error {
	return prism.Errorf(http.StatusRequestEntityTooLarge, prism.CodePayloadTooLarge, "upload is over the limit of %d bytes", limit)
}

// bodyError explains a failed body read: too large, or cut off.
func bodyError(err error, limit int64) error {
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooLarge):
		return bodyTooLarge(limit)
	default:
		return prism.Wrap(err, http.StatusBadRequest, prism.CodeInvalidBody, "the upload was interrupted or malformed")
	}
}

// datedKey makes a key YYYY/MM/<id>-<name> for an upload without one.
func datedKey(id, filename string, f imaging.Format) string {
	return time.Now().UTC().Format("2006/01") + "/" + id + "-" + sanitizeName(filename, f)
}

// sanitizeName keeps a file name's stem safe for URLs (lower-case letters,
// digits, '-', '_', '.') and gives it the extension of the format the bytes
// really have, when known.
func sanitizeName(filename string, f imaging.Format) string {
	base := path.Base(strings.ReplaceAll(filename, `\`, "/"))
	ext := strings.ToLower(path.Ext(base))
	stem := strings.ToLower(strings.TrimSuffix(base, path.Ext(base)))
	var b strings.Builder
	for _, r := range stem {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '.':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	stem = strings.Trim(b.String(), "-._")
	if len(stem) > 64 {
		stem = strings.Trim(stem[:64], "-._")
	}
	if stem == "" {
		stem = "image"
	}
	if f.Uploadable() {
		return stem + "." + f.Extension()
	}
	switch e := strings.TrimPrefix(ext, "."); {
	case e == "jpg", e == "tif", imaging.Format(e).Uploadable():
		return stem + ext
	}
	return stem
}

// publicURL is where the URL API serves key.
func (s *Server) publicURL(c echo.Context, key string) string {
	base := s.cfg.PublicURL
	if base == "" {
		r := c.Request()
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
			scheme = p
		}
		base = scheme + "://" + r.Host
	}
	return strings.TrimSuffix(base, "/") + "/" + storage.EscapePath(key)
}

func writeJSON(c echo.Context, status int, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Length", strconv.Itoa(len(data)))
	return c.JSONBlob(status, data)
}
