package lime

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ferryserve/ferry/internal/explain/superpixel"
)

// maxBatchBytes bounds the perturbed images of one model call.
const maxBatchBytes = 256 << 20

// ImageConfig configures LIME on images, lime's LimeImageExplainer as
// KServe's AIX explainer calls it (hide_color 0, kernel width 0.25 on
// cosine distances, ridge alpha 1). Zero values take the defaults.
type ImageConfig struct {
	NumSamples int // perturbed images (1000)
	TopLabels  int // classes explained, most probable first (10)
	BatchSize  int // images per model call (10)
	Seed       uint64
}

// Defaults fills zero values.
func (c ImageConfig) Defaults() ImageConfig {
	if c.NumSamples == 0 {
		c.NumSamples = 1000
	}
	if c.TopLabels == 0 {
		c.TopLabels = 10
	}
	if c.BatchSize == 0 {
		c.BatchSize = 10
	}
	return c
}

// Validate checks a defaulted configuration, naming the key.
func (c ImageConfig) Validate() error {
	switch {
	case c.NumSamples < 2 || c.NumSamples > 100000:
		return fmt.Errorf("num_samples %d not in [2, 100000]", c.NumSamples)
	case c.TopLabels < 1:
		return fmt.Errorf("top_labels %d must be at least 1", c.TopLabels)
	case c.BatchSize < 1 || c.BatchSize > 10000:
		return fmt.Errorf("batch_size %d not in [1, 10000]", c.BatchSize)
	}
	return nil
}

// ImageResult explains an image's most probable classes over its
// superpixels: each Explanation's Features are superpixels, largest
// |weight| first.
type ImageResult struct {
	Prediction   []float64
	Explanations []Explanation
}

// ExplainImage switches each superpixel of img off (to 0) with
// probability 1/2 in NumSamples samples (the first keeps them all), asks
// the model, weights each sample by sqrt(exp(-d²/0.25²)) of the cosine
// distance d between its on/off vector and all-on, and fits a ridge
// regression (alpha 1) of each of the TopLabels most probable classes
// on the on/off vectors.
func ExplainImage(ctx context.Context, predict PredictFunc, img superpixel.Image, seg *superpixel.Segments, cfg ImageConfig) (*ImageResult, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if n := int64(cfg.BatchSize) * int64(len(img.Pix)) * 8; n > maxBatchBytes {
		return nil, fmt.Errorf("batch_size %d × %d image values is over the %d MiB one batch may take", cfg.BatchSize, len(img.Pix), maxBatchBytes>>20)
	}
	if int64(cfg.NumSamples)*int64(seg.N) > maxSampleValues {
		return nil, fmt.Errorf("num_samples %d × %d superpixels is over the %d values an explanation may hold", cfg.NumSamples, seg.N, maxSampleValues)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x1e))
	n, f := cfg.NumSamples, seg.N
	on := make([][]float64, n)
	flat := make([]float64, n*f)
	for s := range n {
		on[s] = flat[s*f : (s+1)*f]
		for j := range on[s] {
			if s == 0 || rng.IntN(2) == 1 {
				on[s][j] = 1
			}
		}
	}
	outs := make([][]float64, 0, n)
	batch := make([][]float64, 0, cfg.BatchSize)
	pix := make([]float64, cfg.BatchSize*len(img.Pix))
	for start := 0; start < n; start += cfg.BatchSize {
		batch = batch[:0]
		for s := start; s < min(n, start+cfg.BatchSize); s++ {
			im := pix[(s-start)*len(img.Pix) : (s-start+1)*len(img.Pix)]
			for p, k := range seg.Labels {
				for ch := range img.C {
					im[p*img.C+ch] = img.Pix[p*img.C+ch] * on[s][k]
				}
			}
			batch = append(batch, im)
		}
		part, err := predict(ctx, batch)
		if err != nil {
			return nil, err
		}
		if len(part) != len(batch) {
			return nil, fmt.Errorf("lime: the model returned %d outputs for %d images", len(part), len(batch))
		}
		for _, o := range part {
			outs = append(outs, append([]float64(nil), o...)) // the predictor may reuse its buffers
		}
	}
	for i, o := range outs {
		if len(o) == 0 || len(o) != len(outs[0]) {
			return nil, fmt.Errorf("lime: the model returned %d outputs for image %d, %d for image 0", len(o), i, len(outs[0]))
		}
	}
	weights := make([]float64, n)
	for s := range n {
		// Cosine distance to all-on: 1 - (ones kept)/sqrt(kept·f).
		kept := 0.0
		for _, v := range on[s] {
			kept += v
		}
		d := 1.0
		if kept > 0 {
			d = 1 - kept/math.Sqrt(kept*float64(f))
		}
		weights[s] = math.Sqrt(math.Exp(-d * d / (0.25 * 0.25)))
	}
	res := &ImageResult{Prediction: outs[0]}
	for _, label := range topLabels(outs[0], cfg.TopLabels) {
		e, err := explainLabel(outs, label, on, weights, f, "auto")
		if err != nil {
			return nil, err
		}
		res.Explanations = append(res.Explanations, e)
	}
	return res, nil
}

// Mask is lime's get_image_and_mask(label, positive_only, num_features,
// hide_rest=False, min_weight) mask: for the first numFeatures
// superpixels of e (largest |weight| first), 1 where a superpixel's
// weight is positive and over minWeight; without positiveOnly also -1
// where it is negative and |weight| is at least minWeight.
func Mask(seg *superpixel.Segments, e Explanation, positiveOnly bool, numFeatures int, minWeight float64) []int {
	val := make([]int, seg.N)
	for k, f := range e.Features[:min(numFeatures, len(e.Features))] {
		w := e.Weights[k]
		switch {
		case positiveOnly:
			if w > 0 && w > minWeight {
				val[f] = 1
			}
		case math.Abs(w) < minWeight:
		case w < 0:
			val[f] = -1
		default:
			val[f] = 1
		}
	}
	mask := make([]int, len(seg.Labels))
	for p, k := range seg.Labels {
		mask[p] = val[k]
	}
	return mask
}
