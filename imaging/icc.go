package imaging

import (
	"encoding/binary"
	"math"
)

// isSRGB reports whether an ICC profile describes sRGB: an RGB matrix/TRC
// profile with sRGB's primaries and tone curves, whatever its name (the
// profile most cameras and editors embed). Converting through such a
// profile to sRGB changes no pixel by more than rounding, and costs a
// colour transform per image; libvips' thumbnail path skips it too. A
// profile with lookup tables (A2B0, A2B1) is never taken for sRGB: colour
// management would use its tables, not its matrix.
func isSRGB(icc []byte) bool {
	if len(icc) < 132 || string(icc[16:20]) != "RGB " || string(icc[20:24]) != "XYZ " {
		return false
	}
	tags := map[string][]byte{}
	n := int(binary.BigEndian.Uint32(icc[128:]))
	for i := range min(n, 100) {
		e := icc[132+12*i:]
		if len(e) < 12 {
			return false
		}
		off, size := int(binary.BigEndian.Uint32(e[4:])), int(binary.BigEndian.Uint32(e[8:]))
		if off < 0 || size < 0 || off+size > len(icc) || off+size < off {
			return false
		}
		tags[string(e[:4])] = icc[off : off+size]
	}
	if tags["A2B0"] != nil || tags["A2B1"] != nil {
		return false
	}
	// sRGB's colorants, adapted to the profile connection space's D50.
	for sig, want := range map[string][3]float64{
		"rXYZ": {0.4361, 0.2225, 0.0139},
		"gXYZ": {0.3851, 0.7169, 0.0971},
		"bXYZ": {0.1431, 0.0606, 0.7141},
	} {
		t := tags[sig]
		if len(t) < 20 || string(t[:4]) != "XYZ " {
			return false
		}
		for i, w := range want {
			if math.Abs(s15Fixed16(t[8+4*i:])-w) > 0.002 {
				return false
			}
		}
	}
	for _, sig := range []string{"rTRC", "gTRC", "bTRC"} {
		for _, x := range []float64{0.04, 0.1, 0.5, 0.9} {
			y, ok := toneCurve(tags[sig], x)
			if !ok || math.Abs(y-srgbCurve(x)) > 0.002 {
				return false
			}
		}
	}
	return true
}

// srgbCurve is sRGB's tone curve: encoded value to linear light.
func srgbCurve(x float64) float64 {
	if x <= 0.04045 {
		return x / 12.92
	}
	return math.Pow((x+0.055)/1.055, 2.4)
}

// toneCurve evaluates an ICC curveType or parametricCurveType at x.
func toneCurve(t []byte, x float64) (float64, bool) {
	if len(t) < 12 {
		return 0, false
	}
	switch string(t[:4]) {
	case "curv":
		n := int(binary.BigEndian.Uint32(t[8:]))
		if len(t) < 12+2*n {
			return 0, false
		}
		switch n {
		case 0:
			return x, true
		case 1:
			return math.Pow(x, float64(binary.BigEndian.Uint16(t[12:]))/256), true
		}
		at := func(i int) float64 { return float64(binary.BigEndian.Uint16(t[12+2*i:])) / 65535 }
		p := x * float64(n-1)
		i := min(int(p), n-2)
		return at(i) + (at(i+1)-at(i))*(p-float64(i)), true
	case "para":
		kind := binary.BigEndian.Uint16(t[8:])
		counts := []int{1, 3, 4, 5, 7}
		if int(kind) >= len(counts) || len(t) < 12+4*counts[kind] {
			return 0, false
		}
		var p [7]float64
		for i := range counts[kind] {
			p[i] = s15Fixed16(t[12+4*i:])
		}
		g, a, b, c, d, e, f := p[0], p[1], p[2], p[3], p[4], p[5], p[6]
		switch kind {
		case 0:
			return math.Pow(x, g), true
		case 1:
			if x >= -b/a {
				return math.Pow(a*x+b, g), true
			}
			return 0, true
		case 2:
			if x >= -b/a {
				return math.Pow(a*x+b, g) + c, true
			}
			return c, true
		case 3:
			if x >= d {
				return math.Pow(a*x+b, g), true
			}
			return c * x, true
		default:
			if x >= d {
				return math.Pow(a*x+b, g) + e, true
			}
			return c*x + f, true
		}
	}
	return 0, false
}

func s15Fixed16(b []byte) float64 { return float64(int32(binary.BigEndian.Uint32(b))) / 65536 }
