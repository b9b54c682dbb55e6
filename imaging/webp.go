package imaging

import "encoding/binary"

// stripWebPMetadata removes EXIF, XMP and ICC chunks from an encoded WebP.
// libvips 8.14's webpsave writes a freshly made EXIF block even when asked
// to strip (fixed upstream in 8.14.2), so Prism drops it from the container.
// Input that does not parse as the extended WebP format is returned as is.
func stripWebPMetadata(data []byte) []byte {
	const header = 12 // "RIFF", size, "WEBP"
	if len(data) < header+8+10 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WEBP" ||
		string(data[12:16]) != "VP8X" || binary.LittleEndian.Uint32(data[16:20]) < 10 {
		return data
	}
	out := make([]byte, header, len(data))
	copy(out, data[:header])
	for off := header; off < len(data); {
		if off+8 > len(data) {
			return data
		}
		fourCC := string(data[off : off+4])
		size := int(binary.LittleEndian.Uint32(data[off+4 : off+8]))
		end := off + 8 + size + size&1 // chunks are padded to even sizes
		if size < 0 || end > len(data) {
			return data
		}
		switch fourCC {
		case "EXIF", "XMP ", "ICCP":
		default:
			out = append(out, data[off:end]...)
		}
		off = end
	}
	const iccFlag, exifFlag, xmpFlag = 0x20, 0x08, 0x04
	out[header+8] &^= iccFlag | exifFlag | xmpFlag // first byte of VP8X's payload
	binary.LittleEndian.PutUint32(out[4:8], uint32(len(out)-8))
	return out
}
