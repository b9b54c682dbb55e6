package imaging

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/prism-image/prism/internal/testutil"
)

func TestIsSRGB(t *testing.T) {
	embedded := func(name string) []byte {
		img, err := vips.LoadImageFromBuffer(testutil.ReadTestImage(t, name), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		icc := img.GetICCProfile()
		if len(icc) == 0 {
			t.Fatalf("%s has no ICC profile", name)
		}
		return icc
	}
	srgb, err := os.ReadFile(srgbProfile)
	if err != nil {
		t.Fatal(err)
	}
	// sRGB with its red primary moved: no longer sRGB.
	moved := append([]byte(nil), srgb...)
	for i := range int(binary.BigEndian.Uint32(moved[128:])) {
		e := moved[132+12*i:]
		if string(e[:4]) == "rXYZ" {
			off := binary.BigEndian.Uint32(e[4:])
			binary.BigEndian.PutUint32(moved[off+8:], 29491) // x = 0.45 in s15Fixed16
		}
	}
	for _, c := range []struct {
		name string
		icc  []byte
		want bool
	}{
		{"libvips' sRGB", srgb, true},
		{"the photo's (HP sRGB)", embedded("pexels-magda-ehlers-5141x3434.jpg"), true},
		{"Display P3", embedded("p3.png"), false},
		{"ProPhoto", embedded("prophoto.png"), false},
		{"CMYK", embedded("Channel_digital_image_CMYK_color.jpg"), false},
		{"sRGB with another red", moved, false},
		{"truncated sRGB", srgb[:200], false},
		{"empty", nil, false},
	} {
		if got := isSRGB(c.icc); got != c.want {
			t.Errorf("%s: isSRGB = %v, want %v", c.name, got, c.want)
		}
	}
}
