package render

import (
	"context"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/catalog"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/storage"
)

// Metadata returns key's metadata: from the cache, else worked out from
// storage (once for every identical request in flight, within the gate)
// and cached. A failed analysis is remembered like a missing key.
func (r *Renderer) Metadata(ctx context.Context, key string) (prism.Metadata, error) {
	m, err := r.metadata(ctx, key)
	return m, r.metrics.refused(ctx, err)
}

func (r *Renderer) metadata(ctx context.Context, key string) (prism.Metadata, error) {
	if err := storage.ValidateKey(key); err != nil {
		return prism.Metadata{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	m, found, err := r.catalog.Lookup(ctx, key)
	switch {
	case err != nil:
		return prism.Metadata{}, err
	case found == cache.Hit:
		return m, nil
	case found == cache.Missing:
		return prism.Metadata{}, notFound()
	}
	v, err := r.merged(ctx, metadataID(key), r.analyzeStored(key))
	if err != nil {
		return prism.Metadata{}, err
	}
	return v.(prism.Metadata), nil
}

func metadataID(key string) string { return "metadata\x00" + key }

// analyzeStored is the work of analysing the original stored at key: read
// within the gate, so that no bytes wait outside the memory budget.
func (r *Renderer) analyzeStored(key string) func(work context.Context) (any, error) {
	return func(work context.Context) (any, error) {
		src, info, err := r.catalog.ReadAll(work, key, r.cfg.MaxSourceBytes)
		if err != nil {
			return nil, err
		}
		m, err := r.analyze(work, info, src)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
}

// learn analyses the original at key, which work failed to decode without
// knowing it, so that a broken original is remembered: in the background,
// through the gate, once that work has ended and released its worker.
// Identical learning is merged, so an original is analysed once however
// many renders fail on it meanwhile; it is read again then, rather than
// held while it waits.
func (r *Renderer) learn(work context.Context, key string) {
	context.AfterFunc(work, func() {
		r.background(metadataID(key), func(ctx context.Context) (any, error) {
			m, err := r.analyzeStored(key)(ctx)
			if err != nil {
				r.log.Warn("learning an original failed", "key", key, "err", err)
			}
			return m, err
		})
	})
}

// analyze decodes an original read from storage as info and caches its
// metadata, or remembers that it cannot be analysed.
func (r *Renderer) analyze(ctx context.Context, info storage.Info, src []byte) (prism.Metadata, error) {
	a, err := r.inspect(ctx, src)
	if err != nil {
		r.rememberFailure(info.Key, err)
		return prism.Metadata{}, err
	}
	return r.catalog.Remember(ctx, info, pixels(a)), nil
}

// inspect analyses src within the memory budget; the caller holds a worker.
func (r *Renderer) inspect(ctx context.Context, src []byte) (imaging.Analysis, error) {
	in, err := r.proc.PrepareAnalysis(src)
	if err != nil {
		return imaging.Analysis{}, err
	}
	release, err := r.gate.reserve(ctx, in.Memory())
	if err != nil {
		return imaging.Analysis{}, err
	}
	defer release()
	return in.Run(ctx)
}

// rememberFailure remembers that an original failed analysis because of
// what it is (not an image Prism reads, broken, over the limits), so that
// it is not decoded again on every request. Only analysis decides this: it
// asks the same of every original, where a transform's failure may be its
// options' (an SVG drawn too large, an output over the limit).
func (r *Renderer) rememberFailure(key string, err error) {
	switch prism.AsError(err).Code {
	case prism.CodeUndecodable, prism.CodeTooLarge:
		r.catalog.Failed(key, err)
	}
}

// learnFailure follows a transform that failed on an original it did not
// know with that original's analysis, which remembers the failure if the
// original is at fault.
func (r *Renderer) learnFailure(work context.Context, knownSource bool, key string, err error) {
	if !knownSource && prism.AsError(err).Code == prism.CodeUndecodable {
		r.learn(work, key)
	}
}

// Upload validates data, decoding every pixel within the gate, and stores
// it at key. It reports whether the key is new.
func (r *Renderer) Upload(ctx context.Context, key string, data []byte, cond catalog.Precondition) (prism.Metadata, bool, error) {
	if err := storage.ValidateKey(key); err != nil {
		return prism.Metadata{}, false, err
	}
	if f := imaging.Sniff(data); !f.Uploadable() {
		return prism.Metadata{}, false, prism.Fail(prism.CodeUnsupportedMedia,
			"not an image in an accepted format: %s", imaging.UploadableNames())
	}
	v, err := r.admitted(ctx, func(work context.Context) (any, error) { return r.inspect(work, data) })
	if err != nil {
		return prism.Metadata{}, false, r.metrics.refused(ctx, err)
	}
	return r.catalog.Put(ctx, key, data, pixels(v.(imaging.Analysis)), cond)
}

// pixels is the part of an original's metadata its pixels tell.
func pixels(a imaging.Analysis) prism.Metadata {
	return prism.Metadata{
		Width: a.Width, Height: a.Height,
		Format: string(a.Format), ContentType: a.Format.ContentType(),
		Orientation: a.Orientation, Frames: a.Frames, HasAlpha: a.HasAlpha, ColorSpace: a.ColorSpace,
		DominantColor: a.DominantColor, BlurHash: a.BlurHash,
	}
}
