package lime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// quartiles is lime's QuartileDiscretizer for one numeric column: the
// distinct 25th, 50th and 75th percentiles of the training values cut
// them into bins; each bin keeps its training values' mean and standard
// deviation and its bounds, to draw values inside it again.
type quartiles struct {
	cuts         []float64
	mean, std    []float64 // per bin
	lo, hi       []float64 // per bin: training minimum, the cuts, training maximum
	trainingBins []int     // bin of each training row (missing values skipped)
}

// newQuartiles cuts one column's training values (NaN skipped; at least
// one value).
func newQuartiles(col []float64) *quartiles {
	vals := make([]float64, 0, len(col))
	for _, v := range col {
		if !math.IsNaN(v) {
			vals = append(vals, v)
		}
	}
	sorted := slices.Clone(vals)
	slices.Sort(sorted)
	q := &quartiles{}
	for _, p := range []float64{0.25, 0.5, 0.75} {
		c := percentile(sorted, p)
		if len(q.cuts) == 0 || c > q.cuts[len(q.cuts)-1] {
			q.cuts = append(q.cuts, c)
		}
	}
	n := len(q.cuts) + 1
	q.mean, q.std = make([]float64, n), make([]float64, n)
	sums, counts := make([]float64, n), make([]int, n)
	for _, v := range vals {
		b := q.bin(v)
		q.trainingBins = append(q.trainingBins, b)
		sums[b] += v
		counts[b]++
	}
	for b := range n {
		if counts[b] > 0 {
			q.mean[b] = sums[b] / float64(counts[b])
		}
	}
	for _, v := range vals {
		b := q.bin(v)
		q.std[b] += (v - q.mean[b]) * (v - q.mean[b])
	}
	for b := range n {
		if counts[b] > 0 {
			q.std[b] = math.Sqrt(q.std[b] / float64(counts[b]))
		}
		q.std[b] += 1e-11 // as lime: a bin of one value still draws
	}
	q.lo = append([]float64{sorted[0]}, q.cuts...)
	q.hi = append(slices.Clone(q.cuts), sorted[len(sorted)-1])
	return q
}

// percentile interpolates linearly between order statistics (numpy's
// default, which lime's np.percentile uses).
func percentile(sorted []float64, p float64) float64 {
	pos := p * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}

// bin is numpy's searchsorted(cuts, v): the first cut at or above v.
func (q *quartiles) bin(v float64) int { return sort.SearchFloat64s(q.cuts, v) }

// draw samples a value of bin b from a normal with the bin's mean and
// standard deviation truncated to the bin's bounds (lime's
// undiscretize), by rejection; a bin the normal almost never reaches
// gets a uniform value inside it.
func (q *quartiles) draw(rng *rand.Rand, b int) float64 {
	lo, hi := q.lo[b], q.hi[b]
	for range 64 {
		v := q.mean[b] + q.std[b]*rng.NormFloat64()
		if v >= lo && v <= hi {
			return v
		}
	}
	return lo + rng.Float64()*(hi-lo)
}

// name renders bin b of the named feature as lime does ("x <= 1.60",
// "1.60 < x <= 4.35", "x > 5.10").
func (q *quartiles) name(feature string, b int) string {
	switch {
	case b == 0:
		return fmt.Sprintf("%s <= %.2f", feature, q.cuts[0])
	case b == len(q.cuts):
		return fmt.Sprintf("%s > %.2f", feature, q.cuts[len(q.cuts)-1])
	}
	return fmt.Sprintf("%.2f < %s <= %.2f", q.cuts[b-1], feature, q.cuts[b])
}
