package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Credentials of every test MinIO. They guard nothing: the server listens on
// loopback only and lives as long as one test.
const (
	minioAccessKey = "prism-test"
	minioSecretKey = "prism-test-secret"
	minioRegion    = "us-east-1"
)

// minioStartTimeout bounds the wait for a fresh MinIO to report healthy.
const minioStartTimeout = 30 * time.Second

// MinIO is a running MinIO server with a bucket made for the test.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:port
	Bucket    string
	Prefix    string // optional key prefix that Env and Put apply; empty by default
	AccessKey string
	SecretKey string

	clientOnce sync.Once
	client     *s3.Client
}

// StartMinIO starts a MinIO server for the duration of t, with a fresh
// bucket. It fails t, rather than skipping it, when the minio binary is
// missing: a test that silently skips is a test nobody runs.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	m, stop, err := StartMinIOServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return m
}

// StartMinIOServer is StartMinIO for callers without a testing.TB, such as
// TestMain. The caller must call stop, which kills the server and removes
// its data.
func StartMinIOServer() (m *MinIO, stop func(), err error) {
	bin, err := minioBinary()
	if err != nil {
		return nil, nil, err
	}
	// The ports are free when chosen but may be taken before MinIO binds
	// them; a server that exits during start-up is retried on new ones.
	for range 3 {
		m, stop, err = startMinIO(bin)
		if !errors.Is(err, errMinIOExited) {
			break
		}
	}
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), minioStartTimeout)
	defer cancel()
	if m.Bucket, err = m.newBucket(ctx); err != nil {
		stop()
		return nil, nil, err
	}
	return m, stop, nil
}

// minioBinary finds minio in PATH or where `go install` puts it.
func minioBinary() (string, error) {
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	var dirs []string
	for _, gp := range filepath.SplitList(os.Getenv("GOPATH")) {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin")) // GOPATH's default
	}
	for _, d := range dirs {
		p := filepath.Join(d, "minio")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("testutil: the minio binary is not in PATH nor in %s: run `make test`, which installs it", strings.Join(dirs, " or "))
}

var errMinIOExited = errors.New("minio exited during start-up")

// startMinIO starts bin on fresh ports and waits until it is healthy.
func startMinIO(bin string) (*MinIO, func(), error) {
	dir, err := os.MkdirTemp("", "prism-minio-")
	if err != nil {
		return nil, nil, fmt.Errorf("testutil: %w", err)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("testutil: %w", err)
	}
	consolePort, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("testutil: %w", err)
	}
	logPath := filepath.Join(dir, "minio.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("testutil: %w", err)
	}

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "server", filepath.Join(dir, "data"),
		"--address", addr,
		"--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+minioAccessKey,
		"MINIO_ROOT_PASSWORD="+minioSecretKey,
		"MINIO_BROWSER=off", // the console is not needed and slows start-up
		"MINIO_UPDATE=off",
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("testutil: starting minio: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			killGroup(cmd.Process)
			<-exited
			os.RemoveAll(dir)
		})
	}

	m := &MinIO{
		Endpoint:  "http://" + addr,
		AccessKey: minioAccessKey,
		SecretKey: minioSecretKey,
	}
	if err := waitHealthy(m.Endpoint+"/minio/health/live", exited); err != nil {
		// Read the log before stop removes it.
		log, _ := os.ReadFile(logPath)
		stop()
		return nil, nil, fmt.Errorf("testutil: minio at %s: %w\nminio log:\n%s", addr, err, tail(log, 4096))
	}
	return m, stop, nil
}

// waitHealthy polls url until it answers 200, the process exits or
// minioStartTimeout passes.
func waitHealthy(url string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(minioStartTimeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after %v (last error: %v)", minioStartTimeout, err)
		}
		select {
		case <-exited:
			return errMinIOExited
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Client returns an S3 client for the server, with path-style addressing
// and the server's credentials.
func (m *MinIO) Client() *s3.Client {
	m.clientOnce.Do(func() {
		m.client = s3.New(s3.Options{
			Region:       minioRegion,
			BaseEndpoint: aws.String(m.Endpoint),
			UsePathStyle: true,
			Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		})
	})
	return m.client
}

// NewBucket creates another, empty bucket and returns its name.
func (m *MinIO) NewBucket(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name, err := m.newBucket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func (m *MinIO) newBucket(ctx context.Context) (string, error) {
	name := "prism-test-" + randomHex(6)
	if _, err := m.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name}); err != nil {
		return "", fmt.Errorf("testutil: creating bucket %s: %w", name, err)
	}
	return name, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Put stores data at key, under Prefix, in Bucket. An empty contentType
// stores none.
func (m *MinIO) Put(t testing.TB, key string, data []byte, contentType string) {
	t.Helper()
	in := &s3.PutObjectInput{
		Bucket: &m.Bucket,
		Key:    aws.String(m.objectKey(key)),
		Body:   bytes.NewReader(data),
	}
	if contentType != "" {
		in.ContentType = &contentType
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m.Client().PutObject(ctx, in); err != nil {
		t.Fatalf("testutil: putting %s: %v", key, err)
	}
}

func (m *MinIO) objectKey(key string) string {
	if p := strings.Trim(m.Prefix, "/"); p != "" {
		return p + "/" + key
	}
	return key
}

// StorageURL returns the PRISM_STORAGE URL of Bucket and Prefix.
func (m *MinIO) StorageURL() string {
	if p := strings.Trim(m.Prefix, "/"); p != "" {
		return "s3://" + m.Bucket + "/" + p
	}
	return "s3://" + m.Bucket
}

// Env returns the environment, as KEY=value pairs, under which a process
// using the standard AWS SDK configuration chain talks to this server, and
// Prism serves from Bucket (and Prefix). Append it to os.Environ() for a
// child process.
func (m *MinIO) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
		"AWS_SESSION_TOKEN=", // a developer's own token would spoil the signature
		"AWS_REGION=" + minioRegion,
		"AWS_ENDPOINT_URL_S3=" + m.Endpoint,
		"PRISM_STORAGE=" + m.StorageURL(),
		"PRISM_S3_PATH_STYLE=true",
	}
}

// SetAWSEnv sets m.Env() in this process for the duration of t, so that
// in-process code (storage.NewS3, config loading) reaches m.
func SetAWSEnv(t testing.TB, m *MinIO) {
	t.Helper()
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}
