// Package drift decides whether a window of feature rows was drawn from the
// same distribution as a reference set: per-feature KS or chi-squared tests
// with a multiple-testing correction (Tabular), or a kernel two-sample test
// on whole rows (MMD). Detectors are immutable after construction and safe
// for concurrent use.
package drift

import (
	"errors"
	"fmt"
)

// ErrShape is returned when rows do not match the reference's width.
var ErrShape = errors.New("drift: row width differs from the reference")

// Result is one window's verdict, shaped like alibi-detect's drift output.
type Result struct {
	// Name is the detector's alibi-detect class name (KSDrift,
	// TabularDrift, MMDDrift).
	Name    string
	IsDrift bool
	// Distance holds one value per feature (KS statistic, or chi-squared
	// statistic for categorical features) or a single MMD² estimate.
	Distance []float64
	// PVal has the same length as Distance.
	PVal []float64
	// Threshold is the level a p-value was compared with: the corrected
	// per-feature level, or the MMD test's level.
	Threshold float64
	// Thresholds lists every Benjamini–Hochberg cutoff when FDR found
	// nothing; alibi-detect reports that array instead of one threshold.
	Thresholds []float64
	// N is the number of rows in the window.
	N int
}

// Detector tests windows against its reference.
type Detector interface {
	// Test returns the verdict for rows (each as wide as the reference).
	Test(rows [][]float64) (Result, error)
	// Features is the row width.
	Features() int
}

func checkRows(rows [][]float64, width int) error {
	if len(rows) == 0 {
		return errors.New("drift: empty window")
	}
	for i, r := range rows {
		if len(r) != width {
			return fmt.Errorf("%w: row %d has %d values, want %d", ErrShape, i, len(r), width)
		}
	}
	return nil
}
