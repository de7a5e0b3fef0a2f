package sklearn

import (
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
)

// gbEnsemble lays a GradientBoostingClassifier/Regressor open in raw
// margin space (decision_function; predict for regressors): the base is the
// init estimator's raw prediction, every stage tree adds learning_rate
// times its leaf value to its class's margin, and the covers are the
// trees' weighted_n_node_samples (shap's TreeExplainer scales the same
// trees by learning_rate and starts from the same initial raw prediction).
// The runtime's own builder reads the model, so the margins are the ones
// it serves, summed in the same order.
func gbEnsemble(o obj, n int) (*runtime.TreeEnsemble, error) {
	est, _, err := buildGradientBoosting(o)
	if err != nil {
		return nil, err
	}
	var g *gradientBoosting
	switch e := est.(type) {
	case gbRegressor:
		g = e.g
	case *gradientBoosting:
		g = e
	default:
		return nil, o.errf("unexpected estimator %T", est)
	}
	ea, err := o.array("estimators_")
	if err != nil {
		return nil, err
	}
	e := &runtime.TreeEnsemble{NumFeatures: n, NumGroups: g.k, Base: append([]float64(nil), g.init...), FeatureNames: featureNames(o, n)}
	for s, stage := range g.stages {
		for j, t := range stage {
			eo, err := asObj(ea.Objects[s*g.k+j])
			if err != nil {
				return nil, err
			}
			tv, _ := eo.get("tree_")
			covers, err := treeCovers(tv, len(t.nodes))
			if err != nil {
				return nil, fmt.Errorf("estimators_[%d, %d]: %w", s, j, err)
			}
			e.Trees = append(e.Trees, t.laidOpen(0, j, g.lr, covers))
		}
	}
	return e, nil
}

// hgbEnsemble lays a HistGradientBoostingClassifier/Regressor open in raw
// margin space (decision_function; the raw prediction before the inverse
// link for regressors): the base is _baseline_prediction, each iteration
// adds one tree per margin (leaf values already carry the learning rate),
// and the covers are the predictor nodes' sample counts, as shap reads
// them. Splits compare the float64 input with num_threshold; NaN takes
// missing_go_to_left. Categorical splits are refused by the runtime's
// builder, naming them.
func hgbEnsemble(o obj, n int) (*runtime.TreeEnsemble, error) {
	est, _, err := buildHGB(o)
	if err != nil {
		return nil, fmt.Errorf("TreeSHAP: %w", err)
	}
	var g *hgb
	switch e := est.(type) {
	case hgbRegressor:
		g = e.g
	case *hgb:
		g = e
	default:
		return nil, o.errf("unexpected estimator %T", est)
	}
	preds, err := o.list("_predictors")
	if err != nil {
		return nil, err
	}
	e := &runtime.TreeEnsemble{NumFeatures: n, NumGroups: g.k, Base: append([]float64(nil), g.baseline...), FeatureNames: featureNames(o, n)}
	for i, it := range g.iters {
		items := preds[i].(*pickle.List).Items // shape checked by buildHGB
		for j, t := range it {
			counts, err := hgbCounts(items[j], len(t))
			if err != nil {
				return nil, fmt.Errorf("_predictors[%d][%d]: %w", i, j, err)
			}
			e.Trees = append(e.Trees, t.laidOpen(j, counts))
		}
	}
	return e, nil
}

// hgbCounts reads a TreePredictor's per-node training sample counts.
func hgbCounts(v any, nodes int) ([]float64, error) {
	o, err := asObj(v)
	if err != nil {
		return nil, err
	}
	a, err := o.array("nodes")
	if err != nil {
		return nil, err
	}
	c, err := a.FieldFloat64s("count")
	if err != nil || len(c) != nodes {
		return nil, fmt.Errorf("%w: predictor nodes have no count (TreeSHAP needs the training covers)", runtime.ErrUnsupported)
	}
	return c, nil
}

// laidOpen is t as a runtime.Tree adding to margin g. HistGradientBoosting
// compares float64 inputs, so thresholds are kept as they are.
func (t hgbTree) laidOpen(g int, counts []float64) runtime.Tree {
	out := runtime.Tree{Group: g, Weight: 1, Nodes: make([]runtime.TreeNode, len(t))}
	for i, n := range t {
		if n.leaf {
			out.Nodes[i] = runtime.TreeNode{Left: -1, Right: -1, Feature: -1, Value: n.value, Cover: counts[i]}
			continue
		}
		out.Nodes[i] = runtime.TreeNode{
			Left: n.left, Right: n.right, Feature: n.feature, Kind: runtime.SplitLessEqual,
			DefaultLeft: n.missingLeft, Threshold: n.threshold, Cover: counts[i],
		}
	}
	return out
}
