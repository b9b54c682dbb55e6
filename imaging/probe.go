package imaging

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"

	"github.com/davidbyttow/govips/v2/vips"
	"golang.org/x/net/html/charset"

	"github.com/prism-image/prism"
)

// Header is what an image's header says, read without decoding pixels.
type Header struct {
	Format        Format
	Width, Height int // upright (EXIF orientation applied), one frame
	Frames        int
	Orientation   int // EXIF orientation, 1 when absent
	HasAlpha      bool
	ColorSpace    string // libvips interpretation: srgb, cmyk, b-w, rgb16…
}

// sourceFormats maps the loaders Prism accepts; everything else libvips or
// ImageMagick could open (PDF, PSD…) is refused as not an image.
var sourceFormats = map[vips.ImageType]Format{
	vips.ImageTypeJPEG: JPEG,
	vips.ImageTypePNG:  PNG,
	vips.ImageTypeWEBP: WebP,
	vips.ImageTypeAVIF: AVIF,
	vips.ImageTypeGIF:  GIF,
	vips.ImageTypeTIFF: TIFF,
	vips.ImageTypeJP2K: JP2K,
	vips.ImageTypeHEIF: HEIC,
	vips.ImageTypeBMP:  BMP,
	vips.ImageTypeSVG:  SVG,
}

// Sniff returns the format of src from its leading bytes, or "" when Prism
// does not accept it.
func Sniff(src []byte) Format {
	// A bare JPEG 2000 codestream has no JP2 box for govips to see.
	if bytes.HasPrefix(src, []byte{0xff, 0x4f, 0xff, 0x51}) {
		return JP2K
	}
	return sourceFormats[vips.DetermineImageType(src)]
}

// SniffHeadBytes is how much of a file SniffHead needs.
const SniffHeadBytes = 4096

// SniffHead returns the format of a file from its first SniffHeadBytes
// bytes alone, or "" when Prism does not read it: what an original is,
// whatever its key says, without reading all of it. An SVG is known by its
// first element, which must be <svg> within the head.
func SniffHead(head []byte) Format {
	head = head[:min(len(head), SniffHeadBytes)]
	if f := Sniff(head); f != "" {
		return f
	}
	if !bytes.Contains(head, []byte("<svg")) {
		return ""
	}
	// The whole document is not at hand: read tokens up to the first
	// element rather than decoding it.
	d := xml.NewDecoder(bytes.NewReader(head))
	d.Strict = false
	d.CharsetReader = charset.NewReaderLabel
	for {
		at := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			// The head may end inside the first element's tag.
			if rest := bytes.TrimLeft(head[at:], " \t\r\n"); errors.Is(err, io.ErrUnexpectedEOF) || len(rest) > 0 {
				if name, ok := bytes.CutPrefix(rest, []byte("<svg")); ok && (len(name) == 0 || bytes.ContainsAny(name[:1], " \t\r\n/>")) {
					return SVG
				}
			}
			return ""
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == "svg" {
				return SVG
			}
			return ""
		case xml.CharData:
			if len(bytes.TrimSpace(tok)) > 0 {
				return "" // text before any element: no XML document
			}
		}
	}
}

// Probe reads src's header. A source that is not an image, or whose header
// is broken, is a 415 *prism.Error.
func Probe(src []byte) (Header, error) {
	f := Sniff(src)
	if f == "" {
		return Header{}, prism.Fail(prism.CodeUndecodable, "source is not an image in a supported format")
	}
	params := vips.NewImportParams()
	params.Access.Set(vips.AccessSequential) // lazy: header only
	img, err := decode(src, f, params)
	if err != nil {
		return Header{}, undecodable(err)
	}
	defer img.Close()

	h := Header{
		Format:      f,
		Width:       img.Width(),
		Height:      img.Height(),
		Frames:      1,
		Orientation: img.Orientation(),
		HasAlpha:    img.HasAlpha(),
		ColorSpace:  interpretationName(img.Interpretation()),
	}
	// Only GIF and WebP pages are animation frames; a HEIF's or TIFF's
	// other pages are other pictures (thumbnails, depth maps, scans).
	if f.animates() {
		h.Frames = max(1, img.Pages())
	}
	if h.Orientation < 1 || h.Orientation > 8 {
		h.Orientation = 1
	}
	if h.Orientation >= 5 {
		h.Width, h.Height = h.Height, h.Width
	}
	if h.Width < 1 || h.Height < 1 {
		return Header{}, prism.Fail(prism.CodeUndecodable, "source has no pixels")
	}
	return h, nil
}

// decode opens src with libvips, lazily where the loader allows. JPEG and
// PNG load from the buffer, where govips passes fail on to libvips as
// failing on any warning: a JPEG whose header claims far more pixels than
// its data holds fails rather than decoding to grey. Other formats stream
// from a reader, where libvips fails on truncated data (govips' buffer
// loaders would not fail at all); BMP goes through ImageMagick, which
// libvips 8.14 feeds from a buffer only.
func decode(src []byte, f Format, params *vips.ImportParams) (*vips.ImageRef, error) {
	switch f {
	case JPEG, PNG, BMP:
		return vips.LoadImageFromBuffer(src, params)
	}
	return vips.LoadImageFromReader(bytes.NewReader(src), params)
}

func interpretationName(i vips.Interpretation) string {
	switch i {
	case vips.InterpretationSRGB:
		return "srgb"
	case vips.InterpretationCMYK:
		return "cmyk"
	case vips.InterpretationBW:
		return "b-w"
	case vips.InterpretationGrey16:
		return "grey16"
	case vips.InterpretationRGB16:
		return "rgb16"
	case vips.InterpretationRGB:
		return "rgb"
	case vips.InterpretationScRGB:
		return "scrgb"
	case vips.InterpretationLAB:
		return "lab"
	}
	return "other"
}
