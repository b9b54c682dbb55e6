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
		"zoom": "2", "dpr": "2", "quality": "50", "q": "50",
		"format": "png", "fm": "png", "auto": "format", "webp": "1", "background": "fff", "bg": "fff",
		"trim": "auto", "ulb": "true", "rot": "90", "rotate": "90", "flip": "h", "filter": "sepia",
		"brightness": "10", "contrast": "10", "colorize": "1,2,3", "smooth": "1", "blur": "2",
		"sharp": "2", "sharpen": "2", "mark": "logo.png",
	}
	// Modifiers act only with the parameter they modify, so each is
	// checked by the difference it makes to that one's canonical form.
	modifies := map[string]url.Values{
		"crop_strategy":  {"resize": {"10,10"}, "crop_strategy": {"smart"}},
		"gravity":        {"resize": {"10,10"}, "gravity": {"north"}},
		"trim_threshold": {"trim": {"auto"}, "trim_threshold": {"30"}},
		"fp-x":           {"resize": {"10,10"}, "fp-x": {"0.1"}},
		"fp-y":           {"resize": {"10,10"}, "fp-y": {"0.1"}},
		"mark-w":         {"mark": {"logo.png"}, "mark-w": {"0.5"}},
		"mark-align":     {"mark": {"logo.png"}, "mark-align": {"top"}},
		"mark-pad":       {"mark": {"logo.png"}, "mark-pad": {"1"}},
		"mark-alpha":     {"mark": {"logo.png"}, "mark-alpha": {"50"}},
	}
	// strip is accepted and changes nothing: Prism always strips.
	changesNothing := map[string]string{"strip": "all"}
	for _, name := range prism.TransformParams {
		if v, ok := changesNothing[name]; ok {
			if o, err := ParseOptions(url.Values{name: {v}}); err != nil || !o.IsZero() {
				t.Errorf("%s=%s: %+v, %v: want accepted and no change", name, v, o, err)
			}
			if _, err := ParseOptions(url.Values{name: {"bogus"}}); err == nil {
				t.Errorf("%s=bogus is accepted", name)
			}
			continue
		}
		if q, ok := modifies[name]; ok {
			with, err := ParseOptions(q)
			base := url.Values{}
			for k, vs := range q {
				if k != name {
					base[k] = vs
				}
			}
			without, _ := ParseOptions(base)
			if err != nil || with.Canonical() == without.Canonical() {
				t.Errorf("%s in %v: %q, %v: listed but not acted on", name, q, with.Canonical(), err)
			}
			continue
		}
		v, ok := valid[name]
		if !ok {
			t.Errorf("%s is listed but has no test value", name)
			continue
		}
		o, err := ParseOptions(url.Values{name: {v}})
		if err != nil || o.IsZero() || o.Canonical() == "" {
			t.Errorf("%s=%s: %+v, %v: listed but not acted on", name, v, o, err)
		}
	}
	for name := range valid {
		if !slices.Contains(prism.TransformParams, name) {
			t.Errorf("%s is parsed but not in prism.TransformParams", name)
		}
	}
	for name := range modifies {
		if !slices.Contains(prism.TransformParams, name) {
			t.Errorf("%s is parsed but not in prism.TransformParams", name)
		}
	}
	if o, _ := ParseOptions(url.Values{prism.SignatureParam: {"abc"}}); !o.IsZero() {
		t.Error("the signature is taken for a transform")
	}
}
