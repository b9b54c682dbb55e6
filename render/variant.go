package render

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/cache"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/storage"
)

// pipelineVersion is part of every variant ETag, so that a change to how
// Prism renders invalidates what browsers and CDNs hold.
const pipelineVersion = "2"

// VariantRequest asks for one rendering of an original.
type VariantRequest struct {
	Key     string
	Options imaging.Options
	Accepts imaging.Accepts // what the client takes, for format=auto
	// Fresh, when set, reports whether the client already holds the
	// variant with this ETag: then nothing is read or rendered, and the
	// Result is NotModified.
	Fresh func(etag string) bool
}

// Result is a variant, or what is known of it.
type Result struct {
	Data         []byte // nil when NotModified
	ContentType  string
	ETag         string // strong, quoted
	LastModified time.Time
	// VaryAccept says the output format was negotiated from Accept.
	VaryAccept bool
	// VariantKey names the rendering in the caches and the derived store.
	VariantKey  cache.VariantKey
	Layer       Layer
	NotModified bool
	// Rendered says this request's own render made Data, not one it
	// joined; Stages is where its time went.
	Rendered bool
	Stages   Stages
}

// Variant answers a transform: from cached metadata when the client holds
// it already, else from the variant caches, else rendered once for every
// identical request in flight. A remembered miss fails with Result.Layer
// LayerMissing; other failures carry no Result.
func (r *Renderer) Variant(ctx context.Context, req VariantRequest) (Result, error) {
	res, err := r.variant(ctx, req)
	return res, r.metrics.refused(ctx, err)
}

func (r *Renderer) variant(ctx context.Context, req VariantRequest) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()

	// The source's identity: from cached metadata, else from storage.
	m, found, err := r.catalog.Lookup(ctx, req.Key)
	if err != nil {
		return Result{}, err
	}
	var info storage.Info
	layer := LayerMetadata
	switch found {
	case cache.Missing:
		return Result{Layer: LayerMissing}, notFound()
	case cache.Hit:
		info = storage.Info{Key: req.Key, Size: m.Bytes, ETag: m.ETag, LastModified: m.LastModified}
	default:
		layer = LayerMiss
		if info, err = r.catalog.Stat(ctx, req.Key); err != nil {
			return Result{}, err
		}
	}

	var mark *foundMark
	if req.Options.Mark != nil {
		if mark, err = r.findMark(ctx, req.Options.Mark.Key); err != nil {
			return Result{}, err
		}
	}
	etag := variantETag(info.ETag, mark, req.Options, req.Accepts)
	res := Result{
		ETag: etag, LastModified: info.LastModified,
		VaryAccept: req.Options.Format == imaging.FormatAuto,
		VariantKey: cache.VariantKey{Source: req.Key, ID: etag},
		Layer:      layer,
	}
	if mark != nil && mark.info.LastModified.After(res.LastModified) {
		res.LastModified = mark.info.LastModified
	}
	if req.Fresh != nil && req.Fresh(etag) {
		res.NotModified = true
		return res, nil
	}
	if v, layer, ok := r.cached(ctx, res.VariantKey); ok {
		res.Data, res.ContentType, res.Layer = v.Data, v.ContentType, layer
		return res, nil
	}
	var known *prism.Metadata
	if found == cache.Hit {
		// Refused before a worker or storage is asked. A variant cached
		// or held by the client passed this when it was rendered.
		if err := r.checkSource(m, req); err != nil {
			return Result{}, err
		}
		known = &m
	}
	v, err := r.render(ctx, res.VariantKey, info, known, mark, req)
	if err != nil {
		return Result{}, err
	}
	res.Data, res.ContentType, res.Layer = v.Data, v.ContentType, LayerMiss
	res.Rendered, res.Stages = v.ran, v.stages
	return res, nil
}

// checkSource refuses, from the original's cached metadata alone, a
// transform over the limits: the source's bytes and pixels, the output's
// pixels, an SVG's drawn size.
func (r *Renderer) checkSource(m prism.Metadata, req VariantRequest) error {
	if m.Bytes > r.cfg.MaxSourceBytes {
		return prism.Fail(prism.CodeTooLarge, "source is %d bytes, over the limit of %d", m.Bytes, r.cfg.MaxSourceBytes)
	}
	return r.proc.Check(header(m), req.Options, req.Accepts)
}

// header is what an original's metadata says of its header.
func header(m prism.Metadata) imaging.Header {
	return imaging.Header{
		Format: imaging.Format(m.Format), Width: m.Width, Height: m.Height, Frames: max(1, m.Frames),
		Orientation: max(1, m.Orientation), HasAlpha: m.HasAlpha, ColorSpace: m.ColorSpace,
	}
}

// cached looks a variant up in memory, then in the derived store.
func (r *Renderer) cached(ctx context.Context, k cache.VariantKey) (cache.Variant, Layer, bool) {
	if v, ok := r.variants.Get(k); ok {
		return v, LayerMemory, true
	}
	if r.derived != nil {
		if v, ok := r.derived.Get(ctx, k); ok {
			r.variants.Set(k, v)
			return v, LayerDerived, true
		}
	}
	return cache.Variant{}, "", false
}

// rendered is a variant just rendered, and where the time went.
type rendered struct {
	cache.Variant
	stages Stages
	ran    bool // by this caller, not by one it joined
}

// render runs the pipeline once for all identical requests in flight.
// known is the source's cached metadata, nil when it has none; mark is
// the watermark, nil when the transform names none.
func (r *Renderer) render(ctx context.Context, k cache.VariantKey, info storage.Info, known *prism.Metadata, mark *foundMark, req VariantRequest) (rendered, error) {
	asked := time.Now()
	ran := false
	v, err := r.merged(ctx, "variant\x00"+k.String(), func(work context.Context) (any, error) {
		ran = true // read after merged returns, which happens after this
		return r.renderNow(work, asked, k, info, known, mark, req)
	})
	if err != nil {
		return rendered{}, err
	}
	out := v.(rendered)
	out.ran = ran
	return out, nil
}

// renderNow reads the source and transforms it, caching the result, and
// learns the source's metadata if it is new or has changed. asked is when
// the work was asked for: it has waited for a worker since.
func (r *Renderer) renderNow(ctx context.Context, asked time.Time, k cache.VariantKey, info storage.Info, known *prism.Metadata, mark *foundMark, req VariantRequest) (rendered, error) {
	r.metrics.runs.Inc()
	var st Stages
	fetching := time.Now()
	st.Queue = fetching.Sub(asked)
	src, current, err := r.catalog.ReadAll(ctx, k.Source, r.cfg.MaxSourceBytes)
	if err != nil {
		return rendered{}, err
	}
	st.Fetch = time.Since(fetching)
	r.metrics.sourceBytes.Observe(float64(len(src)))
	// The header is read once: from the metadata when it describes these
	// very bytes, else from them.
	preparing := time.Now()
	learning := known == nil || known.ETag != current.ETag
	var t *imaging.Transform
	if learning {
		t, err = r.proc.Prepare(src, req.Options, req.Accepts)
	} else {
		t, err = r.proc.PrepareKnown(src, header(*known), req.Options, req.Accepts)
	}
	if err != nil {
		r.learnFailure(ctx, known != nil, k.Source, err)
		return rendered{}, err
	}
	prepared := time.Since(preparing)
	markFresh := true
	if t.NeedsMark() {
		fetching := time.Now()
		if markFresh, err = r.readMark(ctx, t, mark); err != nil {
			return rendered{}, err
		}
		st.Fetch += time.Since(fetching)
	}
	reserving := time.Now()
	release, err := r.gate.reserve(ctx, t.Memory())
	if err != nil {
		return rendered{}, err
	}
	defer release()
	st.Queue += time.Since(reserving)
	out, err := t.Run(ctx)
	if err != nil {
		r.learnFailure(ctx, known != nil, k.Source, err)
		return rendered{}, err
	}
	if mark != nil {
		// Recorded once a variant has been drawn with the mark, before it
		// is cached: a refused or failed request records nothing, and a
		// change of the mark from now on purges this source's variants.
		r.catalog.DrawnWith(ctx, mark.info.Key, k.Source)
	}
	st.Decode, st.Process, st.Encode = prepared+out.Decode, out.Process, out.Encode
	r.metrics.rendered(out.Format, st, len(out.Data))
	if learning {
		// An original that reached storage without the API, or changed
		// there: its metadata from this render, with no second read.
		if a, err := t.Analysis(ctx, out); err == nil {
			r.catalog.Remember(ctx, current, pixels(a))
		} else {
			r.log.Warn("learning an original failed", "key", k.Source, "err", err)
		}
	}
	v := cache.Variant{Data: out.Data, ContentType: out.Format.ContentType()}
	// Cache only what the key names: the source and watermark read must be
	// the ones the ETag was made from (a replace may have landed between).
	if current.ETag == info.ETag && markFresh {
		r.variants.Set(k, v)
		if r.derived != nil {
			r.derived.SaveAsync(k, v)
		}
	}
	return rendered{Variant: v, stages: st}, nil
}

// variantETag is a strong validator for one rendering: the source's
// identity, the watermark's (mark may be nil), the canonical transform and
// what decides the output format.
func variantETag(sourceETag string, mark *foundMark, opts imaging.Options, accepts imaging.Accepts) string {
	format := string(opts.Format)
	if opts.Format == imaging.FormatAuto {
		format += ":" + accepts.Token()
	}
	markETag := ""
	if mark != nil {
		markETag = mark.info.ETag
	}
	sum := sha256.Sum256([]byte(pipelineVersion + "\n" + sourceETag + "\n" + markETag + "\n" + opts.Canonical() + "\n" + format))
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}
