package anchor

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ferryserve/ferry/internal/explain/superpixel"
)

// quadrants is a 16×16 grey image cut into four 8×8 superpixels (0 top
// left, 1 top right, 2 bottom left, 3 bottom right), each a
// checkerboard of 0 and 1: switched off (its mean, 0.5) it loses its
// texture.
func quadrants() (superpixel.Image, *superpixel.Segments) {
	img := superpixel.Image{H: 16, W: 16, C: 1, Pix: make([]float64, 256)}
	seg := &superpixel.Segments{H: 16, W: 16, N: 4, Labels: make([]int32, 256)}
	for p := range img.Pix {
		y, x := p/16, p%16
		img.Pix[p] = float64((y + x) % 2)
		seg.Labels[p] = int32(2*(y/8) + x/8)
	}
	return img, seg
}

// textured reports which quadrants of a 16×16 image keep their
// checkerboard.
func textured(img []float64) [4]bool {
	var out [4]bool
	for q := range 4 {
		y0, x0 := 8*(q/2), 8*(q%2)
		out[q] = img[y0*16+x0] != img[y0*16+x0+1]
	}
	return out
}

// TestImageAnchor: the model says 1 when the top-left quadrant is
// textured and so is one of the bottom two. The anchor must hold the top
// left and a bottom quadrant, and its precision, re-checked on 5000
// perturbations drawn independently of the search, must reach the
// threshold.
func TestImageAnchor(t *testing.T) {
	img, seg := quadrants()
	model := func(img []float64) int {
		q := textured(img)
		if q[0] && (q[2] || q[3]) {
			return 1
		}
		return 0
	}
	classify := func(_ context.Context, images [][]float64) ([]int, error) {
		out := make([]int, len(images))
		for i, im := range images {
			out[i] = model(im)
		}
		return out, nil
	}
	res, err := ExplainImage(t.Context(), classify, img, seg, ImageConfig{Config: Config{Seed: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Label != 1 || !res.Reached || len(res.Features) != 2 || !slices.Contains(res.Features, 0) ||
		(!slices.Contains(res.Features, 2) && !slices.Contains(res.Features, 3)) {
		t.Fatalf("anchor %v, label %d, precision %v", res.Features, res.Label, res.Precision)
	}
	sp := &imageSpace{img: img, seg: seg, off: superpixel.Means(img, seg).Pix, p: 0.5}
	rng := rand.New(rand.NewPCG(99, 1))
	same := 0
	for range 5000 {
		if model(sp.render(sp.keep(rng, res.Features))) == 1 {
			same++
		}
	}
	if p := float64(same) / 5000; p < 0.95 {
		t.Fatalf("re-checked precision %v", p)
	}
	// The anchor image keeps the anchor's pixels and zeroes the rest.
	for p, k := range seg.Labels {
		if want := img.Pix[p] * b2f(slices.Contains(res.Features, int(k))); res.Anchor[p] != want {
			t.Fatalf("anchor pixel %d: %v, want %v", p, res.Anchor[p], want)
		}
	}
	if res.Coverage < 0.15 || res.Coverage > 0.35 { // two superpixels kept: 1/4
		t.Errorf("coverage %v", res.Coverage)
	}
	for _, ex := range res.CoveredTrue {
		if model(ex) != 1 {
			t.Fatal("covered_true example the model labels otherwise")
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func TestImageAnchorErrors(t *testing.T) {
	img, seg := quadrants()
	classify := func(_ context.Context, images [][]float64) ([]int, error) { return make([]int, len(images)), nil }
	if _, err := ExplainImage(t.Context(), classify, img, seg, ImageConfig{PSample: 2}); err == nil {
		t.Error("p_sample 2 accepted")
	}
	big := superpixel.Image{H: 2048, W: 2048, C: 3, Pix: make([]float64, 2048*2048*3)}
	if _, err := ExplainImage(t.Context(), classify, big, seg, ImageConfig{}); err == nil {
		t.Error("a batch of 100 images of 12M values accepted")
	}
}
