package sklearn

import "math"

// gaussianNB is GaussianNB: per-class Gaussian log-likelihoods.
type gaussianNB struct {
	labels    labels
	theta, vr []float64 // k × n
	logPrior  []float64
	logNorm   []float64 // -0.5 Σ log(2π var)
	n         int
}

func buildGaussianNB(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	l, err := readLabels(o)
	if err != nil {
		return nil, 0, err
	}
	k := l.len()
	g := &gaussianNB{labels: l, n: n}
	if g.theta, err = o.vec("theta_", k*n); err != nil {
		return nil, 0, err
	}
	key := "var_"
	if !o.has(key) {
		key = "sigma_" // sklearn < 1.0
	}
	if g.vr, err = o.vec(key, k*n); err != nil {
		return nil, 0, err
	}
	prior, err := o.vec("class_prior_", k)
	if err != nil {
		return nil, 0, err
	}
	for i := 0; i < k; i++ {
		g.logPrior = append(g.logPrior, math.Log(prior[i]))
		s := 0.0
		for j := 0; j < n; j++ {
			s += math.Log(2 * math.Pi * g.vr[i*n+j])
		}
		g.logNorm = append(g.logNorm, -0.5*s)
	}
	return g, n, nil
}

func (g *gaussianNB) classes() labels    { return g.labels }
func (g *gaussianNB) hasProba() bool     { return true }
func (g *gaussianNB) decisionWidth() int { return 0 }

func (g *gaussianNB) classify(x mat) classResult {
	k := g.labels.len()
	p := newMat(x.rows, k)
	idx := make([]int, x.rows)
	for r := range idx {
		row, jll := x.row(r), p.row(r)
		for i := 0; i < k; i++ {
			s := 0.0
			for j, v := range row {
				d := v - g.theta[i*g.n+j]
				s += d * d / g.vr[i*g.n+j]
			}
			jll[i] = g.logPrior[i] + (g.logNorm[i] - 0.5*s)
		}
		idx[r] = argmax(jll)
		// predict_proba = exp(jll - logsumexp(jll))
		m := math.Inf(-1)
		for _, v := range jll {
			m = max(m, v)
		}
		s := 0.0
		for _, v := range jll {
			s += math.Exp(v - m)
		}
		lse := math.Log(s) + m
		for i := range jll {
			jll[i] = math.Exp(jll[i] - lse)
		}
	}
	return classResult{idx: idx, proba: p}
}
