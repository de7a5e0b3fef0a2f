package sklearn

import (
	"fmt"
	"math"

	"github.com/ferryserve/ferry/internal/runtime"
)

// kernel is a libsvm kernel with sklearn's fitted parameters.
type kernel struct {
	kind         string
	gamma, coef0 float64
	degree       int
}

func (k *kernel) eval(x, sv []float64) float64 {
	switch k.kind {
	case "linear":
		return dot(x, sv)
	case "poly":
		return powi(k.gamma*dot(x, sv)+k.coef0, k.degree)
	case "sigmoid":
		return math.Tanh(k.gamma*dot(x, sv) + k.coef0)
	default: // rbf
		s := 0.0
		for i, v := range x {
			d := v - sv[i]
			s += d * d
		}
		return math.Exp(-k.gamma * s)
	}
}

// powi is libsvm's integer power by squaring (svm.cpp), kept for bit-equal
// polynomial kernels.
func powi(base float64, times int) float64 {
	tmp, ret := base, 1.0
	for t := times; t > 0; t /= 2 {
		if t%2 == 1 {
			ret *= tmp
		}
		tmp *= tmp
	}
	return ret
}

// svm holds a fitted libsvm model: support vectors grouped by class, the
// raw dual coefficients and intercepts (sklearn's _dual_coef_ and
// _intercept_, which are libsvm's sv_coef and -rho).
type svm struct {
	k         kernel
	sv        []float64 // nSV × n
	n         int
	dual      []float64 // rows × nSV
	intercept []float64
	nSupport  []int
	start     []int
}

func readSVM(o obj) (*svm, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	if sp, _ := o.get("_sparse"); sp == true {
		return nil, 0, fmt.Errorf("%w: %s fitted on sparse input", runtime.ErrUnsupported, o.cls)
	}
	s := &svm{n: n}
	s.k.kind = o.strOr("kernel", "rbf")
	switch s.k.kind {
	case "linear", "poly", "rbf", "sigmoid":
	default:
		return nil, 0, fmt.Errorf("%w: %s(kernel=%q)", runtime.ErrUnsupported, o.cls, s.k.kind)
	}
	if s.k.gamma, err = o.num("_gamma"); err != nil {
		return nil, 0, err
	}
	if s.k.coef0, err = o.num("coef0"); err != nil {
		return nil, 0, err
	}
	if s.k.degree, err = o.int("degree"); err != nil {
		return nil, 0, err
	}
	sv, shape, err := o.floats("support_vectors_")
	if err != nil {
		return nil, 0, err
	}
	if len(shape) != 2 || shape[1] != n {
		return nil, 0, o.errf("support_vectors_ shape %v for %d features", shape, n)
	}
	s.sv = sv
	nsv := shape[0]
	dual, dshape, err := o.floats("_dual_coef_")
	if err != nil {
		return nil, 0, err
	}
	if len(dshape) != 2 || dshape[1] != nsv {
		return nil, 0, o.errf("_dual_coef_ shape %v for %d support vectors", dshape, nsv)
	}
	s.dual = dual
	if s.intercept, _, err = o.floats("_intercept_"); err != nil {
		return nil, 0, err
	}
	return s, n, nil
}

// sum is Σ coef·K(x, sv) over support vectors lo..hi of dual row r.
func (s *svm) sum(kv []float64, r, lo, hi int) float64 {
	nsv := len(kv)
	acc := 0.0
	for i := lo; i < hi; i++ {
		acc += s.dual[r*nsv+i] * kv[i]
	}
	return acc
}

func (s *svm) kernels(x []float64, kv []float64) {
	for i := range kv {
		kv[i] = s.k.eval(x, s.sv[i*s.n:(i+1)*s.n])
	}
}

// svr is SVR: Σ coef·K + intercept.
type svr struct{ *svm }

func buildSVR(o obj) (any, int, error) {
	s, n, err := readSVM(o)
	if err != nil {
		return nil, 0, err
	}
	if len(s.intercept) != 1 || len(s.dual) != len(s.sv)/n {
		return nil, 0, o.errf("regression SVM with %d intercepts", len(s.intercept))
	}
	return svr{s}, n, nil
}

func (r svr) regress(x mat) []float64 {
	y := make([]float64, x.rows)
	kv := make([]float64, len(r.sv)/r.n)
	for i := range y {
		r.kernels(x.row(i), kv)
		y[i] = r.sum(kv, 0, 0, len(kv)) + r.intercept[0]
	}
	return y
}

// svc is SVC: one-vs-one libsvm votes, decision_function in sklearn's
// shape (binary: one column, negated; multiclass ovr: votes plus scaled
// confidences; ovo: the pairwise values).
type svc struct {
	*svm
	labels labels
	ovr    bool
}

func buildSVC(o obj) (any, int, error) {
	s, n, err := readSVM(o)
	if err != nil {
		return nil, 0, err
	}
	l, err := readLabels(o)
	if err != nil {
		return nil, 0, err
	}
	k := l.len()
	ns, _, err := o.floats("_n_support")
	if err != nil {
		return nil, 0, err
	}
	if len(ns) != k || len(s.intercept) != k*(k-1)/2 || len(s.dual) != (k-1)*(len(s.sv)/n) {
		return nil, 0, o.errf("libsvm model does not fit %d classes", k)
	}
	total := 0
	for _, v := range ns {
		if v < 0 {
			return nil, 0, o.errf("_n_support holds %v", v)
		}
		s.start = append(s.start, total)
		s.nSupport = append(s.nSupport, int(v))
		total += int(v)
	}
	if total != len(s.sv)/n {
		return nil, 0, o.errf("_n_support sums to %d, there are %d support vectors", total, len(s.sv)/n)
	}
	if bt, _ := o.get("break_ties"); bt == true {
		return nil, 0, fmt.Errorf("%w: SVC(break_ties=True)", runtime.ErrUnsupported)
	}
	return &svc{svm: s, labels: l, ovr: o.strOr("decision_function_shape", "ovr") == "ovr"}, n, nil
}

func (c *svc) classes() labels { return c.labels }
func (c *svc) hasProba() bool  { return false }
func (c *svc) decisionWidth() int {
	k := c.labels.len()
	switch {
	case k == 2:
		return 1
	case c.ovr:
		return k
	}
	return k * (k - 1) / 2
}

func (c *svc) classify(x mat) classResult {
	k := c.labels.len()
	pairs := k * (k - 1) / 2
	nsv := len(c.sv) / c.n
	kv := make([]float64, nsv)
	dec := newMat(x.rows, c.decisionWidth())
	raw := make([]float64, pairs)
	votes := make([]int, k)
	idx := make([]int, x.rows)
	for r := 0; r < x.rows; r++ {
		c.kernels(x.row(r), kv)
		clear(votes)
		p := 0
		for i := 0; i < k; i++ {
			for j := i + 1; j < k; j++ {
				s := c.sum(kv, j-1, c.start[i], c.start[i]+c.nSupport[i]) +
					c.sum(kv, i, c.start[j], c.start[j]+c.nSupport[j])
				raw[p] = s + c.intercept[p]
				if raw[p] > 0 {
					votes[i]++
				} else {
					votes[j]++
				}
				p++
			}
		}
		best := 0
		for i := range votes {
			if votes[i] > votes[best] {
				best = i
			}
		}
		idx[r] = best
		d := dec.row(r)
		switch {
		case k == 2:
			d[0] = -raw[0]
		case c.ovr:
			ovrDecision(d, raw, k)
		default:
			copy(d, raw)
		}
	}
	return classResult{idx: idx, decision: dec}
}

// ovrDecision is sklearn.utils.multiclass._ovr_decision_function for one
// row, given libsvm's pairwise values (class i wins pair (i, j) when > 0).
func ovrDecision(out, raw []float64, k int) {
	votes := make([]float64, k)
	conf := make([]float64, k)
	p := 0
	for i := 0; i < k; i++ {
		for j := i + 1; j < k; j++ {
			c := -raw[p]
			conf[i] -= c
			conf[j] += c
			if raw[p] < 0 {
				votes[j]++
			} else {
				votes[i]++
			}
			p++
		}
	}
	for i := range out {
		out[i] = votes[i] + conf[i]/(3*(math.Abs(conf[i])+1))
	}
}
