package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ResetPeakRSS resets the peak resident size of process pid, so that
// PeakRSS then reports the peak since this call.
func ResetPeakRSS(t testing.TB, pid int) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("resetting the peak RSS of %d: %v", pid, err)
	}
}

// PeakRSS is the peak resident size of process pid (VmHWM), in bytes.
func PeakRSS(t testing.TB, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the peak RSS of %d: %v", pid, err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM of %d: %q", pid, line)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times:
// 100 on every Linux Prism runs on.
const clockTicks = 100

// CPUTime is ProcessCPU, failing t when it cannot be read.
func CPUTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	d, err := ProcessCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// ProcessCPU is the CPU time, user and system, process pid has used.
func ProcessCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of %d: %w", pid, err)
	}
	// The command name may hold spaces: fields count from after its ')'.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("parsing /proc/%d/stat: %q", pid, stat)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64) // field 14 of the whole line
	stime, err2 := strconv.ParseInt(fields[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc/%d/stat: %q", pid, stat)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// TimeToIdle polls until process pid uses less than a tenth of a core over
// a quarter of a second, and returns how long that took; it fails the test
// after limit.
func TimeToIdle(t testing.TB, pid int, limit time.Duration) time.Duration {
	t.Helper()
	const window = 250 * time.Millisecond
	start := time.Now()
	for time.Since(start) < limit {
		before := CPUTime(t, pid)
		time.Sleep(window)
		if CPUTime(t, pid)-before < window/10 {
			return time.Since(start) - window
		}
	}
	t.Fatalf("process %d still busy %v later", pid, limit)
	return limit
}

// Children lists the processes whose parent is pid.
func Children(t testing.TB, pid int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var kids []int
	for _, path := range stats {
		stat, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if ppid, _ := strconv.Atoi(fields[1]); ppid == pid {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			kids = append(kids, child)
		}
	}
	return kids
}
