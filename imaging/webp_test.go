package imaging

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// riffChunk encodes one RIFF chunk: FourCC, little-endian size, payload and,
// for odd sizes, the padding byte.
func riffChunk(fourCC string, payload []byte) []byte {
	if len(fourCC) != 4 {
		panic("bad FourCC " + fourCC)
	}
	b := append([]byte(fourCC), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(payload)))
	b = append(b, payload...)
	if len(payload)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// webpFile wraps chunks in a RIFF/WEBP container with a correct size.
func webpFile(chunks ...[]byte) []byte {
	body := bytes.Join(chunks, nil)
	b := append([]byte("RIFF"), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], uint32(4+len(body)))
	b = append(b, "WEBP"...)
	return append(b, body...)
}

// vp8x is a VP8X payload with the given flags and a canvas of w×h.
func vp8x(flags byte, w, h int) []byte {
	p := make([]byte, 10)
	p[0] = flags
	p[4], p[5], p[6] = byte(w-1), byte((w-1)>>8), byte((w-1)>>16)
	p[7], p[8], p[9] = byte(h-1), byte((h-1)>>8), byte((h-1)>>16)
	return p
}

// VP8X flag bits.
const (
	flagAnimation = 0x02
	flagXMP       = 0x04
	flagEXIF      = 0x08
	flagAlpha     = 0x10
	flagICC       = 0x20
)

// filler is n bytes of a recognisable pattern.
func filler(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

type chunkInfo struct {
	fourCC  string
	payload []byte
}

// parseChunks splits a RIFF/WEBP file into chunks, checking every size.
func parseChunks(t *testing.T, data []byte) []chunkInfo {
	t.Helper()
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WEBP" {
		t.Fatalf("not a RIFF/WEBP file: % x", data[:min(len(data), 16)])
	}
	if got, want := binary.LittleEndian.Uint32(data[4:8]), uint32(len(data)-8); got != want {
		t.Errorf("RIFF size field = %d, want %d (file length - 8)", got, want)
	}
	var chunks []chunkInfo
	for off := 12; off < len(data); {
		if off+8 > len(data) {
			t.Fatalf("truncated chunk header at %d", off)
		}
		size := int(binary.LittleEndian.Uint32(data[off+4 : off+8]))
		end := off + 8 + size
		if end > len(data) {
			t.Fatalf("chunk %q at %d overruns the file", data[off:off+4], off)
		}
		chunks = append(chunks, chunkInfo{string(data[off : off+4]), data[off+8 : end]})
		if size%2 == 1 {
			if end >= len(data) || data[end] != 0 {
				t.Fatalf("chunk %q at %d: odd size %d without its zero padding byte", data[off:off+4], off, size)
			}
			end++
		}
		off = end
	}
	return chunks
}

func TestStripWebPMetadata(t *testing.T) {
	icc := filler(5, 0x11)   // odd sizes: each needs a padding byte
	vp8 := filler(11, 0x9d)  // stands in for a VP8 bitstream
	alph := filler(3, 0x42)  // ALPH payload
	exif := filler(7, 0x45)  // EXIF payload
	xmp := filler(13, 0x3c)  // XMP payload
	anim := filler(6, 0x00)  // ANIM payload
	anmf1 := filler(21, 0x5) // ANMF payloads
	anmf2 := filler(16, 0x6)

	tests := []struct {
		name  string
		in    []byte
		want  []byte
		flags byte // the VP8X flags the output must carry
	}{
		{
			name: "still image with ICC, EXIF and XMP",
			in: webpFile(
				riffChunk("VP8X", vp8x(flagICC|flagEXIF|flagXMP, 320, 240)),
				riffChunk("ICCP", icc),
				riffChunk("VP8 ", vp8),
				riffChunk("EXIF", exif),
				riffChunk("XMP ", xmp),
			),
			want: webpFile(
				riffChunk("VP8X", vp8x(0, 320, 240)),
				riffChunk("VP8 ", vp8),
			),
			flags: 0,
		},
		{
			name: "alpha kept, metadata removed",
			in: webpFile(
				riffChunk("VP8X", vp8x(flagICC|flagAlpha|flagEXIF|flagXMP, 1, 1)),
				riffChunk("ICCP", icc),
				riffChunk("ALPH", alph),
				riffChunk("VP8 ", vp8),
				riffChunk("EXIF", exif),
				riffChunk("XMP ", xmp),
			),
			want: webpFile(
				riffChunk("VP8X", vp8x(flagAlpha, 1, 1)),
				riffChunk("ALPH", alph),
				riffChunk("VP8 ", vp8),
			),
			flags: flagAlpha,
		},
		{
			name: "EXIF only, as libvips 8.14 writes it",
			in: webpFile(
				riffChunk("VP8X", vp8x(flagEXIF, 100, 75)),
				riffChunk("VP8L", vp8),
				riffChunk("EXIF", exif),
			),
			want: webpFile(
				riffChunk("VP8X", vp8x(0, 100, 75)),
				riffChunk("VP8L", vp8),
			),
		},
		{
			name: "animation keeps its frames",
			in: webpFile(
				riffChunk("VP8X", vp8x(flagAnimation|flagAlpha|flagEXIF|flagXMP, 185, 143)),
				riffChunk("ANIM", anim),
				riffChunk("ANMF", anmf1),
				riffChunk("ANMF", anmf2),
				riffChunk("EXIF", exif),
				riffChunk("XMP ", xmp),
			),
			want: webpFile(
				riffChunk("VP8X", vp8x(flagAnimation|flagAlpha, 185, 143)),
				riffChunk("ANIM", anim),
				riffChunk("ANMF", anmf1),
				riffChunk("ANMF", anmf2),
			),
			flags: flagAnimation | flagAlpha,
		},
		{
			name: "nothing to remove",
			in: webpFile(
				riffChunk("VP8X", vp8x(flagAlpha, 16000, 16000)),
				riffChunk("ALPH", alph),
				riffChunk("VP8 ", vp8),
			),
			want: webpFile(
				riffChunk("VP8X", vp8x(flagAlpha, 16000, 16000)),
				riffChunk("ALPH", alph),
				riffChunk("VP8 ", vp8),
			),
			flags: flagAlpha,
		},
		{
			name: "unknown chunks kept, reserved flag bits kept",
			in: webpFile(
				riffChunk("VP8X", vp8x(0xc1|flagICC, 8, 8)),
				riffChunk("ICCP", icc),
				riffChunk("VP8 ", vp8),
				riffChunk("ZZZZ", filler(1, 1)),
			),
			want: webpFile(
				riffChunk("VP8X", vp8x(0xc1, 8, 8)),
				riffChunk("VP8 ", vp8),
				riffChunk("ZZZZ", filler(1, 1)),
			),
			flags: 0xc1,
		},
		{
			name: "empty metadata chunks",
			in: webpFile(
				riffChunk("VP8X", vp8x(flagEXIF|flagXMP, 2, 2)),
				riffChunk("VP8 ", vp8),
				riffChunk("EXIF", nil),
				riffChunk("XMP ", nil),
			),
			want: webpFile(
				riffChunk("VP8X", vp8x(0, 2, 2)),
				riffChunk("VP8 ", vp8),
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := bytes.Clone(tt.in)
			got := stripWebPMetadata(in)
			if !bytes.Equal(in, tt.in) {
				t.Error("the input was modified")
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("stripWebPMetadata:\n got % x\nwant % x", got, tt.want)
			}
			chunks := parseChunks(t, got)
			if len(chunks) == 0 || chunks[0].fourCC != "VP8X" {
				t.Fatalf("output does not start with VP8X: %v", chunks)
			}
			if f := chunks[0].payload[0]; f != tt.flags {
				t.Errorf("VP8X flags = %#02x, want %#02x", f, tt.flags)
			}
			if !bytes.Equal(chunks[0].payload[1:], tt.in[21:30]) {
				t.Errorf("VP8X canvas and reserved bytes changed: % x, want % x", chunks[0].payload[1:], tt.in[21:30])
			}
			inChunks := parseChunks(t, tt.in)
			var kept []chunkInfo
			for _, c := range inChunks {
				switch c.fourCC {
				case "EXIF", "XMP ", "ICCP":
				default:
					kept = append(kept, c)
				}
			}
			if len(kept) != len(chunks) {
				t.Fatalf("output chunks %d, want %d", len(chunks), len(kept))
			}
			for i, c := range chunks {
				if c.fourCC != kept[i].fourCC {
					t.Errorf("chunk %d is %q, want %q", i, c.fourCC, kept[i].fourCC)
				}
				if i > 0 && !bytes.Equal(c.payload, kept[i].payload) {
					t.Errorf("chunk %d %q payload changed", i, c.fourCC)
				}
			}
		})
	}
}

func TestStripWebPMetadataPayloadIdentical(t *testing.T) {
	vp8 := filler(4097, 0x9d) // odd, larger than a byte of length
	in := webpFile(
		riffChunk("VP8X", vp8x(flagICC|flagEXIF|flagXMP, 640, 480)),
		riffChunk("ICCP", filler(3145, 1)),
		riffChunk("VP8 ", vp8),
		riffChunk("EXIF", filler(999, 2)),
		riffChunk("XMP ", filler(1001, 3)),
	)
	got := stripWebPMetadata(in)
	if want := 12 + (8 + 10) + (8 + 4097 + 1); len(got) != want {
		t.Fatalf("output is %d bytes, want %d", len(got), want)
	}
	if size := binary.LittleEndian.Uint32(got[4:8]); size != uint32(len(got)-8) {
		t.Errorf("RIFF size = %d, want %d", size, len(got)-8)
	}
	i := bytes.Index(got, []byte("VP8 "))
	if i < 0 {
		t.Fatal("no VP8 chunk in the output")
	}
	if size := binary.LittleEndian.Uint32(got[i+4 : i+8]); size != 4097 {
		t.Errorf("VP8 chunk size = %d, want 4097", size)
	}
	if !bytes.Equal(got[i+8:i+8+4097], vp8) {
		t.Error("VP8 payload differs from the input's")
	}
	for _, fourCC := range []string{"ICCP", "EXIF", "XMP "} {
		if bytes.Contains(got, []byte(fourCC)) {
			t.Errorf("output still contains %q", fourCC)
		}
	}
}

func TestStripWebPMetadataUnchanged(t *testing.T) {
	vp8 := filler(11, 0x9d)
	full := webpFile(
		riffChunk("VP8X", vp8x(flagEXIF, 4, 4)),
		riffChunk("VP8 ", vp8),
		riffChunk("EXIF", filler(7, 0x45)),
	)
	badSize := bytes.Clone(full)
	binary.LittleEndian.PutUint32(badSize[12+18+4:], 1<<20) // VP8 chunk claims 1 MiB
	hugeSize := bytes.Clone(full)
	binary.LittleEndian.PutUint32(hugeSize[12+18+4:], 0xffffffff)
	riffx := bytes.Clone(full)
	copy(riffx, "RIFX")
	notWebP := bytes.Clone(full)
	copy(notWebP[8:], "WAVE")

	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"RIFF only", []byte("RIFF")},
		{"header only", []byte("RIFF\x04\x00\x00\x00WEBP")},
		{"header and FourCC", []byte("RIFF\x08\x00\x00\x00WEBPVP8X")},
		{"simple lossy", webpFile(riffChunk("VP8 ", vp8))},
		{"simple lossless", webpFile(riffChunk("VP8L", vp8))},
		{"EXIF without VP8X", webpFile(riffChunk("VP8 ", vp8), riffChunk("EXIF", filler(7, 1)))},
		{"RIFX", riffx},
		{"not WEBP", notWebP},
		{"PNG", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00")},
		{"JPEG", []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9")},
		{"chunk overruns", badSize},
		{"chunk size 4 GiB", hugeSize},
		{"truncated payload", full[:len(full)-3]},
		{"missing final padding byte", full[:len(full)-1]},
		{"truncated chunk header", full[:12+18+4]},
		{"trailing partial header", append(bytes.Clone(full), 'J', 'U', 'N', 'K')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := bytes.Clone(tt.in)
			got := stripWebPMetadata(in)
			if !bytes.Equal(got, tt.in) {
				t.Errorf("stripWebPMetadata changed malformed input:\n got % x\nwant % x", got, tt.in)
			}
			if !bytes.Equal(in, tt.in) {
				t.Error("the input was modified")
			}
		})
	}
}

// TestStripWebPMetadataShortVP8X covers a VP8X chunk too short to hold its
// flags byte.
func TestStripWebPMetadataShortVP8X(t *testing.T) {
	for _, in := range [][]byte{
		webpFile(riffChunk("VP8X", nil)),
		webpFile(riffChunk("VP8X", nil), riffChunk("VP8 ", filler(11, 1)), riffChunk("XMP ", filler(2, 2))),
	} {
		got := stripWebPMetadata(bytes.Clone(in))
		if !bytes.Equal(got, in) {
			t.Errorf("stripWebPMetadata changed a file with a short VP8X:\n got % x\nwant % x", got, in)
		}
	}
}
