package cache

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestMarkIndex runs every MarkIndex through the same calls: users are
// recorded once each, per mark, and Take forgets them.
func TestMarkIndex(t *testing.T) {
	indexes := []struct {
		name string
		new  func(t *testing.T) MarkIndex
	}{
		{"memory", func(*testing.T) MarkIndex { return NewMarkMemory(0) }},
		{"redis", func(t *testing.T) MarkIndex {
			flushShared(t)
			return newTestRedis(t, shared.URL(), Options{}, defaultMaxPending, defaultFlushEvery).MarkIndex()
		}},
	}
	for _, ix := range indexes {
		t.Run(ix.name, func(t *testing.T) {
			ctx := context.Background()
			x := ix.new(t)
			x.Add(ctx, "logo.png", "a.jpg")
			x.Add(ctx, "logo.png", "b.jpg")
			x.Add(ctx, "logo.png", "a.jpg")
			x.Add(ctx, "other.png", "c.jpg")
			got := x.Take(ctx, "logo.png")
			slices.Sort(got)
			if want := []string{"a.jpg", "b.jpg"}; !slices.Equal(got, want) {
				t.Errorf("Take(logo.png) = %q, want %q", got, want)
			}
			if got := x.Take(ctx, "logo.png"); len(got) != 0 {
				t.Errorf("second Take(logo.png) = %q, want none", got)
			}
			if got := x.Take(ctx, "other.png"); !slices.Equal(got, []string{"c.jpg"}) {
				t.Errorf("Take(other.png) = %q, want [c.jpg]", got)
			}
		})
	}
}

func TestMarkIndexRedisTTL(t *testing.T) {
	flushShared(t)
	r := newTestRedis(t, shared.URL(), Options{}, defaultMaxPending, defaultFlushEvery)
	r.MarkIndex().Add(context.Background(), "logo.png", "a.jpg")
	ttl, err := r.rdb.TTL(context.Background(), MarkPrefix+"logo.png").Result()
	if err != nil || ttl < 365*24*time.Hour {
		t.Fatalf("TTL of the mark set = %v, %v; want over a year (a CDN's longest)", ttl, err)
	}
}

func TestMarkMemoryBound(t *testing.T) {
	x := NewMarkMemory(2)
	ctx := context.Background()
	x.Add(ctx, "m", "a")
	x.Add(ctx, "m", "b")
	x.Add(ctx, "m", "c") // over the bound: not recorded
	if got := x.Take(ctx, "m"); len(got) != 2 || slices.Contains(got, "c") {
		t.Fatalf("Take = %q, want a and b only", got)
	}
	x.Add(ctx, "m", "c") // room again once taken
	if got := x.Take(ctx, "m"); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("Take after room = %q, want [c]", got)
	}
}
