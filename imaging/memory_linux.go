package imaging

// #include <malloc.h>
import "C"

// ReleaseMemory hands the C heap's free pages back to the system. libvips
// allocates pixel buffers with malloc; glibc keeps freed memory in its
// arenas, so without this the resident size stays at its peak after a burst.
func ReleaseMemory() { C.malloc_trim(0) }
