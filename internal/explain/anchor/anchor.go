// Package anchor finds Anchors for tabular data (Ribeiro, Singh and
// Guestrin, "Anchors: high-precision model-agnostic explanations", 2018):
// a small set of feature conditions under which the model's prediction for
// an instance stays the same with high probability. Numeric features are
// discretised by the quartiles of the training data; categorical features
// keep their categories. Candidate anchors grow by one condition at a time
// in a beam, and the KL-LUCB bandit (Kaufmann and Kalyanakrishnan, 2013)
// decides which candidates to sample and keep.
package anchor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
)

// ClassifyFunc returns the predicted class of each row.
type ClassifyFunc func(ctx context.Context, rows [][]float64) ([]int, error)

// Config holds Alibi's AnchorTabular parameters; zero values take Alibi's
// defaults (see Defaults).
type Config struct {
	Threshold       float64 // precision an anchor must reach (0.95)
	Delta           float64 // confidence level 1-delta of the bounds (0.1)
	Tau             float64 // bandit tolerance (0.15)
	BatchSize       int     // samples per bandit pull (100)
	CoverageSamples int     // training rows drawn to estimate coverage (10000)
	BeamSize        int     // candidates kept per anchor size (1)
	StopOnFirst     bool    // return the first anchor that reaches Threshold
	MaxAnchorSize   int     // 0: no limit beyond the number of features
	MinSamplesStart int     // samples each new candidate starts with (100)
	NCoveredEx      int     // covered examples kept in raw (10)
	Seed            uint64
}

// Defaults fills zero fields with Alibi's defaults.
func (c Config) Defaults() Config {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defi := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Threshold, 0.95)
	def(&c.Delta, 0.1)
	def(&c.Tau, 0.15)
	defi(&c.BatchSize, 100)
	defi(&c.CoverageSamples, 10000)
	defi(&c.BeamSize, 1)
	defi(&c.MinSamplesStart, 100)
	defi(&c.NCoveredEx, 10)
	return c
}

// Validate names the first field out of range.
func (c Config) Validate() error {
	switch {
	case !(c.Threshold > 0 && c.Threshold <= 1):
		return fmt.Errorf("threshold %v not in (0, 1]", c.Threshold)
	case !(c.Delta > 0 && c.Delta < 1):
		return fmt.Errorf("delta %v not in (0, 1)", c.Delta)
	case !(c.Tau > 0 && c.Tau < 1):
		return fmt.Errorf("tau %v not in (0, 1)", c.Tau)
	case c.BatchSize < 1 || c.BatchSize > 100000:
		return fmt.Errorf("batch_size %d not in [1, 100000]", c.BatchSize)
	case c.CoverageSamples < 1 || c.CoverageSamples > 1000000:
		return fmt.Errorf("coverage_samples %d not in [1, 1000000]", c.CoverageSamples)
	case c.BeamSize < 1 || c.BeamSize > 100:
		return fmt.Errorf("beam_size %d not in [1, 100]", c.BeamSize)
	case c.MaxAnchorSize < 0:
		return fmt.Errorf("max_anchor_size %d is negative", c.MaxAnchorSize)
	case c.MinSamplesStart < 1 || c.MinSamplesStart > 100000:
		return fmt.Errorf("min_samples_start %d not in [1, 100000]", c.MinSamplesStart)
	case c.NCoveredEx < 0:
		return fmt.Errorf("n_covered_ex %d is negative", c.NCoveredEx)
	}
	return nil
}

// Data is what the explainer needs from training: rows, feature names, and
// for categorical features the names of their categories (the column
// holds the category index).
type Data struct {
	FeatureNames  []string
	CategoryNames map[int][]string
	Rows          [][]float64
}

// Explainer holds the training data and its discretisation. Safe for
// concurrent use.
type Explainer struct {
	classify ClassifyFunc
	data     Data
	cfg      Config
	cuts     [][]float64 // numeric features: quartile cut points
	bins     [][]int     // per training row, per feature: bin or category
	// byBin[f][b] lists the training values of feature f in bin b.
	byBin [][][]float64
}

// New discretises the training data.
func New(classify ClassifyFunc, data Data, cfg Config) (*Explainer, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(data.Rows) == 0 {
		return nil, errors.New("training data is empty")
	}
	m := len(data.Rows[0])
	if len(data.FeatureNames) == 0 {
		for f := range m {
			data.FeatureNames = append(data.FeatureNames, "feature_"+strconv.Itoa(f))
		}
	}
	if len(data.FeatureNames) != m {
		return nil, fmt.Errorf("feature_names has %d names for %d columns", len(data.FeatureNames), m)
	}
	for f, names := range data.CategoryNames {
		if f < 0 || f >= m || len(names) == 0 {
			return nil, fmt.Errorf("category_map: feature %d out of range or without categories", f)
		}
	}
	x := &Explainer{classify: classify, data: data, cfg: cfg, cuts: make([][]float64, m), byBin: make([][][]float64, m)}
	for i, r := range data.Rows {
		if len(r) != m {
			return nil, fmt.Errorf("training row %d has %d columns, row 0 has %d", i, len(r), m)
		}
	}
	for f := range m {
		if _, cat := data.CategoryNames[f]; cat {
			continue
		}
		col := make([]float64, 0, len(data.Rows))
		for _, r := range data.Rows {
			if r[f] == r[f] {
				col = append(col, r[f])
			}
		}
		slices.Sort(col)
		var cuts []float64
		for _, q := range []float64{0.25, 0.5, 0.75} {
			if len(col) == 0 {
				break
			}
			c := quantile(col, q)
			if len(cuts) == 0 || c > cuts[len(cuts)-1] {
				cuts = append(cuts, c)
			}
		}
		x.cuts[f] = cuts
	}
	x.bins = make([][]int, len(data.Rows))
	for i, r := range data.Rows {
		x.bins[i] = x.discretize(r)
		for f, b := range x.bins[i] {
			for len(x.byBin[f]) <= b {
				x.byBin[f] = append(x.byBin[f], nil)
			}
			x.byBin[f][b] = append(x.byBin[f][b], r[f])
		}
	}
	return x, nil
}

// quantile interpolates linearly between order statistics (numpy's
// default).
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}

// discretize maps a row to bins: for numeric features the number of cut
// points below the value (missing values get a bin of their own past the
// last), for categorical ones the category.
func (x *Explainer) discretize(row []float64) []int {
	out := make([]int, len(row))
	for f, v := range row {
		if _, cat := x.data.CategoryNames[f]; cat {
			out[f] = max(0, int(v))
			continue
		}
		if v != v {
			out[f] = len(x.cuts[f]) + 1
			continue
		}
		out[f] = sort.SearchFloat64s(x.cuts[f], v) // cuts < v ... v <= cut goes to the cut's bin
	}
	return out
}

// condition renders feature f's bin b the way Alibi does ("Age <= 28.00",
// "28.00 < Age <= 37.00", "Marital Status = Never-Married").
func (x *Explainer) condition(f, b int) string {
	name := x.data.FeatureNames[f]
	if cats, ok := x.data.CategoryNames[f]; ok {
		if b < len(cats) {
			return name + " = " + cats[b]
		}
		return name + " = " + strconv.Itoa(b)
	}
	cuts := x.cuts[f]
	switch {
	case b > len(cuts):
		return name + " is missing"
	case len(cuts) == 0:
		return name + " is present"
	case b == 0:
		return fmt.Sprintf("%s <= %.2f", name, cuts[0])
	case b == len(cuts):
		return fmt.Sprintf("%s > %.2f", name, cuts[len(cuts)-1])
	}
	return fmt.Sprintf("%.2f < %s <= %.2f", cuts[b-1], name, cuts[b])
}

// Result is an anchor with its estimated precision and coverage.
type Result struct {
	Anchor    []string
	Features  []int // anchored features, in the order they were added
	Precision float64
	Coverage  float64
	Label     int
	// Examples are covered training-like rows the model labels like the
	// instance, and rows it labels otherwise (at most NCoveredEx each).
	CoveredTrue, CoveredFalse [][]float64
	Samples                   int // model calls' rows in all
	Reached                   bool
}
