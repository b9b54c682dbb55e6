package prism

// TransformParams are the URL query parameters Prism acts on (Tachyon and
// Photon's, with the imgix-style aliases), plus s, the URL signature. Every
// other parameter is ignored and is no part of a variant's identity. The
// CDN's viewer-request function keeps exactly these.
var TransformParams = []string{
	"w", "h", "fit", "resize", "lb", "crop", "crop_strategy", "gravity", "zoom", "dpr",
	"quality", "q", "format", "fm", "auto", "webp", "background", "bg",
}

// SignatureParam carries a signed URL's signature.
const SignatureParam = "s"
