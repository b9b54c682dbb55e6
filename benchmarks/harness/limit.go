package harness

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/internal/testutil"
)

// Limit is the in-process libvips limit of one piece of work at one
// goroutine count: libvips' own thumbnail path, no HTTP, no storage.
type Limit struct {
	Goroutines int
	Images     int
	Bytes      int64 // output, over every image
	// Window is the time measured, and InWindow the images done in it:
	// every image that ended within it, and the share that lay within
	// it of each image that ended after it. Images done once the window
	// closed, by fewer goroutines than were measured, do not count.
	Window   time.Duration
	InWindow float64
	P50, P99 time.Duration // per image
	CPU      time.Duration // the harness process's, user and system
	// Counts are the goroutine counts chosen by the first and the second
	// half, on the Limit that Limits.Best returns.
	Counts []int

	latencies []time.Duration // sorted
	// halves are the measurements merged into this one, measured apart
	// (before and after the scenario's parts), for Limits.Best.
	halves []Limit
}

// CPUPerImage is the CPU time one image took, over every thread.
func (l Limit) CPUPerImage() time.Duration { return l.CPU / time.Duration(max(l.Images, 1)) }

// merged is l and m, measured apart at the same goroutine count, as one.
func (l Limit) merged(m Limit) Limit {
	lat := append(append([]time.Duration(nil), l.latencies...), m.latencies...)
	slices.Sort(lat)
	return Limit{
		Goroutines: l.Goroutines, Images: l.Images + m.Images, Bytes: l.Bytes + m.Bytes,
		Window: l.Window + m.Window, InWindow: l.InWindow + m.InWindow, P50: percentile(lat, 0.50), P99: percentile(lat, 0.99), latencies: lat,
		CPU: l.CPU + m.CPU,
	}
}

// halved is first and second, one count's two halves (alternate), merged
// and kept apart for Limits.Best.
func halved(first, second Limit) Limit {
	l := first.merged(second)
	l.halves = []Limit{first, second}
	return l
}

// PerSecond is images per second over every goroutine.
func (l Limit) PerSecond() float64 {
	if l.Window <= 0 {
		return 0
	}
	return l.InWindow / l.Window.Seconds()
}

// MeanBytes is the mean output size.
func (l Limit) MeanBytes() float64 { return float64(l.Bytes) / float64(max(l.Images, 1)) }

// Limits is one piece of work's limit at each goroutine count tried.
type Limits []Limit

// Best is the limit at the fastest goroutine count. When each count was
// measured in two halves (alternate), the count is chosen on each half and its
// rate taken from the other half, crosswise: the largest of a few noisy
// rates overstates the best of them (when counts run about as fast, the
// noise that makes one look fastest is counted in its rate), so the
// measurement that picks a count never also measures it. What it
// estimates is the true rate of the counts chosen: the fastest's, or,
// when counts run about as fast, one within noise of it. Goroutines is
// then the count both halves chose; when they chose different counts, it
// is 0 and Counts says which. No count that did any work: the zero Limit.
func (ls Limits) Best() Limit {
	var first, second Limits
	for _, l := range ls {
		if len(l.halves) == 2 {
			first, second = append(first, l.halves[0]), append(second, l.halves[1])
		}
	}
	if len(ls) == 0 || len(first) != len(ls) {
		if i := fastest(ls); i >= 0 {
			return ls[i]
		}
		return Limit{}
	}
	a, b := fastest(first), fastest(second)
	if a < 0 || b < 0 {
		return Limit{}
	}
	// a's count measured by the second half, b's by the first.
	best := second[a].merged(first[b])
	best.Counts = []int{ls[a].Goroutines, ls[b].Goroutines}
	if a != b {
		best.Goroutines = 0
	}
	return best
}

// countsText is the goroutine count of a Limit that Best returned: one
// count, or the two that its halves chose.
func (l Limit) countsText() string {
	if l.Goroutines == 0 && len(l.Counts) == 2 {
		return fmt.Sprintf("%d and %d", l.Counts[0], l.Counts[1])
	}
	return strconv.Itoa(l.Goroutines)
}

// fastest is the index of the limit of most images per second, -1 when
// none did any.
func fastest(ls Limits) int {
	best := -1
	for i, l := range ls {
		if l.PerSecond() > 0 && (best < 0 || l.PerSecond() > ls[best].PerSecond()) {
			best = i
		}
	}
	return best
}

// unbounded is libvips' largest coordinate: as a thumbnail's height, it
// leaves the width alone to decide the size, as ?w= does.
const unbounded = 10_000_000

var startVips = sync.OnceValue(func() error { return imaging.Startup(1) })

// work is the n-th image of a limit: it returns the output's size.
type work func(n int64) (int, error)

// thumbnailWork is libvips' thumbnail path for t's n-th variant
// (vips_thumbnail_buffer: shrink-on-load, then a Lanczos3 resize, never
// enlarging), saved by Prism's own save step: the same encoder parameters
// the server uses, metadata stripped.
func thumbnailWork(proc *imaging.Processor, src []byte, t Transform) work {
	return func(n int64) (int, error) {
		w, q := t.variant(n)
		img, err := vips.NewThumbnailWithSizeFromBuffer(src, w, unbounded, vips.InterestingNone, vips.SizeDown)
		if err != nil {
			return 0, err
		}
		defer img.Close()
		out, err := proc.Save(img, t.Format, q)
		return len(out), err
	}
}

// decodeWork is what validating an upload must decode at least: every pixel
// of src, through libvips' thumbnail path to the placeholder size.
func decodeWork(src []byte) work {
	return func(int64) (int, error) {
		img, err := vips.NewThumbnailWithSizeFromBuffer(src, 64, 64, vips.InterestingNone, vips.SizeDown)
		if err != nil {
			return 0, err
		}
		defer img.Close()
		px, err := img.ToBytes()
		return len(px), err
	}
}

// measureLimits measures fn at each multiple of the core count, and keeps
// every result: the fastest is the limit (Limits.Best).
func measureLimits(ctx context.Context, fn work, multiples []int, cores int, d time.Duration) (Limits, error) {
	if err := startVips(); err != nil {
		return nil, fmt.Errorf("starting libvips: %w", err)
	}
	var ls Limits
	for _, m := range multiples {
		l, err := measureLimit(ctx, fn, m*cores, d)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// alternate runs a scenario in rounds parts of d/rounds each, through run,
// and measures fn's limits at each goroutine count for d/(2·rounds) just
// before and just after every part: a machine whose speed drifts during
// the run (shared cores, turbo, neighbours) then drifts for the limit as
// for the scenario. What was measured before the parts is the limits'
// first half, what was measured after them the second (Limits.Best).
func alternate(ctx context.Context, fn work, multiples []int, cores int, d time.Duration, rounds int, run func(time.Duration) error) (Limits, error) {
	var before, after Limits
	slice := d / time.Duration(2*rounds)
	for range rounds {
		b, err := measureLimits(ctx, fn, multiples, cores, slice)
		if err != nil {
			return nil, err
		}
		if err := run(d / time.Duration(rounds)); err != nil {
			return nil, err
		}
		a, err := measureLimits(ctx, fn, multiples, cores, slice)
		if err != nil {
			return nil, err
		}
		before, after = accumulate(before, b), accumulate(after, a)
	}
	for i := range before {
		before[i] = halved(before[i], after[i])
	}
	return before, nil
}

// accumulate adds ls, measured at the same goroutine counts as sums, to it.
func accumulate(sums, ls Limits) Limits {
	if sums == nil {
		return ls
	}
	for i := range sums {
		sums[i] = sums[i].merged(ls[i])
	}
	return sums
}

// measureLimit runs goroutines, each doing fn's images one after the other,
// for d. libvips runs one thread per image: the parallelism is the
// goroutines', as the server's is its concurrent requests'.
func measureLimit(ctx context.Context, fn work, goroutines int, d time.Duration) (Limit, error) {
	var (
		n     atomic.Int64
		bytes atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		lat   []time.Duration
		done  float64 // in the window
		first error
	)
	self := os.Getpid()
	cpu0, err := testutil.ProcessCPU(self)
	if err != nil {
		return Limit{}, err
	}
	start := time.Now()
	deadline := start.Add(d)
	for range goroutines {
		wg.Go(func() {
			var mine []time.Duration
			var in float64
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				done += in
				mu.Unlock()
			}()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				size, err := fn(n.Add(1) - 1)
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
				t1 := time.Now()
				in += shareIn(t0, t1, deadline)
				bytes.Add(int64(size))
				mine = append(mine, t1.Sub(t0))
			}
		})
	}
	wg.Wait()
	cpu1, err := testutil.ProcessCPU(self)
	if err != nil {
		return Limit{}, err
	}
	if first != nil {
		return Limit{}, fmt.Errorf("in-process limit: %w", first)
	}
	if err := ctx.Err(); err != nil {
		return Limit{}, err
	}
	slices.Sort(lat)
	return Limit{
		Goroutines: goroutines, Images: len(lat), Bytes: bytes.Load(), Window: d, InWindow: done,
		P50: percentile(lat, 0.50), P99: percentile(lat, 0.99), latencies: lat, CPU: cpu1 - cpu0,
	}, nil
}
