package sklearn

import (
	"fmt"
	"math"
	"slices"

	"github.com/ferryserve/ferry/internal/runtime"
)

// knn is a fitted KNeighbors model evaluated by brute force with the
// Euclidean (Minkowski p=2) metric.
type knn struct {
	fitX      []float64
	y         []float64
	n, k      int
	distance  bool // weights="distance"
	manhattan bool
}

func readKNN(o obj) (*knn, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	m := &knn{n: n}
	if m.k, err = o.int("n_neighbors"); err != nil {
		return nil, 0, err
	}
	switch w := o.strOr("weights", ""); w {
	case "uniform":
	case "distance":
		m.distance = true
	default:
		return nil, 0, fmt.Errorf("%w: %s(weights=%q)", runtime.ErrUnsupported, o.cls, w)
	}
	switch metric := o.strOr("effective_metric_", ""); metric {
	case "euclidean":
	case "manhattan":
		m.manhattan = true
	default:
		return nil, 0, fmt.Errorf("%w: %s with metric %q", runtime.ErrUnsupported, o.cls, metric)
	}
	x, shape, err := o.floats("_fit_X")
	if err != nil {
		return nil, 0, err
	}
	if len(shape) != 2 || shape[1] != n || shape[0] < m.k || m.k == 0 {
		return nil, 0, o.errf("_fit_X shape %v for %d features and %d neighbours", shape, n, m.k)
	}
	m.fitX = x
	if m.y, err = o.vec("_y", shape[0]); err != nil {
		return nil, 0, fmt.Errorf("%w (multi-output neighbours are not supported)", err)
	}
	return m, n, nil
}

type neighbour struct {
	d float64
	i int
}

// neighbours returns the k nearest training rows, nearest first, ties by
// index.
func (m *knn) neighbours(x []float64, buf []neighbour) []neighbour {
	buf = buf[:0]
	for i := 0; i*m.n < len(m.fitX); i++ {
		s := 0.0
		for j, v := range x {
			d := v - m.fitX[i*m.n+j]
			if m.manhattan {
				s += math.Abs(d)
			} else {
				s += d * d
			}
		}
		buf = append(buf, neighbour{s, i})
	}
	slices.SortStableFunc(buf, func(a, b neighbour) int {
		switch {
		case a.d < b.d:
			return -1
		case a.d > b.d:
			return 1
		}
		return 0
	})
	out := buf[:m.k]
	if !m.manhattan {
		for i := range out {
			out[i].d = math.Sqrt(out[i].d)
		}
	}
	return out
}

// weights are sklearn's neighbour weights: 1, or 1/d with exact matches
// taking all the weight.
func (m *knn) weights(nb []neighbour, w []float64) {
	zero := false
	for _, v := range nb {
		zero = zero || v.d == 0
	}
	for i, v := range nb {
		switch {
		case !m.distance:
			w[i] = 1
		case zero && v.d == 0:
			w[i] = 1
		case zero:
			w[i] = 0
		default:
			w[i] = 1 / v.d
		}
	}
}

type knnRegressor struct{ *knn }

func buildKNNRegressor(o obj) (any, int, error) {
	m, n, err := readKNN(o)
	if err != nil {
		return nil, 0, err
	}
	return knnRegressor{m}, n, nil
}

func (r knnRegressor) regress(x mat) []float64 {
	out := make([]float64, x.rows)
	buf := make([]neighbour, 0, len(r.fitX)/r.n)
	w := make([]float64, r.k)
	for i := range out {
		nb := r.neighbours(x.row(i), buf)
		r.weights(nb, w)
		s, ws := 0.0, 0.0
		for j, v := range nb {
			s += w[j] * r.y[v.i]
			ws += w[j]
		}
		if r.distance {
			out[i] = s / ws
		} else {
			out[i] = s / float64(r.k)
		}
	}
	return out
}

type knnClassifier struct {
	*knn
	labels labels
}

func buildKNNClassifier(o obj) (any, int, error) {
	m, n, err := readKNN(o)
	if err != nil {
		return nil, 0, err
	}
	l, err := readLabels(o)
	if err != nil {
		return nil, 0, err
	}
	for _, v := range m.y {
		if v < 0 || int(v) >= l.len() || v != math.Trunc(v) {
			return nil, 0, o.errf("_y holds class index %v of %d", v, l.len())
		}
	}
	return &knnClassifier{knn: m, labels: l}, n, nil
}

func (c *knnClassifier) classes() labels    { return c.labels }
func (c *knnClassifier) hasProba() bool     { return true }
func (c *knnClassifier) decisionWidth() int { return 0 }

func (c *knnClassifier) classify(x mat) classResult {
	k := c.labels.len()
	p := newMat(x.rows, k)
	idx := make([]int, x.rows)
	buf := make([]neighbour, 0, len(c.fitX)/c.n)
	w := make([]float64, c.k)
	for i := range idx {
		nb := c.neighbours(x.row(i), buf)
		c.weights(nb, w)
		pr := p.row(i)
		for j, v := range nb {
			pr[int(c.y[v.i])] += w[j]
		}
		idx[i] = argmax(pr)
		normalize(pr)
	}
	return classResult{idx: idx, proba: p}
}
