// Package e2e tests the compiled server binary over HTTP, against both
// storage backends: a local folder and a real MinIO server.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/prism-image/prism/internal/testutil"
)

// backend is one running server and the storage behind it.
type backend struct {
	name string
	proc *testutil.Process
}

var (
	serverBin string
	backends  []backend
	minio     *testutil.MinIO
	redis     *testutil.Redis
	fileRoot  string
)

// apiKey authorises writes on every server the tests start.
const apiKey = "e2e-test-key-0123456789"

// Every test image is stored at img/<name>; one more sits under a deep key.
const deepKey = "uploads/2026/11/cat.jpg"

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	testutil.StartVips()
	tmp, err := os.MkdirTemp("", "prism-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	if serverBin, err = testutil.BuildBinary("./cmd/server", tmp); err != nil {
		return 0, err
	}
	objects, err := testObjects()
	if err != nil {
		return 0, err
	}

	fileRoot = filepath.Join(tmp, "data")
	for key, data := range objects {
		p := filepath.Join(fileRoot, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return 0, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return 0, err
		}
	}
	// The file backend keeps metadata in process; the S3 one in Redis.
	fileServer, err := testutil.StartServer(serverBin, "PRISM_STORAGE=file://"+fileRoot, "PRISM_API_KEYS="+apiKey)
	if err != nil {
		return 0, err
	}
	defer fileServer.Stop()

	var stopMinIO func()
	minio, stopMinIO, err = testutil.StartMinIOServer()
	if err != nil {
		return 0, err
	}
	defer stopMinIO()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for key, data := range objects {
		_, err := minio.Client().PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(minio.Bucket), Key: aws.String(key), Body: bytes.NewReader(data),
			ContentType: aws.String(mime.TypeByExtension(strings.ToLower(path.Ext(key)))),
		})
		if err != nil {
			return 0, fmt.Errorf("seeding MinIO: %w", err)
		}
	}
	var stopRedis func()
	if redis, stopRedis, err = testutil.StartRedisServer(); err != nil {
		return 0, err
	}
	defer stopRedis()
	s3Server, err := testutil.StartServer(serverBin, append(minio.Env(), "PRISM_API_KEYS="+apiKey, "PRISM_REDIS_URL="+redis.URL())...)
	if err != nil {
		return 0, err
	}
	defer s3Server.Stop()

	backends = []backend{{"file", fileServer}, {"s3", s3Server}}
	return m.Run(), nil
}

// testObjects is what both backends hold: every test image under img/.
func testObjects() (map[string][]byte, error) {
	dir := filepath.Join(testutil.Root(), "testdata", "images")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	objects := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		objects["img/"+e.Name()] = b
	}
	objects[deepKey] = objects["img/320x240.jpg"]
	return objects, nil
}

// eachBackend runs f once per storage backend.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

var client = &http.Client{Timeout: 2 * time.Minute}

// response is a finished HTTP exchange.
type response struct {
	*http.Response
	body []byte
}

func do(t *testing.T, method, url string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	if res.StatusCode >= 500 && res.StatusCode != http.StatusBadGateway && res.StatusCode != http.StatusGatewayTimeout && res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("%s %s: %d %s", method, url, res.StatusCode, body)
	}
	return response{res, body}
}

func get(t *testing.T, url string, header ...string) response {
	t.Helper()
	return do(t, http.MethodGet, url, header...)
}

func readAll(res *http.Response) ([]byte, error) {
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}
