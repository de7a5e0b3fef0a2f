package sklearn

import (
	"fmt"
	"math"
	"strings"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
)

// forestClassifier averages its trees' probabilities
// (RandomForestClassifier, ExtraTreesClassifier).
type forestClassifier struct {
	labels labels
	trees  []*tree
}

func forestTrees(o obj, n int) ([]*tree, error) {
	ests, err := o.list("estimators_")
	if err != nil {
		return nil, err
	}
	if len(ests) == 0 {
		return nil, o.errf("no estimators_")
	}
	trees := make([]*tree, len(ests))
	for i, e := range ests {
		eo, err := asObj(e)
		if err != nil {
			return nil, err
		}
		tv, _ := eo.get("tree_")
		if trees[i], err = readTree(tv, n); err != nil {
			return nil, fmt.Errorf("estimators_[%d]: %w", i, err)
		}
	}
	return trees, nil
}

func buildForestClassifier(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	if no, err := o.int("n_outputs_"); err == nil && no != 1 {
		return nil, 0, fmt.Errorf("%w: %s with %d outputs (multi-output)", runtime.ErrUnsupported, o.cls, no)
	}
	l, err := readLabels(o)
	if err != nil {
		return nil, 0, err
	}
	trees, err := forestTrees(o, n)
	if err != nil {
		return nil, 0, err
	}
	for i, t := range trees {
		if t.nValues != l.len() {
			return nil, 0, o.errf("estimators_[%d] has %d values per node for %d classes", i, t.nValues, l.len())
		}
	}
	for _, t := range trees {
		t.normalizeLeaves()
	}
	prepareTrees(trees, n)
	return &forestClassifier{labels: l, trees: trees}, n, nil
}

func (c *forestClassifier) classes() labels    { return c.labels }
func (c *forestClassifier) hasProba() bool     { return true }
func (c *forestClassifier) decisionWidth() int { return 0 }

func (c *forestClassifier) classify(x mat) classResult {
	k := c.labels.len()
	p := newMat(x.rows, k)
	// Each row sums its trees in sklearn's order, from zero.
	sumTrees(c.trees, x, p.data, k)
	nt := float64(len(c.trees))
	idx := make([]int, x.rows)
	for i := range idx {
		pr := p.row(i)
		for j := range pr {
			pr[j] /= nt
		}
		idx[i] = argmax(pr)
	}
	return classResult{idx: idx, proba: p}
}

// forestRegressor averages its trees' predictions.
type forestRegressor struct{ trees []*tree }

func buildForestRegressor(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	trees, err := forestTrees(o, n)
	if err != nil {
		return nil, 0, err
	}
	for i, t := range trees {
		if t.nValues != 1 {
			return nil, 0, o.errf("estimators_[%d] has %d values per node", i, t.nValues)
		}
	}
	prepareTrees(trees, n)
	return &forestRegressor{trees: trees}, n, nil
}

func (f *forestRegressor) regress(x mat) []float64 {
	y := make([]float64, x.rows)
	sumTrees(f.trees, x, y, 1)
	nt := float64(len(f.trees))
	for i := range y {
		y[i] /= nt
	}
	return y
}

// gbLoss is how GradientBoosting turns raw scores into outputs.
type gbLoss int

const (
	gbRegression gbLoss = iota
	gbBinomial
	gbExponential
	gbMultinomial
)

// gradientBoosting is GradientBoostingClassifier/Regressor: raw = init +
// learning_rate · Σ stage trees, one column per class (one for binary).
type gradientBoosting struct {
	labels labels
	loss   gbLoss
	init   []float64 // raw initial prediction per column
	lr     float64
	stages [][]*tree // stage × column
	k      int
	// centered: the initial multinomial raw scores are log p - mean(log p)
	// (sklearn >= 1.4's MultinomialLogit link) rather than log p.
	centered bool
}

func buildGradientBoosting(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	lr, err := o.num("learning_rate")
	if err != nil {
		return nil, 0, err
	}
	ea, err := o.array("estimators_")
	if err != nil {
		return nil, 0, err
	}
	if ea.Kind() != 'O' || len(ea.Shape) != 2 || ea.Shape[0] == 0 || ea.Shape[1] == 0 {
		return nil, 0, o.errf("estimators_ is %v of %s, want a 2-d object array", ea.Shape, ea.Dtype)
	}
	g := &gradientBoosting{lr: lr, k: ea.Shape[1]}
	for s := 0; s < ea.Shape[0]; s++ {
		stage := make([]*tree, g.k)
		for j := range stage {
			eo, err := asObj(ea.Objects[s*g.k+j])
			if err != nil {
				return nil, 0, err
			}
			tv, _ := eo.get("tree_")
			if stage[j], err = readTree(tv, n); err != nil {
				return nil, 0, fmt.Errorf("estimators_[%d, %d]: %w", s, j, err)
			}
			if stage[j].nValues != 1 {
				return nil, 0, o.errf("stage tree has %d values per node", stage[j].nValues)
			}
		}
		g.stages = append(g.stages, stage)
	}
	// The loss object names the link; fall back to the loss parameter.
	lossName := o.strOr("loss", "")
	if lv, ok := o.get("_loss"); ok {
		if lo, ok := lv.(*pickle.Object); ok {
			lossName = lo.Class.Name
			// sklearn >= 1.4 links multinomial probabilities symmetrically.
			g.centered = strings.HasPrefix(lo.Class.Module, "sklearn._loss")
		}
	}
	if o.cls == "GradientBoostingClassifier" {
		if g.labels, err = readLabels(o); err != nil {
			return nil, 0, err
		}
		switch {
		case lossName == "ExponentialLoss" || lossName == "exponential":
			g.loss = gbExponential
		case g.labels.len() == 2:
			g.loss = gbBinomial
		default:
			g.loss = gbMultinomial
		}
		if (g.loss == gbMultinomial) != (g.k == g.labels.len()) || (g.loss != gbMultinomial && g.k != 1) {
			return nil, 0, o.errf("%d trees per stage for %d classes", g.k, g.labels.len())
		}
	} else if g.k != 1 {
		return nil, 0, o.errf("regressor with %d trees per stage", g.k)
	}
	if g.init, err = gbInit(o, g); err != nil {
		return nil, 0, err
	}
	if g.loss == gbRegression {
		return gbRegressor{g}, n, nil
	}
	return g, n, nil
}

// gbInit computes the raw initial prediction from init_ (a fitted
// DummyRegressor / DummyClassifier, or "zero"), as sklearn's
// _gb_losses.get_init_raw_predictions does.
func gbInit(o obj, g *gradientBoosting) ([]float64, error) {
	iv, _ := o.get("init_")
	if s, ok := iv.(string); ok && s == "zero" {
		return make([]float64, g.k), nil
	}
	io, err := asObj(iv)
	if err != nil {
		return nil, err
	}
	switch io.cls {
	case "DummyRegressor":
		if g.loss != gbRegression {
			return nil, o.errf("classifier with a DummyRegressor init_")
		}
		c, err := io.vec("constant_", 1)
		return c, err
	case "DummyClassifier":
		if g.loss == gbRegression {
			return nil, o.errf("regressor with a DummyClassifier init_")
		}
		if s := io.strOr("strategy", "prior"); s != "prior" {
			return nil, fmt.Errorf("%w: GradientBoosting init_ DummyClassifier(strategy=%q)", runtime.ErrUnsupported, s)
		}
		prior, err := io.vec("class_prior_", g.labels.len())
		if err != nil {
			return nil, err
		}
		eps := float64(math.Nextafter32(1, 2) - 1)
		clip := func(p float64) float64 { return min(max(p, eps), 1-eps) }
		switch g.loss {
		case gbMultinomial:
			out := make([]float64, g.k)
			mean := 0.0
			for j, p := range prior {
				out[j] = math.Log(clip(p))
				mean += out[j]
			}
			if g.centered {
				mean /= float64(len(out))
				for j := range out {
					out[j] -= mean
				}
			}
			return out, nil
		case gbBinomial:
			p := clip(prior[1])
			return []float64{math.Log(p / (1 - p))}, nil
		default:
			p := clip(prior[1])
			return []float64{0.5 * math.Log(p/(1-p))}, nil
		}
	}
	return nil, fmt.Errorf("%w: GradientBoosting init_ %s", runtime.ErrUnsupported, io.cls)
}

func (g *gradientBoosting) raw(x mat) mat {
	out := newMat(x.rows, g.k)
	for i := 0; i < x.rows; i++ {
		copy(out.row(i), g.init)
	}
	for _, stage := range g.stages {
		for j, t := range stage {
			for i := 0; i < x.rows; i++ {
				out.data[i*g.k+j] += g.lr * t.value(x.row(i))[0]
			}
		}
	}
	return out
}

// gbRegressor is GradientBoostingRegressor: the raw score is the prediction.
type gbRegressor struct{ g *gradientBoosting }

func (r gbRegressor) regress(x mat) []float64 { return r.g.raw(x).data }

func (g *gradientBoosting) classes() labels    { return g.labels }
func (g *gradientBoosting) hasProba() bool     { return true }
func (g *gradientBoosting) decisionWidth() int { return g.k }

func (g *gradientBoosting) classify(x mat) classResult {
	raw := g.raw(x)
	p := newMat(x.rows, g.labels.len())
	idx := make([]int, x.rows)
	for i := range idx {
		d, pr := raw.row(i), p.row(i)
		switch g.loss {
		case gbMultinomial:
			copy(pr, d)
			softmaxRow(pr)
			idx[i] = argmax(d)
			continue
		case gbBinomial:
			pr[1] = expit(d[0])
		default:
			pr[1] = expit(2 * d[0])
		}
		pr[0] = 1 - pr[1]
		idx[i] = argmax(pr)
	}
	return classResult{idx: idx, proba: p, decision: raw}
}
