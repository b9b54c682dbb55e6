package imaging

import (
	"bytes"
	"testing"

	"github.com/prism-image/prism/internal/testutil"
)

func TestParseAccept(t *testing.T) {
	tests := []struct {
		name, header string
		want         Accepts
	}{
		{"Chrome", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", Accepts{AVIF: true, WebP: true}},
		{"Chrome document", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7", Accepts{AVIF: true, WebP: true}},
		{"Edge", "image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", Accepts{WebP: true}},
		{"Firefox", "image/avif,image/webp,*/*", Accepts{AVIF: true, WebP: true}},
		{"Firefox 128", "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5", Accepts{AVIF: true, WebP: true}},
		{"Firefox 65", "image/webp,*/*", Accepts{WebP: true}},
		{"Firefox 47", "image/png,image/*;q=0.8,*/*;q=0.5", Accepts{}},
		{"Safari 17", "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5", Accepts{AVIF: true, WebP: true}},
		{"Safari 14", "image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", Accepts{}},
		{"legacy Edge with spaces", "image/png, image/svg+xml, image/*; q=0.8, */*; q=0.5", Accepts{}},
		{"curl", "*/*", Accepts{}},
		{"empty", "", Accepts{}},
		{"image wildcard", "image/*", Accepts{}},
		{"avif refused", "image/avif;q=0,image/webp,*/*", Accepts{WebP: true}},
		{"avif refused alone", "image/avif;q=0", Accepts{}},
		{"webp q=0.0", "image/webp;q=0.0", Accepts{}},
		{"webp q=0.000 spaced", "image/avif, image/webp ; q=0.000", Accepts{AVIF: true}},
		{"webp q = 0", "image/webp;q = 0", Accepts{}},
		{"webp low q still accepted", "image/webp;q=0.001", Accepts{WebP: true}},
		{"webp q=0.5", "image/webp;q=0.5", Accepts{WebP: true}},
		{"webp q=1", "image/webp;q=1", Accepts{WebP: true}},
		{"webp q=1.0", "image/webp;q=1.0", Accepts{WebP: true}},
		{"avif q=0.9", "image/avif;q=0.9,image/webp;q=0.8", Accepts{AVIF: true, WebP: true}},
		{"upper case", "IMAGE/AVIF,Image/WebP", Accepts{AVIF: true, WebP: true}},
		{"padding", "  image/webp  ,  image/avif  ", Accepts{AVIF: true, WebP: true}},
		{"other parameters", "image/avif;level=1,image/webp;foo=bar;q=0.7", Accepts{AVIF: true, WebP: true}},
		{"similar names", "image/webp2,image/avif-sequence,image/x-webp", Accepts{}},
		{"garbage", ";;;,,,=", Accepts{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseAccept(tt.header); got != tt.want {
				t.Errorf("ParseAccept(%q) = %+v, want %+v", tt.header, got, tt.want)
			}
		})
	}
}

func TestAcceptsToken(t *testing.T) {
	tests := []struct {
		a    Accepts
		want string
	}{
		{Accepts{AVIF: true, WebP: true}, "avif+webp"},
		{Accepts{AVIF: true}, "avif"},
		{Accepts{WebP: true}, "webp"},
		{Accepts{}, "none"},
	}
	for _, tt := range tests {
		if got := tt.a.Token(); got != tt.want {
			t.Errorf("%+v.Token() = %q, want %q", tt.a, got, tt.want)
		}
	}
}

// TestAcceptsTokenDecidesAuto checks that Token is a sound cache key for
// format=auto: two Accepts with the same Token must give the same output
// format for every source.
func TestAcceptsTokenDecidesAuto(t *testing.T) {
	all := []Accepts{{}, {WebP: true}, {AVIF: true}, {AVIF: true, WebP: true}}
	for _, a := range all {
		for _, b := range all {
			if a.Token() != b.Token() {
				continue
			}
			for _, src := range []Format{JPEG, PNG, WebP, AVIF, GIF, TIFF, JP2K, HEIC, BMP, SVG} {
				for _, alpha := range []bool{false, true} {
					for _, animated := range []bool{false, src == GIF || src == WebP} {
						fa := outputFormat(FormatAuto, a, src, alpha, animated)
						fb := outputFormat(FormatAuto, b, src, alpha, animated)
						if fa != fb {
							t.Errorf("Token %q: %+v gives %s, %+v gives %s (src %s alpha %v animated %v)",
								a.Token(), a, fa, b, fb, src, alpha, animated)
						}
					}
				}
			}
		}
	}
}

func TestOutputFormat(t *testing.T) {
	all := Accepts{AVIF: true, WebP: true}
	webp := Accepts{WebP: true}
	avif := Accepts{AVIF: true}
	none := Accepts{}
	tests := []struct {
		name      string
		requested Format
		accepts   Accepts
		src       Format
		alpha     bool
		animated  bool
		want      Format
	}{
		// an explicit format wins over everything
		{"explicit png", PNG, all, JPEG, false, false, PNG},
		{"explicit jpeg with alpha", JPEG, all, PNG, true, false, JPEG},
		{"explicit webp", WebP, none, JPEG, false, false, WebP},
		{"explicit avif on animation", AVIF, none, GIF, true, true, AVIF},
		{"explicit gif from tiff", GIF, all, TIFF, false, false, GIF},
		{"explicit jpeg from svg", JPEG, all, SVG, true, false, JPEG},
		{"explicit png on animated webp", PNG, all, WebP, true, true, PNG},

		// no format: the source's own web format, without negotiation
		{"jpeg stays", "", all, JPEG, false, false, JPEG},
		{"png stays", "", all, PNG, true, false, PNG},
		{"png without alpha stays", "", none, PNG, false, false, PNG},
		{"webp stays", "", none, WebP, true, false, WebP},
		{"avif stays", "", none, AVIF, false, false, AVIF},
		{"gif stays", "", all, GIF, true, false, GIF},
		{"animated gif stays", "", all, GIF, true, true, GIF},
		{"animated webp stays", "", none, WebP, true, true, WebP},

		// no format: non-web sources become JPEG, or PNG with alpha
		{"tiff", "", all, TIFF, false, false, JPEG},
		{"tiff alpha", "", all, TIFF, true, false, PNG},
		{"jp2", "", none, JP2K, false, false, JPEG},
		{"jp2 alpha", "", none, JP2K, true, false, PNG},
		{"heic", "", all, HEIC, false, false, JPEG},
		{"heic alpha", "", all, HEIC, true, false, PNG},
		{"bmp", "", none, BMP, false, false, JPEG},
		{"bmp alpha", "", none, BMP, true, false, PNG},
		{"svg", "", none, SVG, false, false, PNG},
		{"svg alpha", "", all, SVG, true, false, PNG},

		// auto: AVIF, then WebP, then the fallback
		{"auto avif", FormatAuto, all, JPEG, false, false, AVIF},
		{"auto avif only", FormatAuto, avif, JPEG, false, false, AVIF},
		{"auto webp", FormatAuto, webp, JPEG, false, false, WebP},
		{"auto none jpeg", FormatAuto, none, JPEG, false, false, JPEG},
		{"auto none png", FormatAuto, none, PNG, true, false, PNG},
		{"auto none webp source", FormatAuto, none, WebP, false, false, WebP},
		{"auto none gif", FormatAuto, none, GIF, false, false, GIF},
		{"auto avif png alpha", FormatAuto, all, PNG, true, false, AVIF},
		{"auto webp png alpha", FormatAuto, webp, PNG, true, false, WebP},
		{"auto none tiff", FormatAuto, none, TIFF, false, false, JPEG},
		{"auto none tiff alpha", FormatAuto, none, TIFF, true, false, PNG},
		{"auto none heic", FormatAuto, none, HEIC, false, false, JPEG},
		{"auto webp heic", FormatAuto, webp, HEIC, false, false, WebP},
		{"auto avif bmp", FormatAuto, all, BMP, false, false, AVIF},
		{"auto none svg", FormatAuto, none, SVG, false, false, PNG},
		{"auto avif svg", FormatAuto, all, SVG, true, false, AVIF},
		{"auto single-frame gif", FormatAuto, all, GIF, true, false, AVIF},

		// auto on animations: WebP keeps the frames, else the source's format
		{"auto animated gif all", FormatAuto, all, GIF, true, true, WebP},
		{"auto animated gif webp", FormatAuto, webp, GIF, true, true, WebP},
		{"auto animated gif avif only", FormatAuto, avif, GIF, true, true, GIF},
		{"auto animated gif none", FormatAuto, none, GIF, true, true, GIF},
		{"auto animated webp none", FormatAuto, none, WebP, true, true, WebP},
		{"auto animated webp avif only", FormatAuto, avif, WebP, true, true, WebP},
		{"auto animated webp all", FormatAuto, all, WebP, true, true, WebP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := outputFormat(tt.requested, tt.accepts, tt.src, tt.alpha, tt.animated)
			if got != tt.want {
				t.Errorf("outputFormat(%q, %+v, %s, alpha=%v, animated=%v) = %s, want %s",
					tt.requested, tt.accepts, tt.src, tt.alpha, tt.animated, got, tt.want)
			}
			if !got.IsOutput() {
				t.Errorf("outputFormat gave %s, which Prism does not encode", got)
			}
		})
	}
}

func TestFormatProperties(t *testing.T) {
	tests := []struct {
		f           Format
		contentType string
		output      bool
	}{
		{JPEG, "image/jpeg", true},
		{PNG, "image/png", true},
		{WebP, "image/webp", true},
		{AVIF, "image/avif", true},
		{GIF, "image/gif", true},
		{TIFF, "image/tiff", false},
		{JP2K, "image/jp2", false},
		{HEIC, "image/heic", false},
		{BMP, "image/bmp", false},
		{SVG, "image/svg+xml", false},
		{FormatAuto, "application/octet-stream", false},
		{"", "application/octet-stream", false},
	}
	for _, tt := range tests {
		if got := tt.f.ContentType(); got != tt.contentType {
			t.Errorf("%q.ContentType() = %q, want %q", tt.f, got, tt.contentType)
		}
		if got := tt.f.IsOutput(); got != tt.output {
			t.Errorf("%q.IsOutput() = %v, want %v", tt.f, got, tt.output)
		}
	}
	for _, f := range []Format{GIF, WebP} {
		if !f.animates() {
			t.Errorf("%s.animates() = false", f)
		}
	}
	for _, f := range []Format{JPEG, PNG, AVIF} {
		if f.animates() {
			t.Errorf("%s.animates() = true", f)
		}
	}
	if JPEG.supportsAlpha() {
		t.Error("JPEG.supportsAlpha() = true")
	}
	for _, f := range []Format{PNG, WebP, AVIF, GIF} {
		if !f.supportsAlpha() {
			t.Errorf("%s.supportsAlpha() = false", f)
		}
	}
}

// SniffHead knows an original from its first bytes alone, whatever its
// name: an SVG by its first element, even when the document goes on.
func TestSniffHead(t *testing.T) {
	longSVG := append([]byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">`),
		bytes.Repeat([]byte(`<rect width="1" height="1"/>`), 200)...)
	tests := []struct {
		name string
		head []byte
		want Format
	}{
		{"jpeg", testutil.ReadTestImage(t, "concert.jpg"), JPEG},
		{"png", testutil.ReadTestImage(t, "with-alpha.png"), PNG},
		{"gif", testutil.ReadTestImage(t, "animated-loop-3.gif"), GIF},
		{"webp", testutil.ReadTestImage(t, "4.webp"), WebP},
		{"svg", testutil.ReadTestImage(t, "check.svg"), SVG},
		{"svg longer than the head", longSVG, SVG},
		{"svg and javascript", testutil.PolyglotSVG(), SVG},
		{"svg in Latin-1", []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\"><title>caf\xe9</title></svg>"), SVG},
		{"svg tag cut by the head", append(append([]byte("<!--"), bytes.Repeat([]byte("x"), SniffHeadBytes-20)...), []byte(`--><svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>`)...), SVG},
		{"html cut by the head", append(append([]byte("<!--"), bytes.Repeat([]byte("x"), SniffHeadBytes-20)...), []byte(`--><svgx><script>`)...), ""},
		{"html holding an svg", []byte("<html><body><svg></svg></body></html>"), ""},
		{"xml", []byte(`<?xml version="1.0"?><feed><svg/></feed>`), ""},
		{"text", []byte("hello <svg"), ""},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		if got := SniffHead(tt.head); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
