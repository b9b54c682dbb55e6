package prism

import (
	"net/url"
	"strings"
)

// TransformParams are the URL query parameters Prism acts on: Tachyon's
// and Photon's, with the imgix, Cloudflare and Next.js aliases. Every other
// parameter but s (SignatureParam) is ignored and is no part of a
// variant's identity. The CDN's viewer-request function keeps exactly
// these and s.
var TransformParams = []string{
	"w", "h", "fit", "resize", "lb", "crop", "crop_strategy", "gravity", "zoom", "dpr",
	"quality", "q", "format", "fm", "auto", "webp", "background", "bg",
	"trim", "trim_threshold", "ulb", "rot", "rotate", "flip", "fp-x", "fp-y",
	"filter", "brightness", "contrast", "colorize", "smooth", "blur", "sharp", "sharpen", "strip",
	"mark", "mark-w", "mark-align", "mark-pad", "mark-alpha",
}

// SignatureParam carries a signed URL's signature.
const SignatureParam = "s"

// ParseQuery is url.ParseQuery, except that a % not followed by two hex
// digits stands for itself: Photon's w=50% as browsers send it.
func ParseQuery(raw string) (url.Values, error) {
	if strings.Contains(raw, "%") {
		var b strings.Builder
		for i := 0; i < len(raw); i++ {
			b.WriteByte(raw[i])
			if raw[i] == '%' && (i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2])) {
				b.WriteString("25")
			}
		}
		raw = b.String()
	}
	return url.ParseQuery(raw)
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
