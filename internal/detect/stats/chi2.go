package stats

import (
	"errors"
	"fmt"
	"math"
)

// ErrTable is returned for a contingency table that cannot be tested.
var ErrTable = errors.New("stats: bad contingency table")

// Chi2Result is the outcome of a chi-squared test of independence.
type Chi2Result struct {
	Stat float64
	P    float64
	DoF  int
}

// Chi2Contingency tests independence of the rows and columns of a
// contingency table of counts (Pearson's statistic, with Yates' continuity
// correction when there is one degree of freedom), as SciPy's
// chi2_contingency does with its defaults. Every row and column must have a
// positive total; callers drop categories seen in neither sample.
func Chi2Contingency(table [][]float64) (Chi2Result, error) {
	r := len(table)
	if r == 0 || len(table[0]) == 0 {
		return Chi2Result{}, fmt.Errorf("%w: empty", ErrTable)
	}
	c := len(table[0])
	rows := make([]float64, r)
	cols := make([]float64, c)
	var total float64
	for i, row := range table {
		if len(row) != c {
			return Chi2Result{}, fmt.Errorf("%w: row %d has %d columns, want %d", ErrTable, i, len(row), c)
		}
		for j, v := range row {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return Chi2Result{}, fmt.Errorf("%w: count %v at (%d, %d)", ErrTable, v, i, j)
			}
			rows[i] += v
			cols[j] += v
			total += v
		}
	}
	for i, v := range rows {
		if v == 0 {
			return Chi2Result{}, fmt.Errorf("%w: row %d is all zero", ErrTable, i)
		}
	}
	for j, v := range cols {
		if v == 0 {
			return Chi2Result{}, fmt.Errorf("%w: column %d is all zero", ErrTable, j)
		}
	}
	dof := r*c - (r + c) + 1
	if dof == 0 {
		return Chi2Result{Stat: 0, P: 1, DoF: 0}, nil
	}
	var stat float64
	for i, row := range table {
		for j, o := range row {
			e := rows[i] * cols[j] / total
			if dof == 1 {
				diff := e - o
				o += math.Copysign(math.Min(0.5, math.Abs(diff)), diff)
			}
			stat += (o - e) * (o - e) / e
		}
	}
	return Chi2Result{Stat: stat, P: Chi2SF(stat, float64(dof)), DoF: dof}, nil
}

// Chi2SF is the survival function of the chi-squared distribution with k
// degrees of freedom.
func Chi2SF(x, k float64) float64 {
	if x <= 0 {
		return 1
	}
	return GammaQ(k/2, x/2)
}

// GammaQ is the regularised upper incomplete gamma function Q(a, x): a
// power series for P = 1 - Q below x = a + 1, a continued fraction
// (modified Lentz) above it.
func GammaQ(a, x float64) float64 {
	switch {
	case math.IsNaN(a) || math.IsNaN(x) || a <= 0 || x < 0:
		return math.NaN()
	case x == 0:
		return 1
	case math.IsInf(x, 1):
		return 0
	}
	lg, _ := math.Lgamma(a)
	lpre := a*math.Log(x) - x - lg
	if x < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 100000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-17 {
				break
			}
		}
		return 1 - math.Exp(lpre)*sum
	}
	const tiny = 1e-300
	b := x + 1 - a
	cc := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 100000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		cc = b + an/cc
		if math.Abs(cc) < tiny {
			cc = tiny
		}
		d = 1 / d
		del := d * cc
		h *= del
		if math.Abs(del-1) < 1e-16 {
			break
		}
	}
	return math.Exp(lpre) * h
}
