//go:build !linux

package imaging

// ReleaseMemory is a no-op where the C library has no malloc_trim.
func ReleaseMemory() {}

// tuneAllocator leaves other C libraries' allocators as they are.
func tuneAllocator() {}
