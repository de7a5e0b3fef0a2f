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
	labels       labels
	ovr          bool
	probA, probB []float64 // Platt scaling per class pair, when fitted with probability=True
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
	c := &svc{svm: s, labels: l, ovr: o.strOr("decision_function_shape", "ovr") == "ovr"}
	if pa, _, err := o.floats("_probA"); err == nil && len(pa) > 0 {
		if len(pa) != len(s.intercept) {
			return nil, 0, o.errf("_probA has %d values for %d class pairs", len(pa), len(s.intercept))
		}
		if c.probB, err = o.vec("_probB", len(pa)); err != nil {
			return nil, 0, err
		}
		c.probA = pa
	}
	return c, n, nil
}

func (c *svc) classes() labels { return c.labels }
func (c *svc) hasProba() bool  { return c.probA != nil }
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
	var res classResult
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
		if c.probA != nil {
			if res.proba.data == nil {
				res.proba = newMat(x.rows, k)
			}
			c.probability(raw, res.proba.row(r))
		}
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
	res.idx, res.decision = idx, dec
	return res
}

// probability is libsvm's svm_predict_probability: Platt-scaled pairwise
// probabilities, coupled into class probabilities by the method of Wu, Lin
// and Weng (2004) as libsvm implements it.
func (c *svc) probability(raw, out []float64) {
	k := len(out)
	const minProb = 1e-7
	r := make([]float64, k*k) // r[i*k+j]: P(class i | i or j)
	p := 0
	for i := 0; i < k; i++ {
		for j := i + 1; j < k; j++ {
			v := min(max(plattSigmoid(raw[p], c.probA[p], c.probB[p]), minProb), 1-minProb)
			r[i*k+j], r[j*k+i] = v, 1-v
			p++
		}
	}
	// sklearn's libsvm fork couples even two classes (newer libsvm returns
	// r directly there); the iteration stops early, so the results differ.
	coupleProbabilities(k, r, out)
}

func plattSigmoid(dec, a, b float64) float64 {
	f := dec*a + b
	if f >= 0 {
		return math.Exp(-f) / (1 + math.Exp(-f))
	}
	return 1 / (1 + math.Exp(f))
}

// coupleProbabilities solves libsvm's multiclass_probability fixed point
// for p given pairwise probabilities r (k × k).
func coupleProbabilities(k int, r, p []float64) {
	q := make([]float64, k*k)
	qp := make([]float64, k)
	eps := 0.005 / float64(k)
	for t := 0; t < k; t++ {
		p[t] = 1 / float64(k)
		q[t*k+t] = 0
		for j := 0; j < t; j++ {
			q[t*k+t] += r[j*k+t] * r[j*k+t]
			q[t*k+j] = q[j*k+t]
		}
		for j := t + 1; j < k; j++ {
			q[t*k+t] += r[j*k+t] * r[j*k+t]
			q[t*k+j] = -r[j*k+t] * r[t*k+j]
		}
	}
	for iter := 0; iter < max(100, k); iter++ {
		pqp := 0.0
		for t := 0; t < k; t++ {
			qp[t] = 0
			for j := 0; j < k; j++ {
				qp[t] += q[t*k+j] * p[j]
			}
			pqp += p[t] * qp[t]
		}
		maxErr := 0.0
		for t := 0; t < k; t++ {
			maxErr = max(maxErr, math.Abs(qp[t]-pqp))
		}
		if maxErr < eps {
			break
		}
		for t := 0; t < k; t++ {
			diff := (-qp[t] + pqp) / q[t*k+t]
			p[t] += diff
			pqp = (pqp + diff*(diff*q[t*k+t]+2*qp[t])) / (1 + diff) / (1 + diff)
			for j := 0; j < k; j++ {
				qp[j] = (qp[j] + diff*q[t*k+j]) / (1 + diff)
				p[j] /= 1 + diff
			}
		}
	}
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
