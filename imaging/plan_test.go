package imaging

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prism-image/prism"
)

// full is the identity plan: the whole source, unscaled.
func full(w, h int) Plan {
	return Plan{Crop: Rect{0, 0, w, h}, Resized: Size{w, h}, Window: Rect{0, 0, w, h}, Canvas: Size{w, h}}
}

// fitted is the plan of a plain fit: no crop, the whole source scaled to w×h.
func fitted(srcW, srcH, w, h int) Plan {
	return Plan{Crop: Rect{0, 0, srcW, srcH}, Resized: Size{w, h}, Window: Rect{0, 0, w, h}, Canvas: Size{w, h}}
}

func TestNewPlan(t *testing.T) {
	tests := []struct {
		name  string
		src   Size
		query string
		want  Plan
	}{
		// no sizing
		{"nothing", Size{320, 240}, "", full(320, 240)},
		{"format only", Size{320, 240}, "fm=webp&q=50", full(320, 240)},
		{"zoom without a box", Size{320, 240}, "zoom=2&dpr=3", full(320, 240)},
		{"gravity without resize", Size{320, 240}, "gravity=north&crop_strategy=smart", full(320, 240)},

		// w and h: fit, never enlarge
		{"spec w=300", Size{1512, 983}, "w=300", fitted(1512, 983, 300, 195)},
		{"spec w=700 never enlarges", Size{600, 355}, "w=700", full(600, 355)},
		{"w equal to source", Size{600, 355}, "w=600", full(600, 355)},
		{"h only", Size{1512, 983}, "h=200", fitted(1512, 983, 308, 200)}, // 307.63
		{"h only never enlarges", Size{320, 240}, "h=480", full(320, 240)},
		{"w and h, w binds", Size{320, 240}, "w=160&h=200", fitted(320, 240, 160, 120)},
		{"w and h, h binds", Size{320, 240}, "w=300&h=60", fitted(320, 240, 80, 60)},
		{"w and h both larger", Size{320, 240}, "w=1000&h=1000", full(320, 240)},
		{"w=1 on wide source keeps 1 px", Size{1000, 10}, "w=1", fitted(1000, 10, 1, 1)},
		{"portrait", Size{983, 1512}, "w=300", fitted(983, 1512, 300, 461)}, // 461.44

		// fit
		{"fit", Size{320, 240}, "fit=100,100", fitted(320, 240, 100, 75)},
		{"fit tall box", Size{320, 240}, "fit=100,1000", fitted(320, 240, 100, 75)},
		{"fit wide box", Size{320, 240}, "fit=1000,60", fitted(320, 240, 80, 60)},
		{"fit never enlarges", Size{320, 240}, "fit=640,480", full(320, 240)},
		{"fit = w&h", Size{1512, 983}, "fit=300,300", fitted(1512, 983, 300, 195)},

		// resize: cover exactly W×H, centre by default
		{"resize wide source", Size{320, 240}, "resize=100,100",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{133, 100}, Window: Rect{16, 0, 100, 100}, Canvas: Size{100, 100}}},
		{"resize tall box", Size{320, 240}, "resize=100,50",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{100, 75}, Window: Rect{0, 12, 100, 50}, Canvas: Size{100, 50}}},
		{"resize px", Size{320, 240}, "resize=100px,100px",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{133, 100}, Window: Rect{16, 0, 100, 100}, Canvas: Size{100, 100}}},
		{"resize same aspect", Size{320, 240}, "resize=160,120",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{160, 120}, Window: Rect{0, 0, 160, 120}, Canvas: Size{160, 120}}},
		{"resize to source size", Size{320, 240}, "resize=320,240", full(320, 240)},
		{"resize smart", Size{320, 240}, "resize=100,100&crop_strategy=smart",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{133, 100}, Window: Rect{16, 0, 100, 100}, Strategy: StrategyAttention, Canvas: Size{100, 100}}},
		{"resize entropy", Size{320, 240}, "resize=100,100&crop_strategy=entropy",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{133, 100}, Window: Rect{16, 0, 100, 100}, Strategy: StrategyEntropy, Canvas: Size{100, 100}}},
		{"resize attention", Size{320, 240}, "resize=100,100&crop_strategy=attention&gravity=west",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{133, 100}, Window: Rect{0, 0, 100, 100}, Strategy: StrategyAttention, Canvas: Size{100, 100}}},

		// resize never enlarges: the W:H aspect at the largest size the source allows
		{"resize 800,800 on 600x355", Size{600, 355}, "resize=800,800",
			Plan{Crop: Rect{0, 0, 600, 355}, Resized: Size{600, 355}, Window: Rect{122, 0, 355, 355}, Canvas: Size{355, 355}}},
		{"resize 1000,200 on 320x240", Size{320, 240}, "resize=1000,200",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{320, 240}, Window: Rect{0, 88, 320, 64}, Canvas: Size{320, 64}}},
		{"resize 800,600 on 320x240", Size{320, 240}, "resize=800,600", full(320, 240)},
		{"resize 400,100 on 320x240", Size{320, 240}, "resize=400,100",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{320, 240}, Window: Rect{0, 80, 320, 80}, Canvas: Size{320, 80}}},
		{"resize 100,100 on 50x200 southeast", Size{50, 200}, "resize=100,100&gravity=southeast",
			Plan{Crop: Rect{0, 0, 50, 200}, Resized: Size{50, 200}, Window: Rect{0, 150, 50, 50}, Canvas: Size{50, 50}}},
		{"resize 300,100 on 200x200 north", Size{200, 200}, "resize=300,100&gravity=north",
			Plan{Crop: Rect{0, 0, 200, 200}, Resized: Size{200, 200}, Window: Rect{0, 0, 200, 67}, Canvas: Size{200, 67}}},
		{"resize 300,100 on 200x200 south", Size{200, 200}, "resize=300,100&gravity=south",
			Plan{Crop: Rect{0, 0, 200, 200}, Resized: Size{200, 200}, Window: Rect{0, 133, 200, 67}, Canvas: Size{200, 67}}},

		// lb: canvas exactly W×H, image fitted and centred, never enlarged
		{"lb smaller box", Size{320, 240}, "lb=100,100",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{100, 75}, Window: Rect{0, 0, 100, 75}, Canvas: Size{100, 100}, Offset: Size{0, 12}}},
		{"lb wide box", Size{320, 240}, "lb=300,100",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{133, 100}, Window: Rect{0, 0, 133, 100}, Canvas: Size{300, 100}, Offset: Size{83, 0}}},
		{"lb larger box never enlarges", Size{320, 240}, "lb=400,400",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{320, 240}, Window: Rect{0, 0, 320, 240}, Canvas: Size{400, 400}, Offset: Size{40, 80}}},
		{"lb same aspect", Size{320, 240}, "lb=160,120",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{160, 120}, Window: Rect{0, 0, 160, 120}, Canvas: Size{160, 120}}},
		{"lb odd padding", Size{100, 100}, "lb=101,100",
			Plan{Crop: Rect{0, 0, 100, 100}, Resized: Size{100, 100}, Window: Rect{0, 0, 100, 100}, Canvas: Size{101, 100}, Offset: Size{0, 0}}},
		{"lb ignores gravity", Size{320, 240}, "lb=100,100&gravity=north",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{100, 75}, Window: Rect{0, 0, 100, 75}, Canvas: Size{100, 100}, Offset: Size{0, 12}}},

		// crop: pixels, percent, mixed; then fit
		{"crop px", Size{320, 240}, "crop=10px,20px,100px,50px",
			Plan{Crop: Rect{10, 20, 100, 50}, Resized: Size{100, 50}, Window: Rect{0, 0, 100, 50}, Canvas: Size{100, 50}}},
		{"crop percent", Size{320, 240}, "crop=0,0,50,50",
			Plan{Crop: Rect{0, 0, 160, 120}, Resized: Size{160, 120}, Window: Rect{0, 0, 160, 120}, Canvas: Size{160, 120}}},
		{"crop percent offset", Size{320, 240}, "crop=25,25,50,50",
			Plan{Crop: Rect{80, 60, 160, 120}, Resized: Size{160, 120}, Window: Rect{0, 0, 160, 120}, Canvas: Size{160, 120}}},
		{"crop percent fractional", Size{1000, 1000}, "crop=12.5,0.5,50.1,10",
			Plan{Crop: Rect{125, 5, 501, 100}, Resized: Size{501, 100}, Window: Rect{0, 0, 501, 100}, Canvas: Size{501, 100}}},
		{"crop mixed then w", Size{320, 240}, "crop=25,25,50px,100&w=25",
			Plan{Crop: Rect{80, 60, 50, 180}, Resized: Size{25, 90}, Window: Rect{0, 0, 25, 90}, Canvas: Size{25, 90}}},
		{"crop then fit", Size{200, 100}, "crop=10,10,50,50&fit=40,40",
			Plan{Crop: Rect{20, 10, 100, 50}, Resized: Size{40, 20}, Window: Rect{0, 0, 40, 20}, Canvas: Size{40, 20}}},
		{"crop then h", Size{320, 240}, "crop=0px,0px,200px,100px&h=50",
			Plan{Crop: Rect{0, 0, 200, 100}, Resized: Size{100, 50}, Window: Rect{0, 0, 100, 50}, Canvas: Size{100, 50}}},
		{"crop then w never enlarges", Size{320, 240}, "crop=0px,0px,100px,100px&w=200",
			Plan{Crop: Rect{0, 0, 100, 100}, Resized: Size{100, 100}, Window: Rect{0, 0, 100, 100}, Canvas: Size{100, 100}}},
		{"crop then resize", Size{320, 240}, "crop=0,0,50,50&resize=60,60",
			Plan{Crop: Rect{0, 0, 160, 120}, Resized: Size{80, 60}, Window: Rect{10, 0, 60, 60}, Canvas: Size{60, 60}}},
		{"crop then lb", Size{320, 240}, "crop=0px,0px,200px,100px&lb=100,100",
			Plan{Crop: Rect{0, 0, 200, 100}, Resized: Size{100, 50}, Window: Rect{0, 0, 100, 50}, Canvas: Size{100, 100}, Offset: Size{0, 25}}},

		// crop with w and h covers exactly w×h (Tachyon)
		{"crop+w+h cover", Size{320, 240}, "crop=0,0,50,50&w=80&h=80",
			Plan{Crop: Rect{0, 0, 160, 120}, Resized: Size{107, 80}, Window: Rect{13, 0, 80, 80}, Canvas: Size{80, 80}}},
		{"crop+w+h cover gravity", Size{320, 240}, "crop=0,0,50,50&w=80&h=80&gravity=east",
			Plan{Crop: Rect{0, 0, 160, 120}, Resized: Size{107, 80}, Window: Rect{27, 0, 80, 80}, Canvas: Size{80, 80}}},
		{"crop+w+h cover never enlarges", Size{320, 240}, "crop=0px,0px,100px,100px&w=400&h=200",
			Plan{Crop: Rect{0, 0, 100, 100}, Resized: Size{100, 100}, Window: Rect{0, 25, 100, 50}, Canvas: Size{100, 50}}},

		// crop clipped to the image
		{"crop clipped px", Size{320, 240}, "crop=300px,200px,100px,100px",
			Plan{Crop: Rect{300, 200, 20, 40}, Resized: Size{20, 40}, Window: Rect{0, 0, 20, 40}, Canvas: Size{20, 40}}},
		{"crop clipped percent", Size{320, 240}, "crop=50,50,100,100",
			Plan{Crop: Rect{160, 120, 160, 120}, Resized: Size{160, 120}, Window: Rect{0, 0, 160, 120}, Canvas: Size{160, 120}}},
		{"crop larger than image", Size{320, 240}, "crop=0px,0px,9999px,9999px", full(320, 240)},
		{"crop last pixel", Size{320, 240}, "crop=319px,239px,10px,10px",
			Plan{Crop: Rect{319, 239, 1, 1}, Resized: Size{1, 1}, Window: Rect{0, 0, 1, 1}, Canvas: Size{1, 1}}},

		// zoom and dpr multiply the box
		{"w zoom dpr", Size{1000, 500}, "w=100&zoom=2&dpr=1.5", fitted(1000, 500, 300, 150)},
		{"w zoom dpr never enlarges", Size{200, 100}, "w=100&zoom=2&dpr=1.5", full(200, 100)},
		{"w zoom", Size{320, 240}, "w=100&zoom=2", fitted(320, 240, 200, 150)},
		{"w dpr rounds", Size{320, 240}, "w=100&dpr=1.5", fitted(320, 240, 150, 113)}, // 112.5
		{"zoom below 1", Size{1000, 500}, "w=200&zoom=0.5", fitted(1000, 500, 100, 50)},
		{"h dpr", Size{1512, 983}, "h=100&dpr=2", fitted(1512, 983, 308, 200)},
		{"fit dpr", Size{1000, 1000}, "fit=100,50&dpr=3", fitted(1000, 1000, 150, 150)},
		{"resize dpr", Size{1000, 1000}, "resize=100,50&dpr=2",
			Plan{Crop: Rect{0, 0, 1000, 1000}, Resized: Size{200, 200}, Window: Rect{0, 50, 200, 100}, Canvas: Size{200, 100}}},
		{"resize zoom dpr never enlarges", Size{320, 240}, "resize=200,100&zoom=2&dpr=2",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{320, 240}, Window: Rect{0, 40, 320, 160}, Canvas: Size{320, 160}}},
		{"lb dpr", Size{320, 240}, "lb=100,100&dpr=2",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{200, 150}, Window: Rect{0, 0, 200, 150}, Canvas: Size{200, 200}, Offset: Size{0, 25}}},
		{"crop then w dpr", Size{320, 240}, "crop=0,0,50,50&w=40&dpr=2",
			Plan{Crop: Rect{0, 0, 160, 120}, Resized: Size{80, 60}, Window: Rect{0, 0, 80, 60}, Canvas: Size{80, 60}}},

		// MaxDimension caps the multiplied box
		{"w capped", Size{20000, 10000}, "w=8192&dpr=5", fitted(20000, 10000, 8192, 4096)},
		{"w zoom capped", Size{20000, 10000}, "w=5000&zoom=2", fitted(20000, 10000, 8192, 4096)},
		{"lb canvas capped", Size{1000, 1000}, "lb=5000,5000&dpr=2",
			Plan{Crop: Rect{0, 0, 1000, 1000}, Resized: Size{1000, 1000}, Window: Rect{0, 0, 1000, 1000}, Canvas: Size{8192, 8192}, Offset: Size{3596, 3596}}},
		{"lb max canvas", Size{100, 50}, "lb=8192,8192&zoom=5&dpr=5",
			Plan{Crop: Rect{0, 0, 100, 50}, Resized: Size{100, 50}, Window: Rect{0, 0, 100, 50}, Canvas: Size{8192, 8192}, Offset: Size{4046, 4071}}},
		{"resize capped square", Size{10000, 10000}, "resize=5000,5000&dpr=2",
			Plan{Crop: Rect{0, 0, 10000, 10000}, Resized: Size{8192, 8192}, Window: Rect{0, 0, 8192, 8192}, Canvas: Size{8192, 8192}}},

		// percentages of the image being sized
		{"w percent", Size{320, 240}, "w=50%",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{160, 120}, Window: Rect{0, 0, 160, 120}, Canvas: Size{160, 120}}},
		{"h percent", Size{320, 240}, "h=25%",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{80, 60}, Window: Rect{0, 0, 80, 60}, Canvas: Size{80, 60}}},
		{"w percent of the crop", Size{400, 200}, "crop=0,0,50,100&w=10%",
			Plan{Crop: Rect{0, 0, 200, 200}, Resized: Size{20, 20}, Window: Rect{0, 0, 20, 20}, Canvas: Size{20, 20}}},
		{"percent cover", Size{320, 240}, "crop=0,0,100,100&w=50%&h=25%",
			Plan{Crop: Rect{0, 0, 320, 240}, Resized: Size{160, 120}, Window: Rect{0, 30, 160, 60}, Canvas: Size{160, 60}}},
		{"w percent after rot", Size{320, 240}, "rot=90&w=50%",
			Plan{Rotate: 90, Crop: Rect{0, 0, 240, 320}, Resized: Size{120, 160}, Window: Rect{0, 0, 120, 160}, Canvas: Size{120, 160}}},

		// rotation: the sizes refer to the rotated image
		{"rot 90 w", Size{320, 240}, "rot=90&w=120",
			Plan{Rotate: 90, Crop: Rect{0, 0, 240, 320}, Resized: Size{120, 160}, Window: Rect{0, 0, 120, 160}, Canvas: Size{120, 160}}},
		{"rot 270 crop", Size{320, 240}, "rotate=270&crop=10px,20px,100px,50px",
			Plan{Rotate: 270, Crop: Rect{10, 20, 100, 50}, Resized: Size{100, 50}, Window: Rect{0, 0, 100, 50}, Canvas: Size{100, 50}}},
		{"rot 180 flip", Size{320, 240}, "rot=180&flip=hv&resize=100,100",
			Plan{Rotate: 180, Flip: FlipHV, Crop: Rect{0, 0, 320, 240}, Resized: Size{133, 100}, Window: Rect{16, 0, 100, 100}, Canvas: Size{100, 100}}},

		// trim: fixed edges come off first; auto plans on the whole source
		{"trim edges", Size{320, 240}, "trim=10,20,30,40",
			Plan{Edges: Rect{40, 10, 260, 200}, Crop: Rect{0, 0, 260, 200}, Resized: Size{260, 200}, Window: Rect{0, 0, 260, 200}, Canvas: Size{260, 200}}},
		{"trim edges rot crop", Size{320, 240}, "trim=10,20,30,40&rot=90&crop=0,0,50,50",
			Plan{Edges: Rect{40, 10, 260, 200}, Rotate: 90, Crop: Rect{0, 0, 100, 130}, Resized: Size{100, 130}, Window: Rect{0, 0, 100, 130}, Canvas: Size{100, 130}}},
		{"trim auto", Size{320, 240}, "trim=auto&w=100",
			Plan{AutoTrim: true, Crop: Rect{0, 0, 320, 240}, Resized: Size{100, 75}, Window: Rect{0, 0, 100, 75}, Canvas: Size{100, 75}}},

		// focal point: the window is centred on it, within the image
		{"fp centre", Size{400, 200}, "resize=100,100&fp-x=0.5&fp-y=0.5",
			Plan{Crop: Rect{0, 0, 400, 200}, Resized: Size{200, 100}, Window: Rect{50, 0, 100, 100}, Canvas: Size{100, 100}}},
		{"fp left third", Size{400, 200}, "resize=100,100&fp-x=0.3",
			Plan{Crop: Rect{0, 0, 400, 200}, Resized: Size{200, 100}, Window: Rect{10, 0, 100, 100}, Canvas: Size{100, 100}}},
		{"fp clamped", Size{400, 200}, "resize=100,100&fp-x=0.99&fp-y=0&gravity=west",
			Plan{Crop: Rect{0, 0, 400, 200}, Resized: Size{200, 100}, Window: Rect{100, 0, 100, 100}, Canvas: Size{100, 100}}},
		{"fp overrides strategy", Size{200, 400}, "resize=100,100&fp-y=0.25&crop_strategy=smart",
			Plan{Crop: Rect{0, 0, 200, 400}, Resized: Size{100, 200}, Window: Rect{0, 0, 100, 100}, Canvas: Size{100, 100}}},
		{"fp y", Size{200, 400}, "resize=100,100&fp-y=0.75",
			Plan{Crop: Rect{0, 0, 200, 400}, Resized: Size{100, 200}, Window: Rect{0, 100, 100, 100}, Canvas: Size{100, 100}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want.Edges == (Rect{}) {
				tt.want.Edges = Rect{0, 0, tt.src.W, tt.src.H}
			}
			o := optionsOf(t, tt.query)
			got, err := NewPlan(tt.src, o)
			if err != nil {
				t.Fatalf("NewPlan(%v, %q): %v", tt.src, tt.query, err)
			}
			if got != tt.want {
				t.Errorf("NewPlan(%v, %q)\n got %+v\nwant %+v", tt.src, tt.query, got, tt.want)
			}
			checkPlanInvariants(t, tt.src, o, got)
		})
	}
}

// checkPlanInvariants checks what must hold for every plan.
func checkPlanInvariants(t *testing.T, src Size, o Options, p Plan) {
	t.Helper()
	c := p.SourceCrop()
	if c.X < 0 || c.Y < 0 || c.W < 1 || c.H < 1 || c.X+c.W > src.W || c.Y+c.H > src.H {
		t.Errorf("source crop %+v is not inside the %v source", c, src)
	}
	c = p.Crop
	if p.Resized.W > c.W || p.Resized.H > c.H {
		t.Errorf("resized %v enlarges the %dx%d region", p.Resized, c.W, c.H)
	}
	tr := p.Window
	if tr.X < 0 || tr.Y < 0 || tr.W < 1 || tr.H < 1 || tr.X+tr.W > p.Resized.W || tr.Y+tr.H > p.Resized.H {
		t.Errorf("trim %+v is not inside the resized %v", tr, p.Resized)
	}
	if p.Canvas.W > MaxDimension || p.Canvas.H > MaxDimension {
		t.Errorf("canvas %v exceeds MaxDimension", p.Canvas)
	}
	if p.Offset.W < 0 || p.Offset.H < 0 || p.Offset.W+tr.W > p.Canvas.W || p.Offset.H+tr.H > p.Canvas.H {
		t.Errorf("trim %+v at offset %v does not fit the canvas %v", tr, p.Offset, p.Canvas)
	}
	if o.Mode != ModeLetterbox && (p.Canvas != Size{tr.W, tr.H} || p.Offset != Size{}) {
		t.Errorf("canvas %v offset %v: only a letterbox pads", p.Canvas, p.Offset)
	}
}

// SourceCrop maps the plan's crop back onto the upright source: every
// pixel of the crop, oriented as the plan orients, is the pixel of the
// source it says.
func TestSourceCrop(t *testing.T) {
	const w, h = 7, 5
	src := Size{w, h}
	// pixel value: its position in the upright source
	at := func(x, y int) int { return y*w + x }
	for _, rot := range []int{0, 90, 180, 270} {
		for _, flip := range []Flip{"", FlipH, FlipV, FlipHV} {
			for _, trim := range []string{"", "&trim=1,2,0,1"} {
				q := "rot=" + strconv.Itoa(rot) + "&flip=" + string(flip) + trim + "&crop=1px,1px,3px,2px"
				if flip == "" {
					q = strings.Replace(q, "&flip=", "", 1)
				}
				o := optionsOf(t, q)
				p, err := NewPlan(src, o)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				// The oriented image, built pixel by pixel from the trimmed source.
				e := p.Edges
				img := make([][]int, e.H)
				for y := range img {
					img[y] = make([]int, e.W)
					for x := range img[y] {
						img[y][x] = at(e.X+x, e.Y+y)
					}
				}
				img = orientGrid(img, rot, flip)
				sc := p.SourceCrop()
				for y := 0; y < p.Crop.H; y++ {
					for x := 0; x < p.Crop.W; x++ {
						got := img[p.Crop.Y+y][p.Crop.X+x]
						// the same pixel must lie inside the source crop
						gx, gy := got%w, got/w
						if gx < sc.X || gx >= sc.X+sc.W || gy < sc.Y || gy >= sc.Y+sc.H {
							t.Fatalf("%s: oriented pixel (%d,%d) is source (%d,%d), outside SourceCrop %+v", q, x, y, gx, gy, sc)
						}
					}
				}
				if sc.W*sc.H != p.Crop.W*p.Crop.H {
					t.Errorf("%s: SourceCrop %+v is not the size of Crop %+v", q, sc, p.Crop)
				}
			}
		}
	}
}

// orientGrid rotates a grid clockwise by rot, then flips it.
func orientGrid(g [][]int, rot int, flip Flip) [][]int {
	for ; rot > 0; rot -= 90 {
		h, w := len(g), len(g[0])
		r := make([][]int, w)
		for y := range r {
			r[y] = make([]int, h)
			for x := range r[y] {
				r[y][x] = g[h-1-x][y]
			}
		}
		g = r
	}
	if flip == FlipH || flip == FlipHV {
		for _, row := range g {
			slices.Reverse(row)
		}
	}
	if flip == FlipV || flip == FlipHV {
		slices.Reverse(g)
	}
	return g
}

func TestNewPlanResizeGravity(t *testing.T) {
	// resize=100,100 on 320×240 overflows horizontally (133×100: 33 spare
	// columns); resize=100,50 overflows vertically (100×75: 25 spare rows).
	tests := []struct {
		gravity string
		x, y    int // trim position in the horizontal and the vertical case
	}{
		{"", 16, 12},
		{"center", 16, 12},
		{"north", 16, 0},
		{"northeast", 33, 0},
		{"east", 33, 12},
		{"southeast", 33, 25},
		{"south", 16, 25},
		{"southwest", 0, 25},
		{"west", 0, 12},
		{"northwest", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.gravity, func(t *testing.T) {
			g := ""
			if tt.gravity != "" {
				g = "&gravity=" + tt.gravity
			}
			h, err := NewPlan(Size{320, 240}, optionsOf(t, "resize=100,100"+g))
			if err != nil {
				t.Fatal(err)
			}
			want := Plan{Edges: Rect{0, 0, 320, 240}, Crop: Rect{0, 0, 320, 240}, Resized: Size{133, 100}, Window: Rect{tt.x, 0, 100, 100}, Canvas: Size{100, 100}}
			if h != want {
				t.Errorf("horizontal: got %+v, want %+v", h, want)
			}
			v, err := NewPlan(Size{320, 240}, optionsOf(t, "resize=100,50"+g))
			if err != nil {
				t.Fatal(err)
			}
			want = Plan{Edges: Rect{0, 0, 320, 240}, Crop: Rect{0, 0, 320, 240}, Resized: Size{100, 75}, Window: Rect{0, tt.y, 100, 50}, Canvas: Size{100, 50}}
			if v != want {
				t.Errorf("vertical: got %+v, want %+v", v, want)
			}
		})
	}
}

// TestNewPlanResizeExact checks that resize yields exactly W×H whenever the
// source is large enough, whatever the aspect ratios.
func TestNewPlanResizeExact(t *testing.T) {
	sources := []Size{{1512, 983}, {983, 1512}, {5141, 3434}, {1000, 1000}, {8000, 10}, {10, 8000}, {333, 777}}
	boxes := []string{"1,1", "10,10", "100,37", "37,100", "300,200", "7,9", "299,301"}
	for _, src := range sources {
		for _, box := range boxes {
			for _, g := range []string{"", "&gravity=northwest", "&gravity=southeast", "&crop_strategy=smart"} {
				q := "resize=" + box + g
				o := optionsOf(t, q)
				p, err := NewPlan(src, o)
				if err != nil {
					t.Fatalf("NewPlan(%v, %q): %v", src, q, err)
				}
				if o.Width <= src.W && o.Height <= src.H && (p.Canvas != Size{o.Width, o.Height}) {
					t.Errorf("NewPlan(%v, %q): canvas %v, want exactly %dx%d", src, q, p.Canvas, o.Width, o.Height)
				}
				if p.Resized.W != p.Window.W && p.Resized.H != p.Window.H {
					t.Errorf("NewPlan(%v, %q): resized %v does not cover trim %+v on one side exactly", src, q, p.Resized, p.Window)
				}
				checkPlanInvariants(t, src, o, p)
			}
		}
	}
}

func TestNewPlanCropOutside(t *testing.T) {
	tests := []struct {
		src   Size
		query string
	}{
		{Size{320, 240}, "crop=320px,0px,10px,10px"},
		{Size{320, 240}, "crop=0px,240px,10px,10px"},
		{Size{320, 240}, "crop=1000px,1000px,10px,10px"},
		{Size{320, 240}, "crop=100,0,10,10"},
		{Size{320, 240}, "crop=0,100,10,10"},
		{Size{320, 240}, "crop=100,100,100,100&w=50"},
		{Size{320, 240}, "crop=320px,0,50,50&resize=10,10"},
		{Size{10, 10}, "crop=0,0,1,1"}, // rounds to a 0×0 region
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			p, err := NewPlan(tt.src, optionsOf(t, tt.query))
			if err == nil {
				t.Fatalf("NewPlan(%v, %q) = %+v, want a 400 naming crop", tt.src, tt.query, p)
			}
			var pe *prism.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *prism.Error", err, err)
			}
			if pe.Status != http.StatusBadRequest || pe.Code != prism.CodeInvalidParam || pe.Param != "crop" {
				t.Errorf("error = {Status %d, Code %q, Param %q}, want {400, %q, \"crop\"}", pe.Status, pe.Code, pe.Param, prism.CodeInvalidParam)
			}
			if p != (Plan{}) {
				t.Errorf("plan %+v returned alongside the error", p)
			}
		})
	}
}

// TestNewPlanCapKeepsAspect: when zoom and dpr push a resize or lb box past
// MaxDimension, the box shrinks as a whole, keeping the W:H the URL asked for.
func TestNewPlanCapKeepsAspect(t *testing.T) {
	tests := []struct {
		src   Size
		query string
		want  Plan
	}{
		{Size{1000, 1000}, "resize=6000,3000&dpr=2",
			Plan{Crop: Rect{0, 0, 1000, 1000}, Resized: Size{1000, 1000}, Window: Rect{0, 250, 1000, 500}, Canvas: Size{1000, 500}}},
		{Size{10000, 10000}, "lb=8000,4000&dpr=2",
			Plan{Crop: Rect{0, 0, 10000, 10000}, Resized: Size{4096, 4096}, Window: Rect{0, 0, 4096, 4096}, Canvas: Size{8192, 4096}, Offset: Size{2048, 0}}},
	}
	for _, tt := range tests {
		got, err := NewPlan(tt.src, optionsOf(t, tt.query))
		if err != nil {
			t.Fatal(err)
		}
		tt.want.Edges = Rect{0, 0, tt.src.W, tt.src.H}
		if got != tt.want {
			t.Errorf("NewPlan(%v, %q)\n got %+v\nwant %+v", tt.src, tt.query, got, tt.want)
		}
	}
}
