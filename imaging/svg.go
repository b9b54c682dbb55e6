package imaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/davidbyttow/govips/v2/vips"

	"github.com/prism-image/prism"
)

// SVGs are drawn in a child process: the same executable, started with
// svgChildEnv set. librsvg draws libvips' tiles one call at a time and
// nothing can interrupt a call, so a small SVG (a few blurred shapes) can
// hold a worker for minutes; a child process is killed at the deadline,
// whatever the SVG does, and its memory is capped. A crash in librsvg takes
// the child down, never the server.
const svgChildEnv = "PRISM_SVG_RASTERISER"

// svgChildMemory caps the child's address space. Go's runtime, libvips and
// librsvg's threads reserve about 2.2 GB of it before drawing anything (of
// which about 120 MB is resident); the rest bounds what drawing may use.
const svgChildMemory = 3 << 30

// RunSVGRasteriserIfChild makes this process the SVG rasteriser when it was
// started as one: it then draws the SVG on stdin at the density in its
// environment, writes a PNG to stdout and exits. Otherwise it returns at
// once. Every program that uses imaging (each main, and TestMain of each
// test binary that draws SVGs) calls it first.
func RunSVGRasteriserIfChild() {
	arg, ok := os.LookupEnv(svgChildEnv)
	if !ok {
		return
	}
	density, err := strconv.Atoi(arg)
	if err == nil {
		err = rasteriseChild(density, os.Stdin, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// rasteriseChild is the child's work: read, draw, write.
func rasteriseChild(density int, in io.Reader, out io.Writer) error {
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: svgChildMemory, Max: svgChildMemory}); err != nil {
		return err
	}
	src, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	vips.LoggingSettings(nil, vips.LogLevelError)
	if err := vips.Startup(&vips.Config{ConcurrencyLevel: 1}); err != nil {
		return err
	}
	params := vips.NewImportParams()
	params.Density.Set(density)
	img, err := vips.LoadImageFromBuffer(src, params)
	if err != nil {
		return err
	}
	// Uncompressed: the parent decodes it at once, and it never leaves
	// this machine.
	png, _, err := img.ExportPng(&vips.PngExportParams{Compression: 0, Filter: vips.PngFilterNone})
	if err != nil {
		return err
	}
	_, err = out.Write(png)
	return err
}

// rasteriseSVG draws src at density in a child process, as a PNG. When ctx
// ends the child is killed.
func rasteriseSVG(ctx context.Context, src []byte, density int) ([]byte, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), svgChildEnv+"="+strconv.Itoa(density))
	cmd.Stdin = bytes.NewReader(src)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	// Should the server die first, the child goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, prism.Fail(prism.CodeUndecodable, "the SVG could not be drawn").
				WithCause(fmt.Errorf("%v: %s", err, bytes.TrimSpace(stderr.Bytes())))
		}
		return nil, err
	}
	return out.Bytes(), nil
}
