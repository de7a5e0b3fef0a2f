package superpixel

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// patches paints an h×w RGB image (values in [0, 1]) whose colour at
// (y, x) is colors[region(y, x)].
func patches(h, w int, colors [][3]float64, region func(y, x int) int) Image {
	im := Image{H: h, W: w, C: 3, Pix: make([]float64, h*w*3)}
	for y := range h {
		for x := range w {
			copy(im.Pix[(y*w+x)*3:], colors[region(y, x)][:])
		}
	}
	return im
}

var palette = [][3]float64{
	{0.9, 0.1, 0.1}, {0.1, 0.8, 0.2}, {0.1, 0.2, 0.9}, {0.95, 0.9, 0.1},
	{0.6, 0.1, 0.7}, {0.1, 0.8, 0.8}, {0.05, 0.05, 0.05}, {0.95, 0.95, 0.95}, {0.5, 0.3, 0.1},
}

// check asserts what every segmentation must hold: labels 0..N-1 all
// used, numbered in scan order, each one 4-connected piece.
func check(t *testing.T, seg *Segments) {
	t.Helper()
	next := int32(0)
	for _, k := range seg.Labels {
		if k > next || k < 0 {
			t.Fatalf("label %d met before %d", k, next)
		}
		if k == next {
			next++
		}
	}
	if int(next) != seg.N {
		t.Fatalf("%d labels used, N = %d", next, seg.N)
	}
	seen := make([]bool, seg.N)
	mark := make([]bool, len(seg.Labels))
	for p, k := range seg.Labels {
		if mark[p] {
			continue
		}
		if seen[k] {
			t.Fatalf("superpixel %d is in more than one piece", k)
		}
		seen[k] = true
		stack := []int{p}
		mark[p] = true
		for len(stack) > 0 {
			q := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			y, x := q/seg.W, q%seg.W
			for _, n := range [][2]int{{y - 1, x}, {y + 1, x}, {y, x - 1}, {y, x + 1}} {
				if n[0] < 0 || n[0] >= seg.H || n[1] < 0 || n[1] >= seg.W {
					continue
				}
				r := n[0]*seg.W + n[1]
				if !mark[r] && seg.Labels[r] == k {
					mark[r] = true
					stack = append(stack, r)
				}
			}
		}
	}
}

// pure reports whether every superpixel lies inside one region.
func pure(seg *Segments, region func(y, x int) int) bool {
	of := map[int32]int{}
	for p, k := range seg.Labels {
		r := region(p/seg.W, p%seg.W)
		if was, ok := of[k]; ok && was != r {
			return false
		}
		of[k] = r
	}
	return true
}

// TestQuadrantsAreSegments: four uniform quadrants asked for as four
// superpixels come back as exactly those quadrants.
func TestQuadrantsAreSegments(t *testing.T) {
	quad := func(y, x int) int { return 2*(y/20) + x/20 }
	im := patches(40, 40, palette, quad)
	seg, err := SLIC(im, SLICConfig{NSegments: 4})
	if err != nil {
		t.Fatal(err)
	}
	check(t, seg)
	if seg.N != 4 || !pure(seg, quad) {
		t.Fatalf("%d superpixels, pure %v", seg.N, pure(seg, quad))
	}
}

// TestPatchesOffTheGrid: uniform patches whose edges are not on SLIC's
// starting grid (stripes of uneven widths, a disc, a diagonal) are never
// straddled by a superpixel, with more superpixels than patches, in RGB
// (CIELAB distances) and in one grey channel.
func TestPatchesOffTheGrid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h, w   int
		n      int
		region func(y, x int) int
	}{
		{"stripes", 48, 48, 16, func(_, x int) int {
			switch {
			case x < 17:
				return 0
			case x < 30:
				return 1
			}
			return 2
		}},
		{"disc", 50, 60, 30, func(y, x int) int {
			if (y-22)*(y-22)+(x-31)*(x-31) < 15*15 {
				return 3
			}
			return 6
		}},
		{"diagonal and block", 45, 45, 25, func(y, x int) int {
			if y > 10 && y < 25 && x > 5 && x < 38 {
				return 4
			}
			if x > y {
				return 7
			}
			return 2
		}},
	} {
		im := patches(tc.h, tc.w, palette, tc.region)
		seg, err := SLIC(im, SLICConfig{NSegments: tc.n})
		if err != nil {
			t.Fatal(err)
		}
		check(t, seg)
		if !pure(seg, tc.region) || seg.N < 3 {
			t.Errorf("%s RGB: %d superpixels, pure %v", tc.name, seg.N, pure(seg, tc.region))
		}
		grey := Image{H: tc.h, W: tc.w, C: 1, Pix: make([]float64, tc.h*tc.w)}
		for p := range grey.Pix {
			grey.Pix[p] = float64(tc.region(p/tc.w, p%tc.w)) / 8
		}
		seg, err = SLIC(grey, SLICConfig{NSegments: tc.n, Compactness: 0.1})
		if err != nil {
			t.Fatal(err)
		}
		check(t, seg)
		if !pure(seg, tc.region) {
			t.Errorf("%s grey: %d superpixels not pure", tc.name, seg.N)
		}
	}
}

// TestUniformImageIsAGrid: with nothing to follow, superpixels are the
// starting grid's cells, about NSegments of them, of similar size.
func TestUniformImageIsAGrid(t *testing.T) {
	im := patches(60, 60, palette, func(int, int) int { return 0 })
	seg, err := SLIC(im, SLICConfig{NSegments: 36})
	if err != nil {
		t.Fatal(err)
	}
	check(t, seg)
	sizes := make([]int, seg.N)
	for _, k := range seg.Labels {
		sizes[k]++
	}
	for k, n := range sizes {
		if n != 100 {
			t.Fatalf("%d superpixels; superpixel %d has %d pixels, want 100", seg.N, k, n)
		}
	}
}

// TestNoiseIsConnected: on noise every superpixel is still one piece and
// none is smaller than half the mean size unless it is alone.
func TestNoiseIsConnected(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	im := Image{H: 33, W: 47, C: 3, Pix: make([]float64, 33*47*3)}
	for i := range im.Pix {
		im.Pix[i] = rng.Float64()
	}
	seg, err := SLIC(im, SLICConfig{NSegments: 20, Sigma: 1})
	if err != nil {
		t.Fatal(err)
	}
	check(t, seg)
	sizes := make([]int, seg.N)
	for _, k := range seg.Labels {
		sizes[k]++
	}
	for k, n := range sizes {
		if n < 33*47/20/2/2 { // grid cells number about 20; half a cell, with slack for rounding
			t.Errorf("superpixel %d has %d pixels", k, n)
		}
	}
}

func TestMeans(t *testing.T) {
	im := Image{H: 1, W: 4, C: 1, Pix: []float64{1, 3, 10, 20}}
	seg := &Segments{H: 1, W: 4, N: 2, Labels: []int32{0, 0, 1, 1}}
	got := Means(im, seg)
	for i, want := range []float64{2, 2, 15, 15} {
		if got.Pix[i] != want {
			t.Fatalf("%v", got.Pix)
		}
	}
}

func TestSLICErrors(t *testing.T) {
	for _, tc := range []struct {
		im   Image
		cfg  SLICConfig
		want string
	}{
		{Image{H: 2, W: 2, C: 1, Pix: make([]float64, 3)}, SLICConfig{}, "holds 3 values"},
		{Image{H: 2, W: 2, C: 5, Pix: make([]float64, 20)}, SLICConfig{}, "channels"},
		{Image{H: 1 << 12, W: 1<<10 + 1, C: 1}, SLICConfig{}, "pixels"},
		{Image{H: 1, W: 1, C: 1, Pix: []float64{0}}, SLICConfig{NSegments: -1}, "n_segments"},
		{Image{H: 1, W: 1, C: 1, Pix: []float64{0}}, SLICConfig{Compactness: -1}, "compactness"},
	} {
		if _, err := SLIC(tc.im, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
}

// FuzzSLIC: any small image and settings give a valid segmentation or
// an error, never a panic.
func FuzzSLIC(f *testing.F) {
	f.Add(uint8(8), uint8(8), uint8(1), uint8(16), uint64(1))
	f.Add(uint8(1), uint8(30), uint8(3), uint8(100), uint64(2))
	f.Fuzz(func(t *testing.T, h, w, c, n uint8, seed uint64) {
		im := Image{H: int(h%40) + 1, W: int(w%40) + 1, C: int(c%4) + 1}
		rng := rand.New(rand.NewPCG(seed, 0))
		im.Pix = make([]float64, im.H*im.W*im.C)
		for i := range im.Pix {
			im.Pix[i] = float64(rng.IntN(4)) / 3
		}
		seg, err := SLIC(im, SLICConfig{NSegments: int(n) + 1})
		if err != nil {
			t.Fatal(err)
		}
		check(t, seg)
	})
}

func BenchmarkSLIC(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	im := patches(224, 224, palette, func(y, x int) int { return (y/37 + x/29 + rng.IntN(2)) % len(palette) })
	for b.Loop() {
		if _, err := SLIC(im, SLICConfig{NSegments: 100}); err != nil {
			b.Fatal(err)
		}
	}
}

// numbered asserts labels 0..N-1, all used, numbered in scan order.
func numbered(t *testing.T, seg *Segments) {
	t.Helper()
	next := int32(0)
	for _, k := range seg.Labels {
		if k > next || k < 0 {
			t.Fatalf("label %d met before %d", k, next)
		}
		if k == next {
			next++
		}
	}
	if int(next) != seg.N {
		t.Fatalf("%d labels used, N = %d", next, seg.N)
	}
}

// TestQuickshiftPatches: with links shorter than the colour steps
// between patches, no segment straddles two uniform patches, in RGB and
// grey; a seed repeats the segmentation.
func TestQuickshiftPatches(t *testing.T) {
	region := func(y, x int) int {
		if (y-14)*(y-14)+(x-18)*(x-18) < 81 {
			return 3
		}
		if x < 13 {
			return 0
		}
		return 6
	}
	im := patches(30, 36, palette, region)
	seg, err := Quickshift(im, QuickshiftConfig{KernelSize: 2, MaxDist: 4, Ratio: 1})
	if err != nil {
		t.Fatal(err)
	}
	numbered(t, seg)
	if !pure(seg, region) || seg.N < 3 {
		t.Fatalf("%d segments, pure %v", seg.N, pure(seg, region))
	}
	again, _ := Quickshift(im, QuickshiftConfig{KernelSize: 2, MaxDist: 4, Ratio: 1})
	for p := range seg.Labels {
		if seg.Labels[p] != again.Labels[p] {
			t.Fatal("the same seed gave another segmentation")
		}
	}
	grey := Image{H: 30, W: 36, C: 1, Pix: make([]float64, 30*36)}
	for p := range grey.Pix {
		grey.Pix[p] = float64(region(p/36, p%36)) * 10
	}
	seg, err = Quickshift(grey, QuickshiftConfig{KernelSize: 2, MaxDist: 4, Ratio: 1})
	if err != nil {
		t.Fatal(err)
	}
	numbered(t, seg)
	if !pure(seg, region) {
		t.Fatalf("grey: %d segments not pure", seg.N)
	}
}

// TestQuickshiftOneMode: a single bright blob on black with AIX's
// parameters links every pixel of the blob to its centre's mode.
func TestQuickshiftOneMode(t *testing.T) {
	im := Image{H: 15, W: 15, C: 1, Pix: make([]float64, 225)}
	for p := range im.Pix {
		dy, dx := float64(p/15-7), float64(p%15-7)
		im.Pix[p] = math.Exp(-(dy*dy + dx*dx) / 8)
	}
	seg, err := Quickshift(im, QuickshiftConfig{KernelSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	numbered(t, seg)
	centre := seg.Labels[7*15+7]
	for _, p := range []int{6*15 + 7, 7*15 + 9, 9*15 + 9, 5*15 + 5} {
		if seg.Labels[p] != centre {
			t.Fatalf("pixel %d in segment %d, the centre in %d (%d segments)", p, seg.Labels[p], centre, seg.N)
		}
	}
}

func TestQuickshiftErrors(t *testing.T) {
	im := Image{H: 2, W: 2, C: 1, Pix: make([]float64, 4)}
	for _, cfg := range []QuickshiftConfig{{KernelSize: -1}, {Ratio: 2}, {MaxDist: -3}, {KernelSize: 50}} {
		if _, err := Quickshift(im, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func FuzzQuickshift(f *testing.F) {
	f.Add(uint8(8), uint8(8), uint8(1), uint8(10), uint64(1))
	f.Fuzz(func(t *testing.T, h, w, c, k uint8, seed uint64) {
		im := Image{H: int(h%24) + 1, W: int(w%24) + 1, C: int(c%4) + 1}
		rng := rand.New(rand.NewPCG(seed, 0))
		im.Pix = make([]float64, im.H*im.W*im.C)
		for i := range im.Pix {
			im.Pix[i] = float64(rng.IntN(4)) / 3
		}
		seg, err := Quickshift(im, QuickshiftConfig{KernelSize: float64(k%30)/10 + 0.1, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		numbered(t, seg)
	})
}

func BenchmarkQuickshift(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	im := patches(224, 224, palette, func(y, x int) int { return (y/37 + x/29 + rng.IntN(2)) % len(palette) })
	for b.Loop() {
		if _, err := Quickshift(im, QuickshiftConfig{}); err != nil {
			b.Fatal(err)
		}
	}
}
