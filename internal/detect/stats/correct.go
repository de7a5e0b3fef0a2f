package stats

import (
	"fmt"
	"slices"
)

// Correction is a multiple-testing correction across per-feature p-values.
type Correction string

// Corrections alibi-detect offers for its univariate drift detectors.
const (
	Bonferroni Correction = "bonferroni"
	FDR        Correction = "fdr" // Benjamini–Hochberg
)

// Validate reports an unknown correction.
func (c Correction) Validate() error {
	switch c {
	case Bonferroni, FDR:
		return nil
	}
	return fmt.Errorf("stats: correction %q: want bonferroni or fdr", string(c))
}

// Decision is the outcome of a corrected family of tests.
type Decision struct {
	// Reject is true when at least one null hypothesis is rejected.
	Reject bool
	// Threshold is the per-test level that decided: alpha/m for
	// Bonferroni; for FDR the largest Benjamini–Hochberg cutoff q·i/m that a
	// sorted p-value fell below, or, when none did, every cutoff
	// (Thresholds) and Threshold = q/m.
	Threshold  float64
	Thresholds []float64
}

// Correct applies c at level alpha to the p-values of one family.
func Correct(c Correction, p []float64, alpha float64) (Decision, error) {
	if err := c.Validate(); err != nil {
		return Decision{}, err
	}
	if err := checkProb("level", alpha); err != nil {
		return Decision{}, err
	}
	if len(p) == 0 {
		return Decision{}, ErrEmpty
	}
	m := float64(len(p))
	if c == Bonferroni {
		th := alpha / m
		return Decision{Reject: slices.Min(p) < th, Threshold: th}, nil
	}
	sorted := slices.Clone(p)
	slices.Sort(sorted)
	cut := make([]float64, len(p))
	last := -1
	for i, v := range sorted {
		cut[i] = alpha * float64(i+1) / m
		if v < cut[i] {
			last = i
		}
	}
	if last < 0 {
		return Decision{Threshold: alpha / m, Thresholds: cut}, nil
	}
	return Decision{Reject: true, Threshold: cut[last]}, nil
}
