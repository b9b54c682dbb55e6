//go:build !linux

package imaging

// ReleaseMemory is a no-op where the C library has no malloc_trim.
func ReleaseMemory() {}
