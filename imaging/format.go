package imaging

import (
	"slices"
	"strings"
)

// Format is an image file format, as a source or as an output.
type Format string

// Output formats (browsers show these), and FormatAuto, which picks one of
// them from what the client accepts.
const (
	JPEG       Format = "jpeg"
	PNG        Format = "png"
	WebP       Format = "webp"
	AVIF       Format = "avif"
	GIF        Format = "gif"
	FormatAuto Format = "auto"
)

// Source-only formats: decoded, but converted on output.
const (
	TIFF Format = "tiff"
	JP2K Format = "jp2"
	HEIC Format = "heic"
	BMP  Format = "bmp"
	SVG  Format = "svg"
)

// ContentType is the MIME type of an encoded image of format f.
func (f Format) ContentType() string {
	switch f {
	case JPEG, PNG, WebP, AVIF, GIF, TIFF, BMP, HEIC:
		return "image/" + string(f)
	case JP2K:
		return "image/jp2"
	case SVG:
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// OutputFormats are the formats Prism encodes.
var OutputFormats = []Format{JPEG, PNG, WebP, AVIF, GIF}

// IsOutput reports whether Prism encodes f.
func (f Format) IsOutput() bool { return slices.Contains(OutputFormats, f) }

// animates reports whether f can carry several frames on output.
func (f Format) animates() bool { return f == GIF || f == WebP }

// supportsAlpha reports whether f keeps transparency on output.
func (f Format) supportsAlpha() bool { return f != JPEG }

// keepsGrey says f stores a grey image in one band (two with alpha) rather
// than three; libvips turns grey to RGB itself for the others.
func (f Format) keepsGrey() bool { return f == PNG || f == JPEG }

// Accepts says which negotiable formats a client takes (from its Accept
// header); FormatAuto picks AVIF, then WebP, then the source's own.
type Accepts struct{ AVIF, WebP bool }

// Token names a for cache identities: clients with the same Token get the
// same format=auto outcome for every source.
func (a Accepts) Token() string {
	switch {
	case a.AVIF && a.WebP:
		return "avif+webp"
	case a.AVIF:
		return "avif"
	case a.WebP:
		return "webp"
	}
	return "none"
}

// ParseAccept reads an HTTP Accept header value. A type listed with q=0 is
// refused; wildcards do not count, since browsers send */* for everything.
func ParseAccept(header string) Accepts {
	var a Accepts
	for _, part := range strings.Split(header, ",") {
		fields := strings.Split(part, ";")
		mt := strings.ToLower(strings.TrimSpace(fields[0]))
		refused := false
		for _, f := range fields[1:] {
			f = strings.ReplaceAll(strings.TrimSpace(f), " ", "")
			if strings.HasPrefix(f, "q=") && strings.Trim(strings.TrimPrefix(f, "q="), "0.") == "" {
				refused = true
			}
		}
		switch mt {
		case "image/avif":
			a.AVIF = !refused
		case "image/webp":
			a.WebP = !refused
		}
	}
	return a
}

// outputFormat decides what a transform of a source in format src encodes
// to: an explicit request wins; auto negotiates; otherwise the source's own
// web format, with non-web sources becoming JPEG, or PNG when they carry
// alpha, and SVG always rasterising to PNG.
func outputFormat(requested Format, accepts Accepts, src Format, hasAlpha, animated bool) Format {
	switch requested {
	case "":
	case FormatAuto:
		switch {
		case animated && accepts.WebP: // AVIF output here is single-frame
			return WebP
		case animated:
			return fallbackFormat(src, hasAlpha)
		case accepts.AVIF:
			return AVIF
		case accepts.WebP:
			return WebP
		}
	default:
		return requested
	}
	return fallbackFormat(src, hasAlpha)
}

func fallbackFormat(src Format, hasAlpha bool) Format {
	switch {
	case src.IsOutput():
		return src
	case src == SVG || hasAlpha:
		return PNG
	default:
		return JPEG
	}
}

// uploadable are the formats an upload may have, in the order messages
// list them. Other sources Prism reads (JPEG 2000, BMP) are served when
// they reach storage another way, but not taken in.
var uploadable = []Format{JPEG, PNG, WebP, AVIF, HEIC, GIF, TIFF, SVG}

// Uploadable reports whether an upload may be in format f.
func (f Format) Uploadable() bool { return slices.Contains(uploadable, f) }

// UploadableNames lists the uploadable formats for people: "JPEG, PNG, …
// or SVG".
func UploadableNames() string {
	names := make([]string, len(uploadable))
	for i, f := range uploadable {
		names[i] = f.name()
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func (f Format) name() string {
	if f == WebP {
		return "WebP"
	}
	return strings.ToUpper(string(f))
}

// Extension is the file name extension of format f, without the dot.
func (f Format) Extension() string {
	if f == JPEG {
		return "jpg"
	}
	return string(f)
}
