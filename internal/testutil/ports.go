// Package testutil holds the helpers Prism's tests share: real services
// (MinIO, redis-server), free ports and image decoding.
package testutil

import (
	"net"
	"testing"
)

// FreePort returns a loopback TCP port that was free a moment ago. Another
// process may take it before the caller binds it; servers started on it
// should be retried on a new port if they fail to start.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testutil: finding a free port: %v", err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
