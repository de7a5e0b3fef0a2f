// Package stats holds the hypothesis tests the drift detectors run: the
// two-sample Kolmogorov–Smirnov test, Pearson's chi-squared test on a
// contingency table, and the multiple-testing corrections applied across
// features. P-values follow SciPy's definitions (ks_2samp with method
// "auto", chi2_contingency with its defaults) and are checked against
// golden values SciPy produced (testdata/gen).
package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrEmpty is returned when a sample has no values.
var ErrEmpty = errors.New("stats: empty sample")

// ErrNaN is returned when a sample holds NaN.
var ErrNaN = errors.New("stats: sample holds NaN")

// maxExactN is the largest sample size for which the exact distribution is
// used ("auto" in SciPy).
const maxExactN = 10000

// KSResult is the outcome of a two-sample KS test.
type KSResult struct {
	// D is the statistic: the largest distance between the two empirical
	// distribution functions.
	D float64
	// P is the two-sided p-value.
	P float64
	// Exact tells whether P comes from the exact null distribution (both
	// samples of at most 10000 values) or from the asymptotic one.
	Exact bool
}

// KS2Samp runs the two-sided two-sample Kolmogorov–Smirnov test. Neither
// slice is modified.
func KS2Samp(a, b []float64) (KSResult, error) {
	if len(a) == 0 || len(b) == 0 {
		return KSResult{}, ErrEmpty
	}
	x, y := slices.Clone(a), slices.Clone(b)
	if err := sortNoNaN(x); err != nil {
		return KSResult{}, err
	}
	if err := sortNoNaN(y); err != nil {
		return KSResult{}, err
	}
	return KS2SampSorted(x, y), nil
}

// KS2SampSorted is KS2Samp on samples already sorted in ascending order and
// free of NaN; it allocates nothing, so detectors can keep a sorted
// reference column and test many windows against it.
func KS2SampSorted(x, y []float64) KSResult {
	n1, n2 := len(x), len(y)
	d := ksStatistic(x, y)
	g := gcd(n1, n2)
	if max(n1, n2) <= maxExactN {
		if p, dd, ok := exactKS(n1, n2, g, d); ok {
			return KSResult{D: dd, P: clip01(p), Exact: true}
		}
	}
	m, n := float64(max(n1, n2)), float64(min(n1, n2))
	en := m * n / (m + n)
	return KSResult{D: d, P: clip01(KolmogorovSF(int(math.RoundToEven(en)), d))}
}

func sortNoNaN(v []float64) error {
	for _, f := range v {
		if math.IsNaN(f) {
			return ErrNaN
		}
	}
	slices.Sort(v)
	return nil
}

// ksStatistic returns max |F1 - F2| over the pooled sample, with each ECDF
// evaluated as (count of values <= t) / n, the way SciPy evaluates it, so
// that the statistic is bit-identical.
func ksStatistic(x, y []float64) float64 {
	n1, n2 := float64(len(x)), float64(len(y))
	var i, j int
	maxS, minS := math.Inf(-1), math.Inf(1)
	for i < len(x) || j < len(y) {
		var t float64
		switch {
		case j >= len(y) || (i < len(x) && x[i] <= y[j]):
			t = x[i]
		default:
			t = y[j]
		}
		for i < len(x) && x[i] <= t {
			i++
		}
		for j < len(y) && y[j] <= t {
			j++
		}
		diff := float64(i)/n1 - float64(j)/n2
		maxS = max(maxS, diff)
		minS = min(minS, diff)
	}
	down := math.Min(math.Max(-minS, 0), 1)
	if down > maxS {
		return down
	}
	return maxS
}

// exactKS computes P(D >= d) under the null exactly. d is snapped to the
// lattice of attainable values h/lcm(n1, n2). ok is false when the result
// is not a probability, in which case the caller falls back to the
// asymptotic distribution.
func exactKS(n1, n2, g int, d float64) (p, dd float64, ok bool) {
	lcm := (n1 / g) * n2
	h := int(math.RoundToEven(d * float64(lcm)))
	dd = float64(h) / float64(lcm)
	if h == 0 {
		return 1, dd, true
	}
	if n1 == n2 {
		p = probOutsideSquare(n1, h)
	} else {
		p = outerProbInside(n1, n2, g, h)
	}
	if !(p >= 0 && p <= 1) {
		return p, dd, false
	}
	return p, dd, true
}

// probOutsideSquare is P(D_{n,n} >= h/n): the share of lattice paths that
// touch either diagonal line x-y = ±h, as an alternating sum of binomial
// ratios evaluated Horner-fashion to avoid cancellation.
func probOutsideSquare(n, h int) float64 {
	var p float64
	for k := n / h; k >= 0; k-- {
		a := 1.0
		for j := range h {
			a = float64(n-k*h-j) * a / float64(n+k*h+j+1)
		}
		p = a * (1 - p)
	}
	return 2 * p
}

// outerProbInside is the share of lattice paths from (0,0) to (m,n) that
// leave the band |x/m - y/n| < h/lcm(m,n). It runs the column recursion of
// Hodges' inside method on 1-p directly (Viehmann 2021), keeping only the
// sliding window of one column.
func outerProbInside(m, n, g, h int) float64 {
	if m < n {
		m, n = n, m
	}
	mg, ng := m/g, n/g
	minj, maxj := 0, min(int(math.Ceil(float64(h)/float64(mg))), n+1)
	curlen := maxj - minj
	a := make([]float64, min(2*maxj+2, n+1))
	for i := range a {
		a[i] = 1
	}
	for i := minj; i < maxj; i++ {
		a[i] = 0
	}
	for i := 1; i <= m; i++ {
		lastminj, lastlen := minj, curlen
		minj = max(int(math.Floor(float64(ng*i-h)/float64(mg)))+1, 0)
		minj = min(minj, n)
		maxj = min(int(math.Ceil(float64(ng*i+h)/float64(mg))), n+1)
		if maxj <= minj {
			return 1
		}
		val := 1.0
		if minj == 0 {
			val = 0
		}
		fi := float64(i)
		for jj := range maxj - minj {
			j := float64(jj + minj)
			val = (a[jj+minj-lastminj]*fi + val*j) / (fi + j)
			a[jj] = val
		}
		curlen = maxj - minj
		if lastlen > curlen {
			for k := maxj - minj; k < maxj-minj+lastlen-curlen && k < len(a); k++ {
				a[k] = 1
			}
		}
	}
	return a[maxj-minj-1]
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func clip01(p float64) float64 {
	switch {
	case math.IsNaN(p):
		return p
	case p < 0:
		return 0
	case p > 1:
		return 1
	}
	return p
}

// checkProb validates a significance level or q-value.
func checkProb(name string, p float64) error {
	if !(p > 0 && p < 1) {
		return fmt.Errorf("stats: %s %v: want a value in (0, 1)", name, p)
	}
	return nil
}
