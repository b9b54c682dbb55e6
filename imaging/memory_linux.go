package imaging

// #include <malloc.h>
import "C"

// ReleaseMemory hands the C heap's free pages back to the system. libvips
// allocates pixel buffers with malloc; glibc keeps freed memory in its
// arenas, so without this the resident size stays at its peak after a burst.
func ReleaseMemory() { C.malloc_trim(0) }

// tuneAllocator keeps libvips' large buffers (a JPEG's DCT coefficients,
// tens of MB; decoded strips; encoder buffers) in glibc's arenas once
// freed, for the next image to reuse, instead of mapping fresh zeroed pages
// for every image and unmapping them after: with glibc's defaults, a buffer
// over 32 MB is mmapped each time, and its page faults cost a fifth of the
// CPU of a large JPEG. Buffers up to 64 MB are kept, and an arena gives
// back what it holds free above 16 MB at its top; larger buffers (a bomb's
// frames) are still mapped and unmapped, so that they do not stay resident. Two arenas stop
// glibc from keeping one per thread. ReleaseMemory, when the pipelines
// fall idle, returns what is left over.
func tuneAllocator() {
	C.mallopt(C.M_ARENA_MAX, 2)
	C.mallopt(C.M_MMAP_THRESHOLD, 64<<20)
	C.mallopt(C.M_TRIM_THRESHOLD, 16<<20)
}
