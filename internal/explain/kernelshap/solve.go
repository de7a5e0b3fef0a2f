package kernelshap

import (
	"errors"
	"math"
)

// solve fits the SHAP values of one output: weighted least squares of y
// on the coalition indicators, constrained so the values sum to total (the
// row's output minus the expected one). The constraint is eliminated by
// writing the last active feature's value as total minus the others.
func solve(coal []coalition, y []float64, total float64, cfg Config) ([]float64, error) {
	m := len(coal[0].present)
	active := make([]int, m)
	for i := range active {
		active[i] = i
	}
	if cfg.L1 > 0 || (cfg.MaxFeatures > 0 && cfg.MaxFeatures < m) {
		active = selectL1(coal, y, cfg)
	}
	phi := make([]float64, m)
	switch len(active) {
	case 0:
		return phi, nil
	case 1:
		phi[active[0]] = total
		return phi, nil
	}
	last := active[len(active)-1]
	free := active[:len(active)-1]
	n := len(free)
	a := make([]float64, n*n)
	b := make([]float64, n)
	xs := make([]float64, n)
	for s, c := range coal {
		zl := b2f(c.present[last])
		for i, f := range free {
			xs[i] = b2f(c.present[f]) - zl
		}
		t := y[s] - zl*total
		for i := range n {
			if xs[i] == 0 {
				continue
			}
			wx := c.weight * xs[i]
			b[i] += wx * t
			for j := range n {
				a[i*n+j] += wx * xs[j]
			}
		}
	}
	sol, err := gauss(a, b, n)
	if err != nil {
		return nil, err
	}
	rest := total
	for i, f := range free {
		phi[f] = sol[i]
		rest -= sol[i]
	}
	phi[last] = rest
	return phi, nil
}

// gauss solves the n×n system a·x = b by elimination with partial
// pivoting; a and b are overwritten.
func gauss(a, b []float64, n int) ([]float64, error) {
	scale := 0.0
	for _, v := range a {
		scale = max(scale, math.Abs(v))
	}
	for col := range n {
		p := col
		for r := col + 1; r < n; r++ {
			if math.Abs(a[r*n+col]) > math.Abs(a[p*n+col]) {
				p = r
			}
		}
		if math.Abs(a[p*n+col]) <= 1e-12*scale {
			return nil, errors.New("coalitions do not determine the values; raise nsamples")
		}
		if p != col {
			for j := range n {
				a[p*n+j], a[col*n+j] = a[col*n+j], a[p*n+j]
			}
			b[p], b[col] = b[col], b[p]
		}
		for r := col + 1; r < n; r++ {
			f := a[r*n+col] / a[col*n+col]
			if f == 0 {
				continue
			}
			for j := col; j < n; j++ {
				a[r*n+j] -= f * a[col*n+j]
			}
			b[r] -= f * b[col]
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		s := b[r]
		for j := r + 1; j < n; j++ {
			s -= a[r*n+j] * x[j]
		}
		x[r] = s / a[r*n+r]
	}
	return x, nil
}

// selectL1 picks the features a weighted Lasso keeps: with penalty L1, or
// with the smallest penalty (found by bisection) that keeps at most
// MaxFeatures.
func selectL1(coal []coalition, y []float64, cfg Config) []int {
	if cfg.MaxFeatures == 0 {
		return nonzero(lasso(coal, y, cfg.L1))
	}
	lo, hi := 0.0, 1.0
	for len(nonzero(lasso(coal, y, hi))) > cfg.MaxFeatures && hi < 1e12 {
		hi *= 4
	}
	best := nonzero(lasso(coal, y, hi))
	for range 40 {
		mid := (lo + hi) / 2
		sel := nonzero(lasso(coal, y, mid))
		if len(sel) <= cfg.MaxFeatures {
			hi, best = mid, sel
		} else {
			lo = mid
		}
	}
	return best
}

// lasso minimises Σ w (y - z·β)² / (2 Σ w) + alpha Σ |β| by coordinate
// descent.
func lasso(coal []coalition, y []float64, alpha float64) []float64 {
	m := len(coal[0].present)
	sw := 0.0
	for _, c := range coal {
		sw += c.weight
	}
	norm := make([]float64, m) // Σ w z_j² / Σ w
	for _, c := range coal {
		for j, p := range c.present {
			if p {
				norm[j] += c.weight / sw
			}
		}
	}
	beta := make([]float64, m)
	resid := append([]float64(nil), y...)
	for range 500 {
		change := 0.0
		for j := range m {
			if norm[j] == 0 {
				continue
			}
			rho := 0.0
			for s, c := range coal {
				if c.present[j] {
					rho += c.weight / sw * (resid[s] + beta[j])
				}
			}
			nb := softThreshold(rho, alpha) / norm[j]
			if d := nb - beta[j]; d != 0 {
				for s, c := range coal {
					if c.present[j] {
						resid[s] -= d
					}
				}
				change = max(change, math.Abs(d))
				beta[j] = nb
			}
		}
		if change < 1e-10 {
			break
		}
	}
	return beta
}

func softThreshold(v, t float64) float64 {
	switch {
	case v > t:
		return v - t
	case v < -t:
		return v + t
	}
	return 0
}

func nonzero(beta []float64) []int {
	var out []int
	for i, b := range beta {
		if b != 0 {
			out = append(out, i)
		}
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
