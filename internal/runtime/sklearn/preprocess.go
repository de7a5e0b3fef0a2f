package sklearn

import (
	"fmt"
	"math"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
)

// affine is x·scale + shift column-wise, or (x - sub) / div: the fitted
// scalers. Nil slices skip that step.
type affine struct {
	sub, div []float64 // (x - sub) / div
	mul, add []float64 // x*mul + add
	clipLo   float64
	clipHi   float64
	clip     bool
}

func (a *affine) transform(x mat) (mat, error) {
	for i := 0; i < x.rows; i++ {
		r := x.row(i)
		for j := range r {
			v := r[j]
			if a.sub != nil {
				v -= a.sub[j]
			}
			if a.div != nil {
				v /= a.div[j]
			}
			if a.mul != nil {
				v *= a.mul[j]
			}
			if a.add != nil {
				v += a.add[j]
			}
			if a.clip {
				v = min(max(v, a.clipLo), a.clipHi)
			}
			r[j] = v
		}
	}
	return x, nil
}

// optVec reads an array attribute that may be None.
func optVec(o obj, k string, n int) ([]float64, error) {
	if !o.has(k) {
		return nil, nil
	}
	return o.vec(k, n)
}

func buildStandardScaler(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	a := &affine{}
	// mean_ is fitted even when with_mean=False; only the flag says whether
	// transform subtracts it.
	if v, _ := o.get("with_mean"); v != false {
		if a.sub, err = optVec(o, "mean_", n); err != nil {
			return nil, 0, err
		}
	}
	if v, _ := o.get("with_std"); v != false {
		if a.div, err = optVec(o, "scale_", n); err != nil {
			return nil, 0, err
		}
	}
	return a, n, nil
}

func buildMinMaxScaler(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	a := &affine{}
	if a.mul, err = o.vec("scale_", n); err != nil {
		return nil, 0, err
	}
	if a.add, err = o.vec("min_", n); err != nil {
		return nil, 0, err
	}
	if v, _ := o.get("clip"); v == true {
		lo, hi, err := featureRange(o)
		if err != nil {
			return nil, 0, err
		}
		a.clip, a.clipLo, a.clipHi = true, lo, hi
	}
	return a, n, nil
}

func featureRange(o obj) (float64, float64, error) {
	l, err := o.list("feature_range")
	if err != nil || len(l) != 2 {
		return 0, 0, o.errf("feature_range is not a pair")
	}
	lo, ok1 := numberOf(l[0])
	hi, ok2 := numberOf(l[1])
	if !ok1 || !ok2 {
		return 0, 0, o.errf("feature_range is not numeric")
	}
	return lo, hi, nil
}

func buildMaxAbsScaler(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	a := &affine{}
	if a.div, err = o.vec("scale_", n); err != nil {
		return nil, 0, err
	}
	return a, n, nil
}

func buildRobustScaler(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	a := &affine{}
	if v, _ := o.get("with_centering"); v != false {
		if a.sub, err = optVec(o, "center_", n); err != nil {
			return nil, 0, err
		}
	}
	if v, _ := o.get("with_scaling"); v != false {
		if a.div, err = optVec(o, "scale_", n); err != nil {
			return nil, 0, err
		}
	}
	return a, n, nil
}

// normalizer scales each row to unit norm (l1, l2 or max).
type normalizer struct{ norm string }

func buildNormalizer(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	norm := o.strOr("norm", "l2")
	if norm != "l1" && norm != "l2" && norm != "max" {
		return nil, 0, o.errf("norm %q", norm)
	}
	return &normalizer{norm: norm}, n, nil
}

func (z *normalizer) transform(x mat) (mat, error) {
	for i := 0; i < x.rows; i++ {
		r := x.row(i)
		s := 0.0
		for _, v := range r {
			switch z.norm {
			case "l1":
				s += math.Abs(v)
			case "l2":
				s += v * v
			default:
				s = max(s, math.Abs(v))
			}
		}
		if z.norm == "l2" {
			s = math.Sqrt(s)
		}
		if s == 0 {
			continue
		}
		for j := range r {
			r[j] /= s
		}
	}
	return x, nil
}

// imputer replaces missing values by the fitted statistics, dropping the
// columns whose statistic is NaN as sklearn does.
type imputer struct {
	stats   []float64
	missing float64 // NaN means "NaN is missing"
	keep    []int
}

func buildSimpleImputer(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	if v, _ := o.get("add_indicator"); v == true {
		return nil, 0, fmt.Errorf("%w: SimpleImputer(add_indicator=True)", runtime.ErrUnsupported)
	}
	im := &imputer{missing: math.NaN()}
	if im.stats, err = o.vec("statistics_", n); err != nil {
		return nil, 0, err
	}
	mv, _ := o.get("missing_values")
	if f, ok := numberOf(mv); ok {
		im.missing = f
	} else if mv != nil {
		return nil, 0, fmt.Errorf("%w: SimpleImputer(missing_values=%v)", runtime.ErrUnsupported, mv)
	}
	keepEmpty, _ := o.get("keep_empty_features")
	for j, s := range im.stats {
		if !math.IsNaN(s) || keepEmpty == true {
			im.keep = append(im.keep, j)
		}
	}
	return im, n, nil
}

func (im *imputer) width() int { return len(im.keep) }

func (im *imputer) transform(x mat) (mat, error) {
	out := newMat(x.rows, len(im.keep))
	nanMissing := math.IsNaN(im.missing)
	for i := 0; i < x.rows; i++ {
		r, o := x.row(i), out.row(i)
		for k, j := range im.keep {
			v := r[j]
			if (nanMissing && math.IsNaN(v)) || (!nanMissing && v == im.missing) {
				v = im.stats[j]
				if math.IsNaN(v) {
					v = 0 // keep_empty_features fills with 0
				}
			}
			o[k] = v
		}
	}
	return out, nil
}

// pca projects onto the fitted components.
type pca struct {
	mean       []float64
	components []float64 // k × n
	k, n       int
	whiten     []float64 // sqrt(explained_variance_) when whitening
}

func buildPCA(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	comp, shape, err := o.floats("components_")
	if err != nil {
		return nil, 0, err
	}
	if len(shape) != 2 || shape[1] != n || shape[0] == 0 {
		return nil, 0, o.errf("components_ shape %v for %d features", shape, n)
	}
	p := &pca{components: comp, k: shape[0], n: n}
	if p.mean, err = optVec(o, "mean_", n); err != nil {
		return nil, 0, err
	}
	if w, _ := o.get("whiten"); w == true {
		ev, err := o.vec("explained_variance_", p.k)
		if err != nil {
			return nil, 0, err
		}
		p.whiten = make([]float64, p.k)
		for i, v := range ev {
			p.whiten[i] = math.Sqrt(v)
		}
	}
	return p, n, nil
}

func (p *pca) width() int { return p.k }

func (p *pca) transform(x mat) (mat, error) {
	out := newMat(x.rows, p.k)
	c := make([]float64, p.n)
	for i := 0; i < x.rows; i++ {
		copy(c, x.row(i))
		if p.mean != nil {
			for j := range c {
				c[j] -= p.mean[j]
			}
		}
		o := out.row(i)
		for k := range o {
			o[k] = dot(c, p.components[k*p.n:(k+1)*p.n])
			if p.whiten != nil {
				o[k] /= p.whiten[k]
			}
		}
	}
	return out, nil
}

// polynomial makes all monomials of the inputs up to a degree, in
// PolynomialFeatures' order.
type polynomial struct {
	terms [][]int // feature indices multiplied together; empty = bias
}

func buildPolynomialFeatures(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	maxDeg, err := o.int("_max_degree")
	if err != nil {
		if maxDeg, err = o.int("degree"); err != nil {
			return nil, 0, err
		}
	}
	minDeg, err := o.int("_min_degree")
	if err != nil {
		minDeg = 0
	}
	interaction, _ := o.get("interaction_only")
	bias, _ := o.get("include_bias")
	want, err := o.int("n_output_features_")
	if err != nil {
		return nil, 0, err
	}
	if maxDeg > 8 || want > 1<<16 {
		return nil, 0, fmt.Errorf("%w: PolynomialFeatures with degree %d and %d outputs", runtime.ErrUnsupported, maxDeg, want)
	}
	p := &polynomial{}
	if bias == true {
		p.terms = append(p.terms, nil)
	}
	for d := max(minDeg, 1); d <= maxDeg && len(p.terms) <= want; d++ {
		combos(n, d, interaction == true, nil, 0, func(c []int) bool {
			p.terms = append(p.terms, append([]int(nil), c...))
			return len(p.terms) <= want
		})
	}
	if len(p.terms) != want {
		return nil, 0, o.errf("computed %d output features, the model says %d", len(p.terms), want)
	}
	return p, n, nil
}

// combos enumerates index combinations of size d in itertools order
// (with replacement unless distinct).
// fn returns false to stop the enumeration, and so does combos.
func combos(n, d int, distinct bool, cur []int, start int, fn func([]int) bool) bool {
	if len(cur) == d {
		return fn(cur)
	}
	for j := start; j < n; j++ {
		next := j
		if distinct {
			next = j + 1
		}
		if !combos(n, d, distinct, append(cur, j), next, fn) {
			return false
		}
	}
	return true
}

func (p *polynomial) width() int { return len(p.terms) }

func (p *polynomial) transform(x mat) (mat, error) {
	out := newMat(x.rows, len(p.terms))
	for i := 0; i < x.rows; i++ {
		r, o := x.row(i), out.row(i)
		for k, t := range p.terms {
			v := 1.0
			for _, j := range t {
				v *= r[j]
			}
			o[k] = v
		}
	}
	return out, nil
}

func numberOf(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	}
	return 0, false
}

// identity is a FunctionTransformer without a function: how fitted
// ColumnTransformers record remainder="passthrough".
type identity struct{}

func (identity) transform(x mat) (mat, error) { return x, nil }

func buildFunctionTransformer(o obj) (any, int, error) {
	if f, _ := o.get("func"); f != nil {
		return nil, 0, fmt.Errorf("%w: FunctionTransformer with a function (%s); Ferry runs no Python code", runtime.ErrUnsupported, pickle.Describe(f))
	}
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	return identity{}, n, nil
}
