package sklearn

import (
	"fmt"
	"math"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
)

// hgbNode is one node of a HistGradientBoosting TreePredictor.
type hgbNode struct {
	value       float64
	threshold   float64
	feature     int32
	left, right int32
	missingLeft bool
	leaf        bool
}

type hgbTree []hgbNode

// value walks a TreePredictor on raw float64 features (sklearn's
// _predict_one_from_raw_data, numerical splits): NaN goes the way
// missing_go_to_left says, otherwise left iff x <= threshold.
func (t hgbTree) value(x []float64) float64 {
	i := 0
	for {
		n := &t[i]
		if n.leaf {
			return n.value
		}
		v := x[n.feature]
		switch {
		case math.IsNaN(v):
			if n.missingLeft {
				i = int(n.left)
			} else {
				i = int(n.right)
			}
		case v <= n.threshold:
			i = int(n.left)
		default:
			i = int(n.right)
		}
	}
}

func readHGBTree(v any, nFeatures int) (hgbTree, error) {
	o, err := asObj(v)
	if err != nil {
		return nil, err
	}
	if o.cls != "TreePredictor" {
		return nil, o.errf("predictor is not a TreePredictor")
	}
	a, err := o.array("nodes")
	if err != nil {
		return nil, err
	}
	field := func(name string) ([]float64, error) {
		f, err := a.FieldFloat64s(name)
		if err != nil {
			return nil, o.errf("nodes: %v", err)
		}
		return f, nil
	}
	cols := map[string][]float64{}
	for _, name := range []string{"value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf", "is_categorical"} {
		if cols[name], err = field(name); err != nil {
			return nil, err
		}
	}
	cnt := a.Len()
	if cnt == 0 {
		return nil, o.errf("empty tree")
	}
	t := make(hgbTree, cnt)
	for i := range t {
		n := hgbNode{value: cols["value"][i], leaf: cols["is_leaf"][i] != 0}
		if !n.leaf {
			if cols["is_categorical"][i] != 0 {
				return nil, fmt.Errorf("%w: HistGradientBoosting with categorical splits", runtime.ErrUnsupported)
			}
			l, r, f := int(cols["left"][i]), int(cols["right"][i]), int(cols["feature_idx"][i])
			if l <= i || r <= i || l >= cnt || r >= cnt || f < 0 || f >= nFeatures {
				return nil, o.errf("node %d has children %d, %d and feature %d (of %d nodes)", i, l, r, f, cnt)
			}
			n.left, n.right, n.feature = int32(l), int32(r), int32(f)
			n.threshold = cols["num_threshold"][i]
			n.missingLeft = cols["missing_go_to_left"][i] != 0
		}
		t[i] = n
	}
	return t, nil
}

type hgbLink int

const (
	linkIdentity hgbLink = iota
	linkExp
	linkLogit
	linkSoftmax
)

// hgb is HistGradientBoostingClassifier/Regressor: raw = baseline + Σ
// tree values, per tree column.
type hgb struct {
	labels   labels
	link     hgbLink
	baseline []float64
	iters    [][]hgbTree
	k        int
}

func buildHGB(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	if v, ok := o.get("is_categorical_"); ok && v != nil {
		if a, ok := v.(*pickle.Array); ok {
			f, _ := a.Float64s()
			for _, c := range f {
				if c != 0 {
					return nil, 0, fmt.Errorf("%w: HistGradientBoosting with categorical features", runtime.ErrUnsupported)
				}
			}
		}
	}
	if o.has("_preprocessor") { // sklearn >= 1.4 categorical support
		return nil, 0, fmt.Errorf("%w: HistGradientBoosting with categorical features", runtime.ErrUnsupported)
	}
	preds, err := o.list("_predictors")
	if err != nil {
		return nil, 0, err
	}
	base, _, err := o.floats("_baseline_prediction")
	if err != nil {
		return nil, 0, err
	}
	g := &hgb{baseline: base, k: len(base)}
	if g.k == 0 {
		return nil, 0, o.errf("empty _baseline_prediction")
	}
	for i, it := range preds {
		l, ok := it.(*pickle.List)
		if !ok || len(l.Items) != g.k {
			return nil, 0, o.errf("_predictors[%d] is %s, want %d trees", i, pickle.Describe(it), g.k)
		}
		trees := make([]hgbTree, g.k)
		for j, tv := range l.Items {
			if trees[j], err = readHGBTree(tv, n); err != nil {
				return nil, 0, fmt.Errorf("_predictors[%d][%d]: %w", i, j, err)
			}
		}
		g.iters = append(g.iters, trees)
	}
	lossName := o.strOr("loss", "")
	if lv, ok := o.get("_loss"); ok {
		if lo, ok := lv.(*pickle.Object); ok {
			lossName = lo.Class.Name
		}
	}
	switch lossName {
	case "HalfBinomialLoss", "BinaryCrossEntropy":
		g.link = linkLogit
	case "HalfMultinomialLoss", "CategoricalCrossEntropy":
		g.link = linkSoftmax
	case "HalfPoissonLoss", "HalfGammaLoss", "Poisson", "poisson", "gamma":
		g.link = linkExp
	}
	if o.cls == "HistGradientBoostingClassifier" {
		if g.labels, err = readLabels(o); err != nil {
			return nil, 0, err
		}
		if g.link != linkLogit && g.link != linkSoftmax {
			return nil, 0, o.errf("classifier with loss %s", lossName)
		}
		if (g.link == linkLogit && g.k != 1) || (g.link == linkSoftmax && g.k != g.labels.len()) {
			return nil, 0, o.errf("%d trees per iteration for %d classes", g.k, g.labels.len())
		}
		return g, n, nil
	}
	if g.k != 1 || g.link == linkLogit || g.link == linkSoftmax {
		return nil, 0, o.errf("regressor with %d trees per iteration and loss %s", g.k, lossName)
	}
	return hgbRegressor{g}, n, nil
}

func (g *hgb) raw(x mat) mat {
	out := newMat(x.rows, g.k)
	for i := 0; i < x.rows; i++ {
		copy(out.row(i), g.baseline)
	}
	// Tree-major, as for forests: per row the sum order is unchanged.
	for _, it := range g.iters {
		for j, t := range it {
			for i := 0; i < x.rows; i++ {
				out.data[i*g.k+j] += t.value(x.row(i))
			}
		}
	}
	return out
}

type hgbRegressor struct{ g *hgb }

func (r hgbRegressor) regress(x mat) []float64 {
	y := r.g.raw(x).data
	if r.g.link == linkExp {
		for i, v := range y {
			y[i] = math.Exp(v)
		}
	}
	return y
}

func (g *hgb) classes() labels    { return g.labels }
func (g *hgb) hasProba() bool     { return true }
func (g *hgb) decisionWidth() int { return g.k }

func (g *hgb) classify(x mat) classResult {
	raw := g.raw(x)
	p := newMat(x.rows, g.labels.len())
	idx := make([]int, x.rows)
	for i := range idx {
		d, pr := raw.row(i), p.row(i)
		if g.link == linkSoftmax {
			copy(pr, d)
			softmaxRow(pr)
		} else {
			pr[1] = expit(d[0])
			pr[0] = 1 - pr[1]
		}
		idx[i] = argmax(pr)
	}
	return classResult{idx: idx, proba: p, decision: raw}
}
