package storage

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// Observed keeps what a store can do beyond Storage: S3 still presigns,
// a folder still does not.
func TestObservedKeepsPresigning(t *testing.T) {
	m := NewMetrics(nil)
	f, err := NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		store    Storage
		presigns bool
	}{
		{"s3", &S3{}, true},
		{"file", f, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := Observed(tt.store, m)
			_, post := o.(interface {
				PresignPost(context.Context, string, int64, time.Duration) (PresignedPost, error)
			})
			_, get := o.(interface {
				PresignGet(context.Context, string, time.Duration) (string, error)
			})
			if post != tt.presigns || get != tt.presigns {
				t.Errorf("observed %s presigns posts %v, gets %v; want %v", tt.name, post, get, tt.presigns)
			}
		})
	}
	if Observed(f, nil) != Storage(f) {
		t.Error("without metrics, Observed wraps")
	}
}

// Every call is timed; a missing key is no backend failure.
func TestObservedCounts(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	f, err := NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := Observed(f, m)
	ctx := context.Background()
	if _, err := s.Put(ctx, "a.jpg", []byte("x"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "a.jpg"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "missing.jpg"); err == nil {
		t.Fatal("a missing key was found")
	}
	obj, err := s.Open(ctx, "a.jpg")
	if err != nil {
		t.Fatal(err)
	}
	obj.Close()
	if err := s.Delete(ctx, "a.jpg"); err != nil {
		t.Fatal(err)
	}
	for op, want := range map[string]uint64{"put": 1, "stat": 2, "open": 1, "delete": 1} {
		var d dto.Metric
		if err := m.duration.WithLabelValues("file", op).(prometheus.Histogram).Write(&d); err != nil {
			t.Fatal(err)
		}
		if got := d.GetHistogram().GetSampleCount(); got != want {
			t.Errorf("%s: %d calls timed, want %d", op, got, want)
		}
		if n := promtestutil.ToFloat64(m.errors.WithLabelValues("file", op)); n != 0 {
			t.Errorf("%s: %v errors counted, want 0", op, n)
		}
	}
}
