package testutil

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"
)

// Raster is a decoded image's 8-bit pixels, every frame, for measuring
// what a transform did: band values, means, spread and sharpness.
type Raster struct {
	Width, Height, Bands, Frames int // Height is one frame's
	Pix                          []byte
}

// Raster reads d's pixels. Every output Prism writes is 8-bit.
func (d Decoded) Raster(t testing.TB) Raster {
	t.Helper()
	if f := d.Image.BandFormat(); f != vips.BandFormatUchar {
		t.Fatalf("pixels are %v, not 8-bit", f)
	}
	pix, err := d.Image.ToBytes()
	if err != nil {
		t.Fatalf("reading pixels: %v", err)
	}
	r := Raster{Width: d.Width, Height: d.Height, Bands: d.Bands, Frames: d.Frames, Pix: pix}
	if len(pix) != r.Width*r.Height*r.Frames*r.Bands {
		t.Fatalf("%d bytes of pixels for %dx%d×%d with %d bands", len(pix), r.Width, r.Height, r.Frames, r.Bands)
	}
	return r
}

// At is the value of band b at (x, y) of frame f.
func (r Raster) At(f, x, y, b int) float64 {
	return float64(r.Pix[((f*r.Height+y)*r.Width+x)*r.Bands+b])
}

// RGB is the colour at (x, y) of frame f, a grey pixel's value three times.
func (r Raster) RGB(f, x, y int) [3]float64 {
	if r.Bands < 3 {
		v := r.At(f, x, y, 0)
		return [3]float64{v, v, v}
	}
	return [3]float64{r.At(f, x, y, 0), r.At(f, x, y, 1), r.At(f, x, y, 2)}
}

// Mean is the mean of band b over frame f.
func (r Raster) Mean(f, b int) float64 {
	var sum float64
	for y := range r.Height {
		for x := range r.Width {
			sum += r.At(f, x, y, b)
		}
	}
	return sum / float64(r.Width*r.Height)
}

// Std is the standard deviation of band b over frame f.
func (r Raster) Std(f, b int) float64 {
	m := r.Mean(f, b)
	var sum float64
	for y := range r.Height {
		for x := range r.Width {
			d := r.At(f, x, y, b) - m
			sum += d * d
		}
	}
	return math.Sqrt(sum / float64(r.Width*r.Height))
}

// Sharpness is the variance of the 4-neighbour Laplacian of the first
// colour band over frame f: its high-frequency energy, which blurring
// lowers and sharpening raises.
func (r Raster) Sharpness(f int) float64 {
	var sum, sq float64
	n := 0
	for y := 1; y < r.Height-1; y++ {
		for x := 1; x < r.Width-1; x++ {
			l := r.At(f, x-1, y, 0) + r.At(f, x+1, y, 0) + r.At(f, x, y-1, 0) + r.At(f, x, y+1, 0) - 4*r.At(f, x, y, 0)
			sum += l
			sq += l * l
			n++
		}
	}
	m := sum / float64(n)
	return sq/float64(n) - m*m
}

// DrawPNG encodes a w×h image whose pixel (x, y) is at(x, y), with Go's
// own encoder, so that every pixel's value is known exactly.
func DrawPNG(t testing.TB, w, h int, at func(x, y int) color.NRGBA) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, at(x, y))
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Uniform is a DrawPNG pattern of one colour.
func Uniform(c color.NRGBA) func(x, y int) color.NRGBA {
	return func(int, int) color.NRGBA { return c }
}
