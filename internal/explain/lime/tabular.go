// Package lime explains single predictions with LIME (Ribeiro et al.,
// "Why should I trust you?"): it perturbs the instance, asks the model
// about the perturbations, weights them by their closeness to the
// instance, and fits a weighted ridge regression whose coefficients are
// the explanation. Tabular rows are perturbed with the training data's
// statistics (lime's LimeTabularExplainer, with or without its quartile
// discretisation);
// images by switching superpixels off (lime's LimeImageExplainer, as
// KServe's AIX explainer serves it).
package lime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// PredictFunc evaluates rows and returns each row's outputs: class
// probabilities, or one number for a regression.
type PredictFunc func(ctx context.Context, rows [][]float64) ([][]float64, error)

// maxSampleValues bounds num_samples × features, the perturbed rows one
// explanation holds (80 MiB of float64).
const maxSampleValues = 10 << 20

// TabularConfig configures LIME on rows. Zero values take lime's
// defaults (Defaults).
type TabularConfig struct {
	NumSamples  int     // perturbed rows (5000)
	NumFeatures int     // features in each explanation (10)
	KernelWidth float64 // of the exponential kernel on scaled distances (0.75·√features)
	// FeatureSelection is auto, forward_selection, highest_weights or none.
	FeatureSelection string
	// SampleAroundInstance centres the perturbations on the instance
	// rather than on the training mean (without Discretize).
	SampleAroundInstance bool
	// Discretize cuts numeric features at their training quartiles and
	// explains "the value is in the instance's quartile" (lime's
	// discretize_continuous, its default).
	Discretize bool
	TopLabels  int // classes explained, most probable first (1)
	BatchSize  int // rows per predictor call (0: all at once)
	Seed       uint64
}

// Defaults fills zero values with lime's defaults.
func (c TabularConfig) Defaults() TabularConfig {
	if c.NumSamples == 0 {
		c.NumSamples = 5000
	}
	if c.NumFeatures == 0 {
		c.NumFeatures = 10
	}
	if c.FeatureSelection == "" {
		c.FeatureSelection = "auto"
	}
	if c.TopLabels == 0 {
		c.TopLabels = 1
	}
	return c
}

// Validate checks a defaulted configuration, naming the key.
func (c TabularConfig) Validate() error {
	switch {
	case c.NumSamples < 2 || c.NumSamples > 1_000_000:
		return fmt.Errorf("num_samples %d not in [2, 1000000]", c.NumSamples)
	case c.NumFeatures < 1:
		return fmt.Errorf("num_features %d must be at least 1", c.NumFeatures)
	case c.KernelWidth < 0 || math.IsNaN(c.KernelWidth) || math.IsInf(c.KernelWidth, 0):
		return fmt.Errorf("kernel_width %v must be positive", c.KernelWidth)
	case c.TopLabels < 1:
		return fmt.Errorf("top_labels %d must be at least 1", c.TopLabels)
	case c.BatchSize < 0:
		return fmt.Errorf("batch_size %d must not be negative", c.BatchSize)
	}
	if !slices.Contains([]string{"auto", "forward_selection", "highest_weights", "none"}, c.FeatureSelection) {
		return fmt.Errorf("feature_selection %q is not one of auto, forward_selection, highest_weights, none", c.FeatureSelection)
	}
	return nil
}

// Tabular explains rows of one model's input. It is read-only after
// NewTabular and safe for concurrent use.
type Tabular struct {
	cfg         TabularConfig
	mean, scale []float64
	categories  map[int][]float64  // categorical column → its training values
	bins        map[int]*quartiles // with Discretize: numeric column → its quartiles
}

// NewTabular computes the training data's statistics: each numeric
// column's mean and standard deviation (missing values skipped; a
// constant column scales by 1), each categorical column's values.
func NewTabular(rows [][]float64, categorical []int, cfg TabularConfig) (*Tabular, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(rows) == 0 || len(rows[0]) == 0 {
		return nil, errors.New("lime: no training rows")
	}
	f := len(rows[0])
	if int64(cfg.NumSamples)*int64(f) > maxSampleValues {
		return nil, fmt.Errorf("num_samples %d × %d features is over the %d values an explanation may hold", cfg.NumSamples, f, maxSampleValues)
	}
	if cfg.KernelWidth == 0 {
		cfg.KernelWidth = 0.75 * math.Sqrt(float64(f))
	}
	t := &Tabular{cfg: cfg, mean: make([]float64, f), scale: make([]float64, f), categories: map[int][]float64{}, bins: map[int]*quartiles{}}
	for _, c := range categorical {
		if c < 0 || c >= f {
			return nil, fmt.Errorf("lime: categorical column %d not in [0, %d)", c, f)
		}
		t.categories[c] = []float64{}
	}
	for j := range f {
		var n, sum, sq float64
		for _, r := range rows {
			v := r[j]
			if math.IsNaN(v) {
				continue
			}
			if vals, ok := t.categories[j]; ok {
				t.categories[j] = append(vals, v)
			}
			n++
			sum += v
		}
		if n == 0 {
			return nil, fmt.Errorf("lime: training column %d has no values", j)
		}
		t.mean[j] = sum / n
		for _, r := range rows {
			if v := r[j]; !math.IsNaN(v) {
				sq += (v - t.mean[j]) * (v - t.mean[j])
			}
		}
		t.scale[j] = math.Sqrt(sq / n)
		if t.scale[j] == 0 {
			t.scale[j] = 1
		}
		_, categorical := t.categories[j]
		if !categorical && cfg.Discretize {
			col := make([]float64, len(rows))
			for i, r := range rows {
				col[i] = r[j]
			}
			t.bins[j] = newQuartiles(col)
		}
		if categorical || cfg.Discretize {
			t.mean[j], t.scale[j] = 0, 1 // the explanation sees "same category" (or quartile) as 0/1
		}
	}
	return t, nil
}

// BinName names the instance's quartile of numeric feature f as lime
// does ("1.60 < petal_width <= 1.80"), or "" when f is not discretised.
func (t *Tabular) BinName(f int, name string, v float64) string {
	q, ok := t.bins[f]
	if !ok {
		return ""
	}
	return q.name(name, q.bin(v))
}

// KernelWidth is the width in use (the default resolved).
func (t *Tabular) KernelWidth() float64 { return t.cfg.KernelWidth }

// Explanation is LIME's explanation of one output (a class, or the
// regression value).
type Explanation struct {
	Label           int       // output column explained
	ModelPrediction float64   // the model's output for the instance
	LocalPrediction float64   // the local model's at the instance
	Intercept       float64   // of the local model
	Score           float64   // weighted R² of the local model
	Features        []int     // explaining features, largest |weight| first
	Weights         []float64 // their coefficients (per standard deviation; per "same category" for categorical)
}

// TabularResult is one row's explanation.
type TabularResult struct {
	Prediction   []float64 // the model's outputs for the instance
	Explanations []Explanation
}

// Explain explains row (no missing values): NumSamples rows are drawn
// from a normal distribution with the training standard deviations
// around the training mean (or the row), categorical columns from their
// training values, and with Discretize numeric columns by drawing a
// training row's quartile and a value inside it; the first sample is the
// row itself. Samples are
// weighted by sqrt(exp(-d²/width²)) of their scaled Euclidean distance d
// to the row, and for each of the TopLabels most probable outputs a
// ridge regression (alpha 1) on the scaled samples explains it.
func (t *Tabular) Explain(ctx context.Context, predict PredictFunc, row []float64) (*TabularResult, error) {
	f := len(t.mean)
	if len(row) != f {
		return nil, fmt.Errorf("lime: row has %d features, the training data %d", len(row), f)
	}
	for j, v := range row {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("lime: feature %d is missing or infinite; LIME perturbs every feature", j)
		}
	}
	rng := rand.New(rand.NewPCG(t.cfg.Seed, 0x11e))
	n := t.cfg.NumSamples
	samples := make([][]float64, n) // in the model's space
	scaled := make([][]float64, n)  // what the local model sees
	flat := make([]float64, 2*n*f)
	for s := range n {
		samples[s], scaled[s] = flat[2*s*f:(2*s+1)*f], flat[(2*s+1)*f:(2*s+2)*f]
		for j := range f {
			if vals, ok := t.categories[j]; ok {
				v := row[j]
				if s > 0 {
					v = vals[rng.IntN(len(vals))]
				}
				samples[s][j] = v
				if v == row[j] {
					scaled[s][j] = 1
				}
				continue
			}
			if q, ok := t.bins[j]; ok {
				own := q.bin(row[j])
				v, b := row[j], own
				if s > 0 {
					b = q.trainingBins[rng.IntN(len(q.trainingBins))]
					v = q.draw(rng, b)
				}
				samples[s][j] = v
				if b == own {
					scaled[s][j] = 1
				}
				continue
			}
			v := row[j]
			if s > 0 {
				centre := t.mean[j]
				if t.cfg.SampleAroundInstance {
					centre = row[j]
				}
				v = rng.NormFloat64()*t.scale[j] + centre
			}
			samples[s][j] = v
			scaled[s][j] = (v - t.mean[j]) / t.scale[j]
		}
	}
	weights := make([]float64, n)
	for s := range n {
		d := 0.0
		for j := range f {
			e := scaled[s][j] - scaled[0][j]
			d += e * e
		}
		weights[s] = math.Sqrt(math.Exp(-d / (t.cfg.KernelWidth * t.cfg.KernelWidth)))
	}
	outs, err := batched(ctx, predict, samples, t.cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	res := &TabularResult{Prediction: outs[0]}
	for _, label := range topLabels(outs[0], t.cfg.TopLabels) {
		e, err := explainLabel(outs, label, scaled, weights, t.cfg.NumFeatures, t.cfg.FeatureSelection)
		if err != nil {
			return nil, err
		}
		res.Explanations = append(res.Explanations, e)
	}
	return res, nil
}

// explainLabel fits the local model of one output column.
func explainLabel(outs [][]float64, label int, x [][]float64, w []float64, numFeatures int, selection string) (Explanation, error) {
	y := make([]float64, len(outs))
	for s, o := range outs {
		y[s] = o[label]
	}
	cols, err := selectFeatures(x, y, w, numFeatures, selection)
	if err != nil {
		return Explanation{}, err
	}
	fit, err := ridge(x, cols, y, w, 1)
	if err != nil {
		return Explanation{}, err
	}
	order := make([]int, len(cols))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmpDesc(math.Abs(fit.coef[a]), math.Abs(fit.coef[b])) })
	e := Explanation{Label: label, ModelPrediction: y[0], LocalPrediction: fit.predict(x[0], cols), Intercept: fit.intercept, Score: fit.score}
	for _, i := range order {
		e.Features = append(e.Features, cols[i])
		e.Weights = append(e.Weights, fit.coef[i])
	}
	return e, nil
}

// topLabels returns the k output columns with the largest values, the
// largest first; a single output (a regression) is column 0.
func topLabels(out []float64, k int) []int {
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmpDesc(out[a], out[b]) })
	return idx[:min(k, len(idx))]
}

// batched calls predict on rows in batches of size (0: all at once) and
// checks that every row has the same number of outputs.
func batched(ctx context.Context, predict PredictFunc, rows [][]float64, size int) ([][]float64, error) {
	if size <= 0 {
		size = len(rows)
	}
	out := make([][]float64, 0, len(rows))
	for start := 0; start < len(rows); start += size {
		part, err := predict(ctx, rows[start:min(start+size, len(rows))])
		if err != nil {
			return nil, err
		}
		out = append(out, part...)
	}
	if len(out) != len(rows) {
		return nil, fmt.Errorf("lime: the model returned %d outputs for %d rows", len(out), len(rows))
	}
	for i, o := range out {
		if len(o) == 0 || len(o) != len(out[0]) {
			return nil, fmt.Errorf("lime: the model returned %d outputs for row %d, %d for row 0", len(o), i, len(out[0]))
		}
	}
	return out, nil
}
