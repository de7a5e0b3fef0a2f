package sklearn

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
)

// ReadTreeEnsemble reads a pickled tree model for TreeSHAP: the trees with
// the covers that shap's TreeExplainer uses for scikit-learn
// (weighted_n_node_samples; the predictors' sample counts for histogram
// gradient boosting). Decision trees, extra trees and random forests give
// one output for regressors (the prediction) and one per class for
// classifiers (predict_proba); gradient boosting gives its raw margins
// (decision_function: one for regressors and binary classifiers, one per
// class otherwise). Other estimators return an error wrapping
// runtime.ErrUnsupported.
func ReadTreeEnsemble(ctx context.Context, r io.Reader) (*runtime.TreeEnsemble, error) {
	v, err := pickle.Load(ctx, r, pickle.Options{Allow: allow, Budget: runtime.DecodeBudget(ctx)})
	if err != nil {
		return nil, loadError(ctx, err)
	}
	return TreeEnsembleFromObject(v)
}

// treeClasses are the estimators ReadTreeEnsemble lays open.
var treeClasses = map[string]bool{
	"DecisionTreeRegressor": true, "ExtraTreeRegressor": true, "DecisionTreeClassifier": true, "ExtraTreeClassifier": true,
	"RandomForestRegressor": true, "ExtraTreesRegressor": true, "RandomForestClassifier": true, "ExtraTreesClassifier": true,
	"GradientBoostingRegressor": true, "GradientBoostingClassifier": true,
	"HistGradientBoostingRegressor": true, "HistGradientBoostingClassifier": true,
}

// errNotTreeClass is the refusal for an estimator without trees.
func errNotTreeClass(cls string) error {
	return fmt.Errorf("%w: TreeSHAP explains scikit-learn decision trees, extra trees, random forests, gradient boosting "+
		"and histogram gradient boosting (alone or after per-feature scalers and imputers in a Pipeline), not %s", runtime.ErrUnsupported, cls)
}

// TreeEnsemble lays the loaded model's trees open for TreeSHAP, read at
// load with the covers; callers must not modify it. For a Pipeline the
// trees read the features MapFeatures makes. Other estimators return an
// error wrapping runtime.ErrUnsupported.
func (m *Model) TreeEnsemble() (*runtime.TreeEnsemble, error) { return m.ens, m.ensErr }

// TreeEnsembleFromObject is ReadTreeEnsemble for a decoded pickle value.
func TreeEnsembleFromObject(v any) (*runtime.TreeEnsemble, error) {
	o, err := asObj(v)
	if err != nil {
		return nil, err
	}
	n, err := o.nFeatures()
	if err != nil {
		return nil, err
	}
	if no, err := o.int("n_outputs_"); err == nil && no != 1 {
		return nil, fmt.Errorf("%w: %s with %d outputs (multi-output)", runtime.ErrUnsupported, o.cls, no)
	}
	var ests []any
	switch o.cls {
	case "GradientBoostingRegressor", "GradientBoostingClassifier":
		return gbEnsemble(o, n)
	case "HistGradientBoostingRegressor", "HistGradientBoostingClassifier":
		return hgbEnsemble(o, n)
	case "DecisionTreeRegressor", "ExtraTreeRegressor", "DecisionTreeClassifier", "ExtraTreeClassifier":
		ests = []any{v}
	case "RandomForestRegressor", "ExtraTreesRegressor", "RandomForestClassifier", "ExtraTreesClassifier":
		if ests, err = o.list("estimators_"); err != nil {
			return nil, err
		}
		if len(ests) == 0 {
			return nil, o.errf("no estimators_")
		}
	default:
		return nil, errNotTreeClass(o.cls)
	}
	groups := 1
	classifier := o.has("classes_")
	if classifier {
		l, err := readLabels(o)
		if err != nil {
			return nil, err
		}
		groups = l.len()
	}
	e := &runtime.TreeEnsemble{NumFeatures: n, NumGroups: groups, Base: make([]float64, groups), FeatureNames: featureNames(o, n)}
	weight := 1 / float64(len(ests))
	for i, est := range ests {
		eo, err := asObj(est)
		if err != nil {
			return nil, err
		}
		tv, _ := eo.get("tree_")
		t, err := readTree(tv, n)
		if err != nil {
			return nil, fmt.Errorf("estimators_[%d]: %w", i, err)
		}
		if t.nValues != groups {
			return nil, fmt.Errorf("estimators_[%d]: %w", i, o.errf("tree has %d values per node for %d outputs", t.nValues, groups))
		}
		covers, err := treeCovers(tv, len(t.nodes))
		if err != nil {
			return nil, fmt.Errorf("estimators_[%d]: %w", i, err)
		}
		if classifier {
			t.normalizeLeaves()
		}
		for g := range groups {
			e.Trees = append(e.Trees, t.laidOpen(g, g, weight, covers))
		}
	}
	return e, nil
}

// featureNames is the estimator's feature_names_in_, or nil.
func featureNames(o obj, n int) []string {
	if a, err := o.array("feature_names_in_"); err == nil {
		if names, err := a.Strings(); err == nil && len(names) == n {
			return names
		}
	}
	return nil
}

// treeCovers reads a pickled Tree's weighted_n_node_samples.
func treeCovers(v any, nodes int) ([]float64, error) {
	o, err := asObj(v)
	if err != nil {
		return nil, err
	}
	a, err := o.array("nodes")
	if err != nil {
		return nil, err
	}
	c, err := a.FieldFloat64s("weighted_n_node_samples")
	if err != nil || len(c) != nodes {
		return nil, fmt.Errorf("%w: tree nodes have no weighted_n_node_samples (TreeSHAP needs the training covers)", runtime.ErrUnsupported)
	}
	return c, nil
}

// laidOpen is value column col of t as a runtime.Tree adding to group g
// with weight. sklearn compares float32
// copies of the input, float32(x) <= threshold; the threshold becomes the
// largest float64 that rounds to a float32 at or below it, so GoesLeft
// decides the same for every float64 x.
func (t *tree) laidOpen(col, g int, weight float64, covers []float64) runtime.Tree {
	out := runtime.Tree{Group: g, Weight: weight, Nodes: make([]runtime.TreeNode, len(t.nodes))}
	for i, n := range t.nodes {
		if n.left < 0 {
			out.Nodes[i] = runtime.TreeNode{Left: -1, Right: -1, Feature: -1, Value: t.values[i*t.nValues+col], Cover: covers[i]}
			continue
		}
		out.Nodes[i] = runtime.TreeNode{
			Left: n.left, Right: n.right, Feature: n.feature, Kind: runtime.SplitLessEqual,
			DefaultLeft: n.missingLeft, Threshold: float32Boundary(n.threshold), Cover: covers[i],
		}
	}
	return out
}

// float32Boundary returns the largest float64 x with float32(x) <= thr.
func float32Boundary(thr float64) float64 {
	if math.IsNaN(thr) || math.IsInf(thr, 0) {
		return thr
	}
	lo := float32(thr)
	if float64(lo) > thr {
		lo = math.Nextafter32(lo, float32(math.Inf(-1)))
	}
	hi := float64(math.Nextafter32(lo, float32(math.Inf(1))))
	if math.IsInf(hi, 1) { // lo is the largest float32: above it, x rounds to +Inf
		hi = 2*float64(lo) - float64(math.Nextafter32(lo, 0))
	}
	mid := (float64(lo) + hi) / 2 // exact in float64
	if float64(float32(mid)) <= thr {
		return mid // ties round to lo (even)
	}
	return math.Nextafter(mid, math.Inf(-1))
}
