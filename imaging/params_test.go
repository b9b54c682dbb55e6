package imaging

import (
	"net/url"
	"slices"
	"testing"

	"github.com/prism-image/prism"
)

// Every parameter ParseOptions acts on is in prism.TransformParams (which
// signing and the CDN function rely on), and every listed one is acted on.
func TestTransformParams(t *testing.T) {
	valid := map[string]string{
		"w": "10", "h": "10", "fit": "10,10", "resize": "10,10", "lb": "10,10", "crop": "0,0,50,50",
		"crop_strategy": "smart", "gravity": "north", "zoom": "2", "dpr": "2", "quality": "50", "q": "50",
		"format": "png", "fm": "png", "auto": "format", "webp": "1", "background": "fff", "bg": "fff",
	}
	for _, name := range prism.TransformParams {
		v, ok := valid[name]
		if !ok {
			t.Errorf("%s is listed but has no test value", name)
			continue
		}
		o, err := ParseOptions(url.Values{name: {v}})
		if err != nil || o.IsZero() {
			t.Errorf("%s=%s: %+v, %v: listed but not acted on", name, v, o, err)
		}
	}
	for name := range valid {
		if !slices.Contains(prism.TransformParams, name) {
			t.Errorf("%s is parsed but not in prism.TransformParams", name)
		}
	}
	if o, _ := ParseOptions(url.Values{prism.SignatureParam: {"abc"}}); !o.IsZero() {
		t.Error("the signature is taken for a transform")
	}
}
