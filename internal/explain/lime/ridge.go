package lime

import (
	"errors"
	"math"
	"slices"
)

// fit is a weighted ridge regression of y on some columns of x: the
// coefficients of cols, the unpenalised intercept, and the weighted R²
// of the fit (scikit-learn's Ridge(alpha).fit(x, y, sample_weight).score,
// which LIME's explanations report).
type fit struct {
	coef      []float64
	intercept float64
	score     float64
}

// ridge fits y ≈ intercept + Σ coef[k]·x[:, cols[k]] minimising
// Σ w·residual² + alpha·|coef|². The intercept is left out of the penalty
// by centring x and y on their weighted means, as scikit-learn does.
func ridge(x [][]float64, cols []int, y, w []float64, alpha float64) (fit, error) {
	p := len(cols)
	sw := 0.0
	for _, v := range w {
		sw += v
	}
	if sw <= 0 {
		return fit{}, errors.New("lime: sample weights sum to zero (kernel width too small for the samples' distances)")
	}
	xm := make([]float64, p)
	ym := 0.0
	for s, row := range x {
		for k, c := range cols {
			xm[k] += w[s] * row[c]
		}
		ym += w[s] * y[s]
	}
	for k := range xm {
		xm[k] /= sw
	}
	ym /= sw
	a := make([]float64, p*p)
	b := make([]float64, p)
	xc := make([]float64, p)
	for s, row := range x {
		for k, c := range cols {
			xc[k] = row[c] - xm[k]
		}
		yc := y[s] - ym
		for i := range p {
			wx := w[s] * xc[i]
			b[i] += wx * yc
			for j := i; j < p; j++ {
				a[i*p+j] += wx * xc[j]
			}
		}
	}
	for i := range p {
		for j := range i {
			a[i*p+j] = a[j*p+i]
		}
		a[i*p+i] += alpha
	}
	coef, err := solveSPD(a, b, p)
	if err != nil {
		return fit{}, err
	}
	f := fit{coef: coef, intercept: ym}
	for k := range p {
		f.intercept -= coef[k] * xm[k]
	}
	var ssRes, ssTot float64
	for s, row := range x {
		pred := f.predict(row, cols)
		ssRes += w[s] * (y[s] - pred) * (y[s] - pred)
		ssTot += w[s] * (y[s] - ym) * (y[s] - ym)
	}
	f.score = 1 - ssRes/ssTot
	if ssTot == 0 {
		f.score = 1
		if ssRes > 0 {
			f.score = 0
		}
	}
	return f, nil
}

func (f fit) predict(row []float64, cols []int) float64 {
	v := f.intercept
	for k, c := range cols {
		v += f.coef[k] * row[c]
	}
	return v
}

// solveSPD solves a·x = b for a symmetric positive semi-definite p×p
// matrix by Cholesky factorisation; a singular direction (a column that
// never varies under a zero penalty) gets a zero coefficient.
func solveSPD(a, b []float64, p int) ([]float64, error) {
	l := make([]float64, p*p)
	scale := 0.0
	for i := range p {
		scale = max(scale, math.Abs(a[i*p+i]))
	}
	tiny := 1e-12 * max(scale, 1e-300)
	for i := range p {
		for j := 0; j <= i; j++ {
			s := a[i*p+j]
			for k := range j {
				s -= l[i*p+k] * l[j*p+k]
			}
			if i == j {
				if s <= tiny {
					l[i*p+i] = 0 // a direction with no information
					continue
				}
				l[i*p+i] = math.Sqrt(s)
			} else if l[j*p+j] != 0 {
				l[i*p+j] = s / l[j*p+j]
			}
		}
	}
	y := slices.Clone(b)
	for i := range p {
		for k := range i {
			y[i] -= l[i*p+k] * y[k]
		}
		if l[i*p+i] == 0 {
			y[i] = 0
			continue
		}
		y[i] /= l[i*p+i]
	}
	for i := p - 1; i >= 0; i-- {
		for k := i + 1; k < p; k++ {
			y[i] -= l[k*p+i] * y[k]
		}
		if l[i*p+i] == 0 {
			y[i] = 0
			continue
		}
		y[i] /= l[i*p+i]
	}
	for _, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errors.New("lime: the local regression has no finite solution")
		}
	}
	return y, nil
}

// selectFeatures picks at most n columns of x to explain with, as LIME's
// feature_selection does: "forward_selection" adds, one at a time, the
// column that most raises the weighted R² of an unpenalised fit;
// "highest_weights" keeps the columns whose ridge coefficients
// (alpha 0.01) times the instance's value (row 0) are largest in
// magnitude; "auto" is forward selection up to 6 columns, highest
// weights beyond; "none" keeps every column.
func selectFeatures(x [][]float64, y, w []float64, n int, method string) ([]int, error) {
	p := len(x[0])
	all := make([]int, p)
	for i := range all {
		all[i] = i
	}
	if method == "auto" {
		method = "highest_weights"
		if n <= 6 {
			method = "forward_selection"
		}
	}
	if method == "none" || n >= p {
		return all, nil
	}
	switch method {
	case "forward_selection":
		var chosen []int
		for len(chosen) < n {
			best, bestScore := -1, math.Inf(-1)
			for _, c := range all {
				if slices.Contains(chosen, c) {
					continue
				}
				f, err := ridge(x, append(slices.Clone(chosen), c), y, w, 0)
				if err != nil {
					return nil, err
				}
				if f.score > bestScore {
					best, bestScore = c, f.score
				}
			}
			chosen = append(chosen, best)
		}
		return chosen, nil
	default: // highest_weights
		f, err := ridge(x, all, y, w, 0.01)
		if err != nil {
			return nil, err
		}
		order := slices.Clone(all)
		slices.SortStableFunc(order, func(i, j int) int {
			return cmpDesc(math.Abs(f.coef[i]*x[0][i]), math.Abs(f.coef[j]*x[0][j]))
		})
		return order[:n], nil
	}
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}
