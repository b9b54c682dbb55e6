package harness

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/prism-image/prism/imaging"
)

// Transform is what one uncached scenario asks of one source, at a new
// width or quality every time, so that every request is a miss.
type Transform struct {
	Name    string         // the report's row, without its letter
	Source  string         // a file in testdata/images
	Format  imaging.Format // the output's format
	Quality int            // the first quality asked (PNG has none: it only makes URLs new)
	Clients int            // concurrent clients, unless -uncached-clients says
}

// Transforms are the uncached scenarios: the 17.6 MP photo to JPEG, a 6 MP
// photo to each lossy web format, and a grey PNG to PNG, each with twice as
// many clients as the development machine's cores, as many as the
// server's default workers.
var Transforms = []Transform{
	{"17.6 MP JPEG → JPEG q80", PhotoName, imaging.JPEG, 80, 4},
	{"6 MP JPEG → JPEG q80", "2569067123_aca715a2ee_o.jpg", imaging.JPEG, 80, 4},
	{"6 MP JPEG → WebP q80", "2569067123_aca715a2ee_o.jpg", imaging.WebP, 80, 4},
	{"6 MP JPEG → AVIF q60", "2569067123_aca715a2ee_o.jpg", imaging.AVIF, 60, 4},
	{"5.8 MP grey PNG → PNG", "50020484-00001.png", imaging.PNG, 80, 4},
}

// key is where the server finds the source.
func (t Transform) key() string { return "bench/" + t.Source }

// variant is the n-th distinct variant's width and quality.
func (t Transform) variant(n int64) (width, quality int) {
	width, step := DistinctVariant(n)
	return width, t.Quality + step
}

// query is Prism's query for the variant: the format is named unless it is
// the source's own (as a page asks ?w=400 of a JPEG).
func (t Transform) query(width, quality int) string {
	q := url.Values{"w": {strconv.Itoa(width)}, "quality": {strconv.Itoa(quality)}}
	if t.sourceFormat() != t.Format {
		q.Set("fm", string(t.Format))
	}
	return q.Encode()
}

func (t Transform) sourceFormat() imaging.Format {
	switch ext := t.Source[len(t.Source)-4:]; ext {
	case ".png":
		return imaging.PNG
	case ".jpg", "jpeg":
		return imaging.JPEG
	default:
		panic(fmt.Sprintf("harness: no format for %s", t.Source))
	}
}

// DistinctVariant is the n-th uncached variant: a width from 300 to 700 but
// 400 (w=400 is the cached-hit variant), and a step to add to the quality,
// 0, +1, -1, +2, -2… each time the widths wrap, so that the first 16,400
// are distinct. The widths are walked with a stride coprime to their
// count, so that any run of a few dozen variants spans them all: the
// limit, which walks the sequence afresh at each goroutine count, and the
// server, which walks further, then ask for outputs of the same sizes on
// average.
func DistinctVariant(n int64) (width, qualityStep int) {
	const widths, stride = 400, 157
	width = 300 + int(n*stride%widths)
	if width >= 400 {
		width++
	}
	k := int((n / widths) % 41)
	if k%2 == 1 {
		return width, (k + 1) / 2
	}
	return width, -k / 2
}
