package cache

import (
	"context"
	"strings"

	"github.com/maypok86/otter/v2"
)

// Variant is a rendered image, ready to send.
type Variant struct {
	Data        []byte
	ContentType string
}

// VariantKey identifies one rendering of one original: the original's key,
// and an ID that changes whenever the original, the transform or the output
// format does (Prism uses the variant's strong ETag).
type VariantKey struct {
	Source string
	ID     string
}

func (k VariantKey) String() string { return k.Source + "\x00" + k.ID }

// entryOverhead approximates what an entry costs beyond its bytes: the key,
// the node, the map slot.
const entryOverhead = 256

// Variants is the in-process variant cache, bounded by bytes, with
// W-TinyLFU admission and eviction (otter).
type Variants struct {
	c        *otter.Cache[string, Variant]
	maxEntry int
	m        *Metrics
}

// NewVariants returns a cache holding at most maxBytes of variants. A
// variant over an eighth of that is not cached: one image must not flush
// the hot set. m, when not nil, counts its lookups and exports its size.
func NewVariants(maxBytes int64, m *Metrics) *Variants {
	v := &Variants{
		c: otter.Must(&otter.Options[string, Variant]{
			MaximumWeight: uint64(maxBytes),
			Weigher: func(key string, v Variant) uint32 {
				return uint32(len(key) + len(v.Data) + len(v.ContentType) + entryOverhead)
			},
		}),
		maxEntry: int(maxBytes / 8),
		m:        m,
	}
	m.watch(v)
	return v
}

// Get returns the variant cached for k.
func (v *Variants) Get(k VariantKey) (Variant, bool) {
	val, ok := v.c.GetIfPresent(k.String())
	if ok {
		v.m.lookup(layerMemory, resultHit)
	} else {
		v.m.lookup(layerMemory, resultMiss)
	}
	return val, ok
}

// Set caches val for k.
func (v *Variants) Set(k VariantKey, val Variant) {
	if len(val.Data) <= v.maxEntry {
		v.c.Set(k.String(), val)
	}
}

// Invalidate drops every variant of source. Variant IDs already change with
// the source's ETag; this frees the memory the old ones held at once.
func (v *Variants) Invalidate(_ context.Context, source string) {
	prefix := source + "\x00"
	for key := range v.c.Keys() {
		if strings.HasPrefix(key, prefix) {
			v.c.Invalidate(key)
		}
	}
}

// Bytes is the weight the cache holds now.
func (v *Variants) Bytes() uint64 {
	v.c.CleanUp()
	return v.c.WeightedSize()
}
