package anchor

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/ferryserve/ferry/internal/explain/superpixel"
)

// ImageClassifyFunc returns the predicted class of each image (flat, in
// the explained image's shape).
type ImageClassifyFunc func(ctx context.Context, images [][]float64) ([]int, error)

// maxSampleBytes bounds the perturbed images of one model call
// (batch_size × pixels × channels × 8 bytes).
const maxSampleBytes = 256 << 20

// ImageConfig holds Alibi's AnchorImage parameters: the search's, and
// PSample, the probability that a superpixel outside the anchor is
// switched off (replaced by its mean colour, Alibi's fudged image) in a
// sample (0.5).
type ImageConfig struct {
	Config
	PSample float64
}

// ImageResult is an anchor over an image's superpixels.
type ImageResult struct {
	Features  []int // the anchor's superpixels, in the order added
	Precision float64
	Coverage  float64
	Label     int
	// Anchor is the image with every superpixel outside the anchor set
	// to 0 (Alibi's overlay of the anchor mask).
	Anchor []float64
	// CoveredTrue and CoveredFalse are perturbed images keeping the
	// anchor that the model labels like the image and otherwise.
	CoveredTrue, CoveredFalse [][]float64
	Samples                   int
	Reached                   bool
}

// ExplainImage finds the superpixels of img (segmented as seg) that
// anchor the model's prediction: with them kept and each other
// superpixel switched off with probability PSample, the model keeps its
// label with probability Threshold.
func ExplainImage(ctx context.Context, classify ImageClassifyFunc, img superpixel.Image, seg *superpixel.Segments, cfg ImageConfig) (*ImageResult, error) {
	if cfg.PSample == 0 {
		cfg.PSample = 0.5
	}
	if !(cfg.PSample > 0 && cfg.PSample <= 1) {
		return nil, fmt.Errorf("p_sample %v not in (0, 1]", cfg.PSample)
	}
	cfg.Config = cfg.Config.Defaults()
	if n := int64(cfg.BatchSize) * int64(len(img.Pix)) * 8; n > maxSampleBytes {
		return nil, fmt.Errorf("batch_size %d × %d image values is over the %d MiB one batch may take", cfg.BatchSize, len(img.Pix), maxSampleBytes>>20)
	}
	labels, err := classify(ctx, [][]float64{img.Pix})
	if err != nil {
		return nil, err
	}
	if len(labels) != 1 {
		return nil, fmt.Errorf("model returned %d labels for 1 image", len(labels))
	}
	sp := &imageSpace{classify: classify, img: img, seg: seg, off: superpixel.Means(img, seg).Pix, p: cfg.PSample}
	f, err := Search(ctx, sp, labels[0], cfg.Config)
	if err != nil {
		return nil, err
	}
	res := &ImageResult{Label: labels[0], Features: f.Features, Precision: f.Precision, Coverage: f.Coverage, Samples: f.Samples, Reached: f.Reached}
	inAnchor := make([]bool, seg.N)
	for _, k := range f.Features {
		inAnchor[k] = true
	}
	res.Anchor = make([]float64, len(img.Pix))
	for p, k := range seg.Labels {
		if inAnchor[k] {
			copy(res.Anchor[p*img.C:(p+1)*img.C], img.Pix[p*img.C:(p+1)*img.C])
		}
	}
	for _, e := range f.CoveredTrue {
		res.CoveredTrue = append(res.CoveredTrue, sp.render(e.([]bool)))
	}
	for _, e := range f.CoveredFalse {
		res.CoveredFalse = append(res.CoveredFalse, sp.render(e.([]bool)))
	}
	return res, nil
}

// imageSpace switches an image's superpixels off.
type imageSpace struct {
	classify ImageClassifyFunc
	img      superpixel.Image
	seg      *superpixel.Segments
	off      []float64 // the image with every superpixel at its mean colour
	p        float64
}

func (s *imageSpace) Features() int { return s.seg.N }

// keep draws which superpixels a sample keeps: anchored ones always,
// others with probability 1-p.
func (s *imageSpace) keep(rng *rand.Rand, anchor []int) []bool {
	kept := make([]bool, s.seg.N)
	for i := range kept {
		kept[i] = rng.Float64() >= s.p
	}
	for _, f := range anchor {
		kept[f] = true
	}
	return kept
}

// render paints the kept superpixels from the image, the others from
// their mean colour.
func (s *imageSpace) render(kept []bool) []float64 {
	c := s.img.C
	out := make([]float64, len(s.img.Pix))
	for p, k := range s.seg.Labels {
		src := s.off
		if kept[k] {
			src = s.img.Pix
		}
		copy(out[p*c:(p+1)*c], src[p*c:(p+1)*c])
	}
	return out
}

// Sample returns the kept superpixels of each sample as its example;
// ExplainImage renders the few it keeps.
func (s *imageSpace) Sample(ctx context.Context, rng *rand.Rand, anchor []int, n int) ([]int, []any, error) {
	images := make([][]float64, n)
	ex := make([]any, n)
	for i := range images {
		kept := s.keep(rng, anchor)
		images[i] = s.render(kept)
		ex[i] = kept
	}
	labels, err := s.classify(ctx, images)
	if err != nil {
		return nil, nil, err
	}
	if len(labels) != n {
		return nil, nil, fmt.Errorf("model returned %d labels for %d images", len(labels), n)
	}
	return labels, ex, nil
}

func (s *imageSpace) CoverageSample(rng *rand.Rand) []bool { return s.keep(rng, nil) }
