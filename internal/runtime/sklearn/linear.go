package sklearn

import (
	"fmt"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
)

// linearRegressor is y = x·coef + intercept (LinearRegression, Ridge,
// Lasso, ElasticNet, SGDRegressor, LinearSVR).
type linearRegressor struct {
	coef      []float64
	intercept float64
}

func intercepts(o obj, k int) ([]float64, error) {
	v, _ := o.get("intercept_")
	if f, ok := pickle.Number(v); ok {
		if k != 1 {
			return nil, o.errf("intercept_ is a scalar but there are %d outputs", k)
		}
		return []float64{f}, nil
	}
	return o.vec("intercept_", k)
}

func buildLinearRegressor(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	coef, shape, err := o.floats("coef_")
	if err != nil {
		return nil, 0, err
	}
	if len(coef) != n {
		if len(shape) == 2 && shape[0] > 1 {
			return nil, 0, fmt.Errorf("%w: %s with %d outputs (multi-output regression)", runtime.ErrUnsupported, o.cls, shape[0])
		}
		return nil, 0, o.errf("coef_ has %d values for %d features", len(coef), n)
	}
	b, err := intercepts(o, 1)
	if err != nil {
		return nil, 0, err
	}
	return &linearRegressor{coef: coef, intercept: b[0]}, n, nil
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

func (l *linearRegressor) regress(x mat) []float64 {
	y := make([]float64, x.rows)
	for i := range y {
		y[i] = dot(x.row(i), l.coef) + l.intercept
	}
	return y
}

// probaKind says how a linear classifier turns decisions into probabilities.
type probaKind int

const (
	noProba      probaKind = iota
	ovrProba               // expit per class, normalised (binary: [1-p, p])
	softmaxProba           // multinomial
)

// linearClassifier is LogisticRegression, SGDClassifier or LinearSVC:
// decision = x·coefᵀ + intercept, one row of coef per class (one in total
// for two classes).
type linearClassifier struct {
	labels    labels
	coef      []float64 // k × n
	intercept []float64
	k, n      int
	proba     probaKind
}

func buildLinearClassifier(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	l, err := readLabels(o)
	if err != nil {
		return nil, 0, err
	}
	coef, _, err := o.floats("coef_")
	if err != nil {
		return nil, 0, err
	}
	k := 1
	if l.len() > 2 {
		k = l.len()
	}
	if len(coef) != k*n {
		return nil, 0, o.errf("coef_ has %d values, want %d classes × %d features", len(coef), k, n)
	}
	b, err := intercepts(o, k)
	if err != nil {
		return nil, 0, err
	}
	c := &linearClassifier{labels: l, coef: coef, intercept: b, k: k, n: n}
	switch o.cls {
	case "LogisticRegression":
		mc := o.strOr("multi_class", "auto")
		if mc == "deprecated" { // sklearn >= 1.5: the old "auto" rule
			mc = "auto"
		}
		solver := o.strOr("solver", "lbfgs")
		c.proba = softmaxProba
		if mc == "ovr" || mc == "warn" || (mc == "auto" && (l.len() <= 2 || solver == "liblinear")) {
			c.proba = ovrProba
		}
	case "SGDClassifier":
		if loss := o.strOr("loss", ""); loss == "log_loss" || loss == "log" {
			c.proba = ovrProba
		}
	}
	return c, n, nil
}

func (c *linearClassifier) classes() labels    { return c.labels }
func (c *linearClassifier) hasProba() bool     { return c.proba != noProba }
func (c *linearClassifier) decisionWidth() int { return c.k }

func (c *linearClassifier) classify(x mat) classResult {
	dec := newMat(x.rows, c.k)
	idx := make([]int, x.rows)
	for i := 0; i < x.rows; i++ {
		r, d := x.row(i), dec.row(i)
		for j := range d {
			d[j] = dot(r, c.coef[j*c.n:(j+1)*c.n]) + c.intercept[j]
		}
		if c.k == 1 {
			if d[0] > 0 {
				idx[i] = 1
			}
		} else {
			idx[i] = argmax(d)
		}
	}
	res := classResult{idx: idx, decision: dec}
	nc := c.labels.len()
	switch c.proba {
	case ovrProba:
		p := newMat(x.rows, nc)
		for i := 0; i < x.rows; i++ {
			d, pr := dec.row(i), p.row(i)
			if c.k == 1 {
				pr[1] = expit(d[0])
				pr[0] = 1 - pr[1]
				continue
			}
			s := 0.0
			for j := range pr {
				pr[j] = expit(d[j])
				s += pr[j]
			}
			for j := range pr {
				if s == 0 {
					pr[j] = 1 / float64(nc)
				} else {
					pr[j] /= s
				}
			}
		}
		res.proba = p
	case softmaxProba:
		p := newMat(x.rows, nc)
		for i := 0; i < x.rows; i++ {
			d, pr := dec.row(i), p.row(i)
			if c.k == 1 {
				pr[0], pr[1] = -d[0], d[0]
			} else {
				copy(pr, d)
			}
			softmaxRow(pr)
		}
		res.proba = p
	}
	return res
}
