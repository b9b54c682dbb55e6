package harness

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sampleEvery is how often the server's RSS is read during a scenario.
const sampleEvery = 50 * time.Millisecond

// readRSS is the resident set size of process pid, in bytes, from
// /proc/<pid>/status (VmRSS).
func readRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the server's RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading the server's RSS: %q: %w", sc.Text(), err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading the server's RSS: %w", err)
	}
	return 0, fmt.Errorf("reading the server's RSS: no VmRSS in /proc/%d/status (has it exited?)", pid)
}

// peakSampler reads a process's RSS every sampleEvery and keeps the peak.
type peakSampler struct {
	pid  int
	done chan struct{}
	wg   sync.WaitGroup
	peak int64
}

func startPeakSampler(pid int) *peakSampler {
	s := &peakSampler{pid: pid, done: make(chan struct{})}
	s.sample()
	s.wg.Go(func() {
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.sample()
			}
		}
	})
	return s
}

func (s *peakSampler) sample() {
	if rss, err := readRSS(s.pid); err == nil {
		s.peak = max(s.peak, rss)
	}
}

// stop ends the sampling and returns the peak, in bytes.
func (s *peakSampler) stop() int64 {
	close(s.done)
	s.wg.Wait()
	s.sample()
	return s.peak
}

// Recovery is how the server's RSS came down after the overload scenario.
type Recovery struct {
	Recovered bool          // RSS fell under RecoveryRSS within the wait
	After     time.Duration // from the end of the load to the first sample under RecoveryRSS
	Waited    time.Duration // the cap on the wait
	Last      int64         // the last RSS read, in bytes
}

// waitRecovery samples pid's RSS every sampleEvery from now until it is
// under RecoveryRSS, or until wait has passed since loadEnd.
func waitRecovery(ctx context.Context, pid int, loadEnd time.Time, wait time.Duration) Recovery {
	r := Recovery{Waited: wait}
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		if rss, err := readRSS(pid); err == nil {
			r.Last = rss
			if rss < RecoveryRSS {
				r.Recovered, r.After = true, max(0, time.Since(loadEnd))
				return r
			}
		}
		if time.Since(loadEnd) >= wait {
			return r
		}
		select {
		case <-ctx.Done():
			return r
		case <-t.C:
		}
	}
}
