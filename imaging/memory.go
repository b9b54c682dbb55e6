package imaging

// What libvips 8.14 holds while it works, measured with Prism's settings
// (one thread per pipeline), as bytes per pixel. The estimates err high:
// they are a budget, not an account.

// encodeBytesPerPixel is what encoding one output pixel holds, over every
// frame kept: the canvas and the encoder's own buffers. AVIF's encoder
// (libaom through libheif) keeps several copies of a frame.
var encodeBytesPerPixel = map[Format]int64{AVIF: 14, GIF: 11, WebP: 7, JPEG: 5, PNG: 4}

// decodeMemory is what decoding the source for plan holds: a JPEG's DCT
// coefficients, 3 bytes for every source pixel whatever the shrink (a
// progressive JPEG keeps them all until the last scan); a GIF's frame twice
// over (the decoder's and libvips' copy); an SVG's drawing in the child
// process, librsvg's surfaces (about 48 bytes a pixel drawn, with filters);
// a WebP's pixels at the scale it is shrunk to (a still one: libvips
// decodes animations at full size), 4 bytes each; any other format's pixels
// as decoded, 4 bytes each.
func decodeMemory(h Header, plan Plan, frames int) int64 {
	px := int64(h.Width) * int64(h.Height)
	switch h.Format {
	case JPEG:
		return px * 3
	case GIF:
		return px * int64(frames) * 8
	case WebP:
		s := 1 / float64(shrinkFactor(plan))
		if frames > 1 {
			s = 1 // libvips 8.14 does not scale an animated WebP
		}
		return int64(float64(px)*s*s) * int64(frames) * 4
	case SVG:
		s := svgScale(plan)
		return int64(float64(px)*s*s) * 48
	}
	return px * int64(frames) * 4
}
