package testutil

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRedis(t *testing.T) {
	r := StartRedis(t)
	if !strings.HasPrefix(r.URL(), "redis://127.0.0.1:") || !strings.HasSuffix(r.URL(), "/0") {
		t.Errorf("URL() = %q, want redis://127.0.0.1:port/0", r.URL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := r.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v; want v", got, err)
	}

	r.Kill()
	if err := ping(r.Addr); err == nil {
		t.Fatal("redis-server still answers PING after Kill")
	}
	r.Kill() // a second Kill does nothing

	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := r.Restart(); err == nil {
		t.Error("Restart of a running server succeeded")
	}
	if err := ping(r.Addr); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	// Nothing is saved, so the restarted server is empty; the client
	// reconnects by itself (its pooled connection died with the server).
	var n int64
	var err error
	for range 3 {
		if n, err = c.Exists(ctx, "k").Result(); err == nil {
			break
		}
	}
	if err != nil || n != 0 {
		t.Errorf("EXISTS k after Restart = %d, %v; want 0", n, err)
	}
}
