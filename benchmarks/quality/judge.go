package quality

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/davidbyttow/govips/v2/vips"
	"golang.org/x/sync/errgroup"
)

// butteraugli is the judge's command, Debian's package of the same name.
const butteraugli = "butteraugli"

// checkButteraugli says how to get the judge when it is not on PATH.
func checkButteraugli() error {
	if _, err := exec.LookPath(butteraugli); err != nil {
		return fmt.Errorf("quality: the judge %q is not on PATH (%w): install it with `apt-get install butteraugli` (Debian/Ubuntu)", butteraugli, err)
	}
	return nil
}

// judge scores candidates against references it computes once per source
// and output size, in a temporary directory removed by close.
type judge struct {
	dir  string
	seq  atomic.Int64 // names the files in dir
	mu   sync.Mutex
	refs map[refKey]func() (string, error)
}

type refKey struct {
	source string
	w, h   int
}

func newJudge() (*judge, error) {
	if err := checkButteraugli(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "prism-quality-")
	if err != nil {
		return nil, fmt.Errorf("quality: temp dir: %w", err)
	}
	return &judge{dir: dir, refs: map[refKey]func() (string, error){}}, nil
}

func (j *judge) close() { os.RemoveAll(j.dir) }

// candidate is one encoded output waiting for its distance.
type candidate struct {
	row  *Row
	data []byte
}

// score fills in the rows' distances, GOMAXPROCS butteraugli runs at a
// time: the timings were taken before, so running in parallel now skews
// nothing.
func (j *judge) score(ctx context.Context, cands []candidate) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, c := range cands {
		g.Go(func() error {
			d, err := j.distance(ctx, c.row.Case.Source, c.data, c.row.Width, c.row.Height)
			if err != nil {
				return fmt.Errorf("quality: judging %s: %w", c.row.label(), err)
			}
			c.row.Distance = d
			return nil
		})
	}
	return g.Wait()
}

// distance is butteraugli's distance between the reference for source at
// w×h and the encoded image data.
func (j *judge) distance(ctx context.Context, source string, data []byte, w, h int) (float64, error) {
	ref, err := j.reference(source, w, h)
	if err != nil {
		return 0, err
	}
	pix, cw, ch, err := decodeRGB(data)
	if err != nil {
		return 0, fmt.Errorf("decoding the candidate: %w", err)
	}
	if cw != w || ch != h {
		return 0, fmt.Errorf("candidate decodes to %dx%d, expected %dx%d", cw, ch, w, h)
	}
	cand := filepath.Join(j.dir, fmt.Sprintf("candidate-%d.png", j.seq.Add(1)))
	if err := writePNG(cand, pix, w, h); err != nil {
		return 0, err
	}
	defer os.Remove(cand)
	return runButteraugli(ctx, ref, cand)
}

// reference is the path of the reference PNG for source at w×h, computed
// on first use; concurrent callers wait for the one computation.
func (j *judge) reference(source string, w, h int) (string, error) {
	k := refKey{source, w, h}
	j.mu.Lock()
	get, ok := j.refs[k]
	if !ok {
		get = sync.OnceValues(func() (string, error) {
			src, err := os.ReadFile(source)
			if err != nil {
				return "", err
			}
			pix, sw, sh, err := decodeRGB(src)
			if err != nil {
				return "", fmt.Errorf("decoding the reference source %s: %w", source, err)
			}
			path := filepath.Join(j.dir, fmt.Sprintf("reference-%d.png", j.seq.Add(1)))
			if err := writePNG(path, lanczos3(pix, sw, sh, w, h), w, h); err != nil {
				return "", err
			}
			return path, nil
		})
		j.refs[k] = get
	}
	j.mu.Unlock()
	return get()
}

// decodeRGB decodes every pixel of data with libvips, with no shrink on
// load, to interleaved 8-bit sRGB in 3 bands: through an embedded ICC
// profile (libvips' CMYK profile for untagged CMYK), or by colourspace
// conversion (grey becomes three equal bands). Alpha is flattened onto
// white, which is what a JPEG output of it would show.
func decodeRGB(data []byte) (pix []byte, w, h int, err error) {
	img, err := vips.LoadImageFromBuffer(data, vips.NewImportParams())
	if err != nil {
		return nil, 0, 0, err
	}
	defer img.Close()
	if img.Orientation() > 1 {
		if err := img.AutoRotate(); err != nil {
			return nil, 0, 0, err
		}
	}
	cmyk := img.Interpretation() == vips.InterpretationCMYK
	if img.HasICCProfile() || cmyk {
		srgb, err := vips.GetSRGBIEC6196621ICCProfilePath()
		if err != nil {
			return nil, 0, 0, err
		}
		fallback := srgb
		if cmyk {
			fallback = "cmyk"
		}
		if err := img.TransformICCProfileWithFallback(srgb, fallback); err != nil {
			return nil, 0, 0, err
		}
	}
	if img.Interpretation() != vips.InterpretationSRGB || img.BandFormat() != vips.BandFormatUchar {
		if err := img.ToColorSpace(vips.InterpretationSRGB); err != nil {
			return nil, 0, 0, err
		}
	}
	if img.HasAlpha() {
		if err := img.Flatten(&vips.Color{R: 255, G: 255, B: 255}); err != nil {
			return nil, 0, 0, err
		}
	}
	if img.BandFormat() != vips.BandFormatUchar {
		if err := img.Cast(vips.BandFormatUchar); err != nil {
			return nil, 0, 0, err
		}
	}
	if img.Bands() != 3 {
		return nil, 0, 0, fmt.Errorf("%d bands after conversion to sRGB, want 3", img.Bands())
	}
	pix, err = img.ToBytes()
	if err != nil {
		return nil, 0, 0, err
	}
	w, h = img.Width(), img.Height()
	if len(pix) != w*h*3 {
		return nil, 0, 0, fmt.Errorf("libvips gave %d bytes for %dx%d RGB", len(pix), w, h)
	}
	return pix, w, h, nil
}

// writePNG writes interleaved RGB as an 8-bit RGB PNG with no colour
// chunks: butteraugli reads PNG and JPEG only, assumes sRGB, and refuses a
// pair whose band counts (RGB against RGBA) or sizes differ.
func writePNG(path string, pix []byte, w, h int) error {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i, o := 0, 0; i < len(pix); i, o = i+3, o+4 {
		img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = pix[i], pix[i+1], pix[i+2], 255
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	// Opaque RGBA is written as RGB. Compression is wasted on a file read once.
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	err = enc.Encode(bw, img)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// runButteraugli runs `butteraugli ref cand`, which prints the distance
// alone on stdout ("%lf\n") and exits 0, or says what is wrong on stderr
// and exits 1.
func runButteraugli(ctx context.Context, ref, cand string) (float64, error) {
	cmd := exec.CommandContext(ctx, butteraugli, ref, cand)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("%s %s %s: %w: %s", butteraugli, ref, cand, err, strings.TrimSpace(stderr.String()))
	}
	out := strings.TrimSpace(stdout.String())
	d, err := strconv.ParseFloat(out, 64)
	if err != nil || math.IsNaN(d) || math.IsInf(d, 0) || d < 0 {
		return 0, fmt.Errorf("%s printed %q, not a distance (stderr: %s)", butteraugli, out, strings.TrimSpace(stderr.String()))
	}
	return d, nil
}

// lanczos3 resizes interleaved 8-bit RGB from sw×sh to exactly w×h with a
// separable Lanczos3 filter widened by the scale when reducing, weights in
// float64, the intermediate in float32, rounding once at the end. Pixel
// centres are aligned ((x+0.5)·scale) and edges extend by copying, as
// libvips' reduce does; unlike vips_resize (gap 2.0, which govips cannot
// change) nothing is box-shrunk first.
func lanczos3(pix []byte, sw, sh, w, h int) []byte {
	xs, ys := filterTaps(sw, w), filterTaps(sh, h)
	// Horizontal pass: sh rows of w pixels.
	tmp := make([]float32, w*sh*3)
	parallelRows(sh, func(y int) {
		row := pix[y*sw*3 : (y+1)*sw*3]
		out := tmp[y*w*3 : (y+1)*w*3]
		for x, t := range xs {
			var r, g, b float64
			for i, wt := range t.weights {
				p := (t.first + i) * 3
				r += wt * float64(row[p])
				g += wt * float64(row[p+1])
				b += wt * float64(row[p+2])
			}
			out[x*3], out[x*3+1], out[x*3+2] = float32(r), float32(g), float32(b)
		}
	})
	// Vertical pass: h rows of w pixels.
	dst := make([]byte, w*h*3)
	parallelRows(h, func(y int) {
		t := ys[y]
		out := dst[y*w*3 : (y+1)*w*3]
		acc := make([]float64, w*3)
		for i, wt := range t.weights {
			in := tmp[(t.first+i)*w*3 : (t.first+i+1)*w*3]
			for k, v := range in {
				acc[k] += wt * float64(v)
			}
		}
		for k, v := range acc {
			out[k] = uint8(min(255, max(0, math.Round(v))))
		}
	})
	return dst
}

// taps are the weights one output pixel takes from consecutive inputs
// starting at first.
type taps struct {
	first   int
	weights []float64
}

// filterTaps computes, for each of out pixels resampled from in, its
// normalised Lanczos3 weights. Taps past an edge are folded onto the edge
// pixel (extend by copy).
func filterTaps(in, out int) []taps {
	scale := float64(in) / float64(out)
	stretch := max(scale, 1) // a reduction widens the kernel to cover the inputs
	support := 3 * stretch
	ts := make([]taps, out)
	for x := range ts {
		centre := (float64(x) + 0.5) * scale // in input coordinates; input pixel i is centred at i+0.5
		lo := int(math.Floor(centre - support))
		hi := int(math.Ceil(centre + support))
		first, last := max(0, lo), min(in-1, hi)
		wts := make([]float64, last-first+1)
		var sum float64
		for i := lo; i <= hi; i++ {
			wt := lanczos3Kernel((float64(i) + 0.5 - centre) / stretch)
			if wt == 0 {
				continue
			}
			wts[min(max(i, first), last)-first] += wt
			sum += wt
		}
		for i := range wts {
			wts[i] /= sum
		}
		ts[x] = taps{first: first, weights: wts}
	}
	return ts
}

func lanczos3Kernel(x float64) float64 {
	if x == 0 {
		return 1
	}
	if x <= -3 || x >= 3 {
		return 0
	}
	px := math.Pi * x
	return 3 * math.Sin(px) * math.Sin(px/3) / (px * px)
}

// parallelRows runs f for rows 0..n-1 on GOMAXPROCS goroutines.
func parallelRows(n int, f func(y int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for y := int(next.Add(1)) - 1; y < n; y = int(next.Add(1)) - 1 {
				f(y)
			}
		})
	}
	wg.Wait()
}
