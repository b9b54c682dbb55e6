package harness

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prism-image/prism/imaging"
)

// Limit is the in-process libvips limit: the pipeline the server runs for
// `?w=<distinct>&quality=80`, called directly with no HTTP.
type Limit struct {
	Workers  int
	Images   int
	Elapsed  time.Duration
	P50, P99 time.Duration // per image
}

// PerSecond is images per second over every worker.
func (l Limit) PerSecond() float64 { return rate(l.Images, l.Elapsed) }

var startVips = sync.OnceValue(func() error { return imaging.Startup(1) })

// measureLimit runs workers goroutines, each transforming photo with the
// same distinct variants the uncached scenarios ask for, one after the
// other, for d. libvips runs one thread per pipeline: the parallelism is the
// workers', as the server's is its concurrent requests'.
func measureLimit(ctx context.Context, photo []byte, workers int, d time.Duration) (Limit, error) {
	if err := startVips(); err != nil {
		return Limit{}, fmt.Errorf("starting libvips: %w", err)
	}
	proc := imaging.NewProcessor(imaging.DefaultConfig)
	var (
		n     atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		lat   []time.Duration
		end   time.Time
		first error
	)
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Go(func() {
			var mine []time.Duration
			var last time.Time
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				if last.After(end) {
					end = last
				}
				mu.Unlock()
			}()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				w, q := DistinctVariant(n.Add(1) - 1)
				o, err := imaging.ParseOptions(url.Values{"w": {strconv.Itoa(w)}, "quality": {strconv.Itoa(q)}})
				t0 := time.Now()
				if err == nil {
					_, err = proc.Process(ctx, photo, o, imaging.Accepts{})
				}
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
				last = time.Now()
				mine = append(mine, last.Sub(t0))
			}
		})
	}
	wg.Wait()
	if first != nil {
		return Limit{}, fmt.Errorf("in-process pipeline: %w", first)
	}
	if err := ctx.Err(); err != nil {
		return Limit{}, err
	}
	slices.Sort(lat)
	return Limit{
		Workers: workers, Images: len(lat), Elapsed: end.Sub(start),
		P50: percentile(lat, 0.50), P99: percentile(lat, 0.99),
	}, nil
}
