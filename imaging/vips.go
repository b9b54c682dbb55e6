package imaging

import (
	"fmt"

	"github.com/davidbyttow/govips/v2/vips"
)

// Startup starts libvips once per process, with the C allocator tuned for
// its buffers (tuneAllocator). concurrency is the number of threads one
// pipeline may use (0: libvips' default). The operation cache is off: Prism
// never repeats an operation on the same image, and the cache would only
// pin memory.
func Startup(concurrency int) error {
	tuneAllocator()
	vips.LoggingSettings(nil, vips.LogLevelError)
	if err := vips.Startup(&vips.Config{
		ConcurrencyLevel: concurrency,
		MaxCacheFiles:    0,
		MaxCacheMem:      0,
		MaxCacheSize:     0,
	}); err != nil {
		return err
	}
	// govips writes its sRGB profile to a file on first use, and publishes
	// the path before the file is written: write it now, before any
	// concurrent pipeline can read a half-made profile.
	path, err := vips.GetSRGBIEC6196621ICCProfilePath()
	if err != nil {
		return fmt.Errorf("libvips sRGB profile: %w", err)
	}
	srgbProfile = path
	return nil
}

// srgbProfile is the path of the sRGB ICC profile outputs are converted to.
var srgbProfile string

// Shutdown stops libvips. No pipeline may run after it.
func Shutdown() { vips.Shutdown() }

// Health encodes a tiny image, proving libvips can still do work.
func Health() error {
	img, err := vips.Black(2, 2)
	if err != nil {
		return fmt.Errorf("libvips: %w", err)
	}
	defer img.Close()
	data, _, err := img.ExportJpeg(&vips.JpegExportParams{Quality: 50, StripMetadata: true})
	if err != nil || len(data) == 0 {
		return fmt.Errorf("libvips cannot encode: %v", err)
	}
	return nil
}

// Version is the libvips version, x.y.z.
func Version() string { return vips.Version }

// TrackedMemory is the memory libvips holds now for pixels and buffers, by
// its own count.
func TrackedMemory() int64 {
	var s vips.MemoryStats
	vips.ReadVipsMemStats(&s)
	return s.Mem
}
