package testutil

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"
)

// Hostile inputs: tiny files that cost a careless image server dearly.
// Tests make them here rather than keep them in testdata, so that what
// each one is stays in plain sight.

// TinyPNG is a 1×1 opaque PNG (69 bytes): letterboxed to a huge box, it
// asks for a huge output from nothing.
func TinyPNG(t testing.TB) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.NRGBA{200, 30, 30, 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TinyFramesGIF is an animated GIF of frames 1×1 frames (about 3 KB for
// 100): letterboxed, every frame is padded to the box.
func TinyFramesGIF(t testing.TB, frames int) []byte {
	t.Helper()
	palette := color.Palette{color.Black, color.White}
	g := &gif.GIF{}
	for i := range frames {
		img := image.NewPaletted(image.Rect(0, 0, 1, 1), palette)
		img.SetColorIndex(0, 0, uint8(i%2))
		g.Image = append(g.Image, img)
		g.Delay = append(g.Delay, 10)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, g); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// BombGIF is a side×side GIF of one colour: LZW squeezes its pixels into a
// few tens of kilobytes, and a decoder must hold them all.
func BombGIF(t testing.TB, side int) []byte {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.NRGBA{20, 120, 200, 255}, color.White})
	var buf bytes.Buffer
	if err := gif.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// BlurSVG is an SVG that declares side×side pixels and blurs all of them
// shapes times over (a few hundred bytes, 60 bytes more a shape): librsvg
// works every blur out over the whole image, for every tile it draws, in
// one call that nothing interrupts.
func BlurSVG(side, shapes int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%[1]d" height="%[1]d">`+
		`<defs><filter id="b"><feGaussianBlur stdDeviation="%[2]d"/></filter></defs>`, side, max(1, side/100))
	for i := range shapes {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#%06x" filter="url(#b)"/>`,
			i*side/(2*shapes), i*side/(2*shapes), side-i*side/shapes, side-i*side/shapes, (i*0x3f1f7)&0xffffff)
	}
	b.WriteString(`</svg>`)
	return []byte(b.String())
}

// PolyglotSVG is 96 bytes that are both a valid SVG and valid JavaScript:
// served as script from the image origin (a key ending .js), it would run
// there.
func PolyglotSVG() []byte {
	return []byte("<!--\nalert(document.domain)\n-->\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>\n")
}

// LyingJPEG is a JPEG (about 600 bytes) whose header claims side×side
// pixels while its data holds 16×16: a lenient decoder makes a grey image
// of the claimed size out of it.
func LyingJPEG(t testing.TB, side int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	for i := 0; i+9 < len(b); i++ {
		if b[i] == 0xff && b[i+1] == 0xc0 { // the baseline frame header: height, then width
			b[i+5], b[i+6], b[i+7], b[i+8] = byte(side>>8), byte(side), byte(side>>8), byte(side)
			return b
		}
	}
	t.Fatal("no SOF0 marker in Go's JPEG")
	return nil
}
