package cache

import (
	"context"
	"fmt"
	"testing"
)

func TestMemoryBounded(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxEntries int
		wantMax    int
	}{
		{"explicit bound", 100, 100},
		{"bound of one", 1, 1},
		{"default bound", 0, DefaultMemoryEntries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemory(tc.maxEntries, Options{})
			defer m.Close()
			ctx := context.Background()
			n := 3*tc.wantMax + 10
			for i := range n {
				key := fmt.Sprintf("k/%d.jpg", i)
				if i%3 == 0 {
					m.SetMissing(ctx, key) // negative entries count too
				} else {
					m.Set(ctx, meta(key, "v"))
				}
			}
			m.c.CleanUp()
			if size := m.c.EstimatedSize(); size > tc.wantMax {
				t.Errorf("%d entries after %d writes, want at most %d", size, n, tc.wantMax)
			}
			found := 0
			for i := range n {
				if _, l := m.Get(ctx, fmt.Sprintf("k/%d.jpg", i)); l != Miss {
					found++
				}
			}
			if found == 0 || found > tc.wantMax {
				t.Errorf("%d of %d keys answered, want 1 to %d", found, n, tc.wantMax)
			}
		})
	}
}
