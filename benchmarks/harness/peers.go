package harness

import (
	"fmt"
	"path/filepath"

	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/internal/testutil"
)

// peer is another server the uncached scenarios run against, started
// beside Prism on the same data directory.
type peer struct {
	name string
	proc *testutil.Process
	path func(t Transform, width, quality int) string // of t's variant
}

// startPeers starts the servers cfg names. It returns those it started even
// when one fails, so that the caller stops them.
func startPeers(cfg Config, dir string) ([]peer, error) {
	var peers []peer
	if cfg.Baseline != "" {
		bin, err := filepath.Abs(cfg.Baseline)
		if err != nil {
			return peers, err
		}
		proc, err := testutil.StartServer(bin, prismEnv(dir, randomHex(16))...)
		if err != nil {
			return peers, fmt.Errorf("the baseline server: %w", err)
		}
		peers = append(peers, peer{"baseline", proc, func(t Transform, w, q int) string {
			return "/" + t.key() + "?" + t.query(w, q)
		}})
	}
	if cfg.Imgproxy != "" {
		bin, err := filepath.Abs(cfg.Imgproxy)
		if err != nil {
			return peers, err
		}
		proc, err := testutil.Launch(bin, "IMGPROXY_BIND", "/health", imgproxyEnv(dir)...)
		if err != nil {
			return peers, fmt.Errorf("imgproxy: %w", err)
		}
		peers = append(peers, peer{"imgproxy", proc, imgproxyPath})
	}
	return peers, nil
}

// imgproxyEnv runs imgproxy (v4) on its defaults, reading the data
// directory. With no signing key it takes any signature.
func imgproxyEnv(dir string) []string {
	return []string{"IMGPROXY_LOCAL_FILESYSTEM_ROOT=" + dir}
}

// imgproxyPath is imgproxy's URL for t's variant: fit to the width, never
// enlarged (imgproxy's default), at the quality, in the format.
func imgproxyPath(t Transform, w, q int) string {
	ext := map[imaging.Format]string{imaging.JPEG: "jpg", imaging.WebP: "webp", imaging.AVIF: "avif", imaging.PNG: "png"}[t.Format]
	return fmt.Sprintf("/insecure/rs:fit:%d:0/q:%d/plain/local:///%s@%s", w, q, t.key(), ext)
}
