package drift

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/ferryserve/ferry/internal/detect/stats"
)

// TabularConfig configures per-feature drift tests.
type TabularConfig struct {
	// Reference rows; every window is compared with them.
	Reference [][]float64
	// Categorical lists the indices of categorical features, tested with
	// chi-squared on category counts; the rest get a two-sample KS test.
	Categorical []int
	// PVal is the family-wise level (default 0.05).
	PVal float64
	// Correction across features (default Bonferroni).
	Correction stats.Correction
}

// Tabular is alibi-detect's KSDrift (no categorical features) or
// TabularDrift (some).
type Tabular struct {
	cfg   TabularConfig
	width int
	cat   []bool
	// sorted reference column per numeric feature; category counts per
	// categorical one.
	sorted [][]float64
	counts []map[float64]float64
	nref   int
}

var _ Detector = (*Tabular)(nil)

// NewTabular validates cfg and indexes the reference.
func NewTabular(cfg TabularConfig) (*Tabular, error) {
	if cfg.PVal == 0 {
		cfg.PVal = 0.05
	}
	if cfg.Correction == "" {
		cfg.Correction = stats.Bonferroni
	}
	if err := cfg.Correction.Validate(); err != nil {
		return nil, err
	}
	if !(cfg.PVal > 0 && cfg.PVal < 1) {
		return nil, fmt.Errorf("drift: p-value level %v: want (0, 1)", cfg.PVal)
	}
	if len(cfg.Reference) == 0 || len(cfg.Reference[0]) == 0 {
		return nil, errors.New("drift: empty reference")
	}
	w := len(cfg.Reference[0])
	if err := checkRows(cfg.Reference, w); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	t := &Tabular{cfg: cfg, width: w, cat: make([]bool, w), sorted: make([][]float64, w), counts: make([]map[float64]float64, w), nref: len(cfg.Reference)}
	for _, c := range cfg.Categorical {
		if c < 0 || c >= w {
			return nil, fmt.Errorf("drift: categorical feature %d out of range [0, %d)", c, w)
		}
		t.cat[c] = true
	}
	for i, r := range cfg.Reference {
		for f, v := range r {
			if math.IsNaN(v) {
				return nil, fmt.Errorf("drift: reference row %d feature %d is NaN", i, f)
			}
		}
	}
	for f := range w {
		if t.cat[f] {
			m := map[float64]float64{}
			for _, r := range cfg.Reference {
				m[r[f]]++
			}
			t.counts[f] = m
			continue
		}
		col := make([]float64, len(cfg.Reference))
		for i, r := range cfg.Reference {
			col[i] = r[f]
		}
		slices.Sort(col)
		t.sorted[f] = col
	}
	return t, nil
}

// Features implements Detector.
func (t *Tabular) Features() int { return t.width }

// Test implements Detector.
func (t *Tabular) Test(rows [][]float64) (Result, error) {
	if err := checkRows(rows, t.width); err != nil {
		return Result{}, err
	}
	dist := make([]float64, t.width)
	pval := make([]float64, t.width)
	col := make([]float64, len(rows))
	for f := range t.width {
		for i, r := range rows {
			if math.IsNaN(r[f]) {
				return Result{}, fmt.Errorf("drift: row %d feature %d is NaN", i, f)
			}
			col[i] = r[f]
		}
		if t.cat[f] {
			res, err := t.chi2(f, col)
			if err != nil {
				return Result{}, fmt.Errorf("drift: feature %d: %w", f, err)
			}
			dist[f], pval[f] = res.Stat, res.P
			continue
		}
		slices.Sort(col)
		res := stats.KS2SampSorted(t.sorted[f], col)
		dist[f], pval[f] = res.D, res.P
	}
	dec, err := stats.Correct(t.cfg.Correction, pval, t.cfg.PVal)
	if err != nil {
		return Result{}, err
	}
	name := "KSDrift"
	if len(t.cfg.Categorical) > 0 {
		name = "TabularDrift"
	}
	return Result{Name: name, IsDrift: dec.Reject, Distance: dist, PVal: pval, Threshold: dec.Threshold, Thresholds: dec.Thresholds, N: len(rows)}, nil
}

// chi2 builds the 2×k table of category counts (reference, window) over
// every category seen in either sample.
func (t *Tabular) chi2(f int, col []float64) (stats.Chi2Result, error) {
	win := map[float64]float64{}
	for _, v := range col {
		win[v]++
	}
	keys := make([]float64, 0, len(t.counts[f])+len(win))
	for k := range t.counts[f] {
		keys = append(keys, k)
	}
	for k := range win {
		if _, ok := t.counts[f][k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	table := [][]float64{make([]float64, len(keys)), make([]float64, len(keys))}
	for j, k := range keys {
		table[0][j] = t.counts[f][k]
		table[1][j] = win[k]
	}
	return stats.Chi2Contingency(table)
}
