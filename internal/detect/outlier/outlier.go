// Package outlier scores single instances against what normal data looks
// like: the Mahalanobis distance to a running mean and covariance, or an
// isolation forest grown on reference data. Each detector flags an instance
// whose score exceeds its threshold.
package outlier

import (
	"errors"
	"fmt"
	"math"
)

// ErrShape is returned when a row's width differs from the detector's.
var ErrShape = errors.New("outlier: row width differs from the reference")

// Result holds per-instance verdicts, shaped like alibi-detect's outlier
// output.
type Result struct {
	// Name is the alibi-detect class name (Mahalanobis, IForest).
	Name          string
	IsOutlier     []bool
	InstanceScore []float64
	Threshold     float64
}

// Detector scores rows.
type Detector interface {
	Score(rows [][]float64) (Result, error)
	Features() int
}

func checkRows(rows [][]float64, width int) error {
	for i, r := range rows {
		if len(r) != width {
			return fmt.Errorf("%w: row %d has %d values, want %d", ErrShape, i, len(r), width)
		}
		for f, v := range r {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("outlier: row %d feature %d is %v", i, f, v)
			}
		}
	}
	return nil
}
