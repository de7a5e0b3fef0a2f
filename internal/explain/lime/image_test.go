package lime

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/ferryserve/ferry/internal/explain/superpixel"
)

// greyQuadrants is a 16×16 grey image of value 1 cut into four 8×8
// superpixels: 0 top left, 1 top right, 2 bottom left, 3 bottom right.
func greyQuadrants() (superpixel.Image, *superpixel.Segments) {
	img := superpixel.Image{H: 16, W: 16, C: 1, Pix: make([]float64, 256)}
	seg := &superpixel.Segments{H: 16, W: 16, N: 4, Labels: make([]int32, 256)}
	for p := range img.Pix {
		img.Pix[p] = 1
		seg.Labels[p] = int32(2*(p/16/8) + p%16/8)
	}
	return img, seg
}

// quadrantModel scores class 1 as 0.2 + 0.5·(top left on) - 0.1·(top
// right on) + 0.2·(bottom right on), class 0 as its complement: LIME's
// local model is then the model, and its weights the model's.
func quadrantModel(_ context.Context, images [][]float64) ([][]float64, error) {
	out := make([][]float64, len(images))
	for i, im := range images {
		on := func(y, x int) float64 { return im[y*16+x] }
		p := 0.2 + 0.5*on(0, 0) - 0.1*on(0, 8) + 0.2*on(8, 8)
		out[i] = []float64{1 - p, p}
	}
	return out, nil
}

func TestLimeImageRecoversSuperpixelWeights(t *testing.T) {
	img, seg := greyQuadrants()
	res, err := ExplainImage(t.Context(), quadrantModel, img, seg, ImageConfig{Seed: 4, TopLabels: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Explanations) != 2 || res.Explanations[0].Label != 1 || math.Abs(res.Prediction[1]-0.8) > 1e-12 {
		t.Fatalf("%+v", res)
	}
	e := res.Explanations[0]
	if !slices.Equal(e.Features[:3], []int{0, 3, 1}) {
		t.Fatalf("features %v weights %v", e.Features, e.Weights)
	}
	want := map[int]float64{0: 0.5, 3: 0.2, 1: -0.1, 2: 0}
	for k, f := range e.Features {
		if math.Abs(e.Weights[k]-want[f]) > 0.01 {
			t.Errorf("superpixel %d: weight %v, want %v", f, e.Weights[k], want[f])
		}
	}
	pos := Mask(seg, e, true, 10, 0.01)
	both := Mask(seg, e, false, 10, 0.01)
	for p, k := range seg.Labels {
		wantPos, wantBoth := map[int32]int{0: 1, 3: 1}[k], map[int32]int{0: 1, 3: 1, 1: -1}[k]
		if pos[p] != wantPos || both[p] != wantBoth {
			t.Fatalf("pixel %d (superpixel %d): masks %d and %d, want %d and %d", p, k, pos[p], both[p], wantPos, wantBoth)
		}
	}
	// Class 0 is the complement: the same weights negated.
	if e0 := res.Explanations[1]; e0.Label != 0 || math.Abs(e0.Weights[0]+0.5) > 0.01 {
		t.Errorf("class 0: %+v", e0)
	}
	if only := Mask(seg, e, true, 1, 0.01); only[8*16+8] != 0 || only[0] != 1 {
		t.Error("num_features 1 kept more than the top superpixel")
	}
}

func TestLimeImageErrors(t *testing.T) {
	img, seg := greyQuadrants()
	for _, cfg := range []ImageConfig{{NumSamples: 1}, {TopLabels: -1}, {BatchSize: 1 << 20}} {
		if _, err := ExplainImage(t.Context(), quadrantModel, img, seg, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	short := func(_ context.Context, images [][]float64) ([][]float64, error) { return make([][]float64, 1), nil }
	if _, err := ExplainImage(t.Context(), short, img, seg, ImageConfig{}); err == nil {
		t.Error("a model that answers one output per batch accepted")
	}
}
