package sklearn

import (
	"fmt"
	"math"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
)

// perFeatureSteps are the transformers whose output column j is a function
// of input column j alone (SimpleImputer only while it keeps every column).
var perFeatureSteps = map[string]bool{
	"StandardScaler": true, "MinMaxScaler": true, "MaxAbsScaler": true, "RobustScaler": true,
	"SimpleImputer": true, "FunctionTransformer": true,
}

// layOpen lays a loaded model's trees open for TreeSHAP, or says why not.
// v is the pickled model, est the estimator built from it.
func layOpen(v any, o obj, est estimator) (*runtime.TreeEnsemble, error) {
	switch {
	case treeClasses[o.cls]:
		return TreeEnsembleFromObject(v)
	case o.cls == "Pipeline":
		return pipelineEnsemble(o, est)
	}
	return nil, errNotTreeClass(o.cls)
}

// pipelineEnsemble lays open a Pipeline whose last step is a tree model
// and whose earlier steps transform each feature alone. The trees then
// read feature j as a function of input feature j, so a split on it is a
// split on the input feature, and path-dependent TreeSHAP over the trees
// at the transformed row (Model.MapFeatures) gives the Shapley values of
// the whole pipeline at the input row: it only asks which branch the row
// takes at each split. Steps that mix features (PCA, PolynomialFeatures,
// Normalizer, OneHotEncoder, ColumnTransformer) are refused by name.
func pipelineEnsemble(o obj, est estimator) (*runtime.TreeEnsemble, error) {
	steps, err := o.list("steps")
	if err != nil {
		return nil, err
	}
	type step struct {
		name string
		v    any
		o    obj
	}
	var kept []step
	for i, s := range steps {
		t, ok := s.(pickle.Tuple)
		if !ok || len(t) != 2 {
			return nil, o.errf("step %d is %s, want a (name, estimator) tuple", i, pickle.Describe(s))
		}
		if t[1] == nil || t[1] == "passthrough" {
			continue
		}
		so, err := o.sub(t[1])
		if err != nil {
			return nil, err
		}
		name, _ := t[0].(string)
		kept = append(kept, step{name, t[1], so})
	}
	if len(kept) == 0 {
		return nil, o.errf("no final estimator")
	}
	last := kept[len(kept)-1]
	if !treeClasses[last.o.cls] {
		return nil, fmt.Errorf("%w: TreeSHAP explains a Pipeline that ends in a tree model, not in %s (step %q)", runtime.ErrUnsupported, last.o.cls, last.name)
	}
	for _, s := range kept[:len(kept)-1] {
		if s.o.cls == "Pipeline" {
			return nil, fmt.Errorf("%w: TreeSHAP does not look into nested pipelines (step %q); flatten it into one Pipeline", runtime.ErrUnsupported, s.name)
		}
		if !perFeatureSteps[s.o.cls] {
			return nil, fmt.Errorf("%w: TreeSHAP explains a Pipeline only when the steps before its trees transform each feature alone "+
				"(scalers, SimpleImputer); step %q is %s, which mixes or adds features", runtime.ErrUnsupported, s.name, s.o.cls)
		}
		if s.o.cls == "SimpleImputer" {
			if err := imputerKeepsAll(s.o); err != nil {
				return nil, fmt.Errorf("%w: step %q: %w", runtime.ErrUnsupported, s.name, err)
			}
		}
	}
	for _, s := range est.steps { // what the runtime built agrees with the names read
		switch s := s.(type) {
		case *affine, identity:
		case *imputer:
			if len(s.keep) != len(s.stats) {
				return nil, fmt.Errorf("%w: a SimpleImputer step drops features", runtime.ErrUnsupported)
			}
		default:
			return nil, fmt.Errorf("%w: TreeSHAP: pipeline step %T mixes features", runtime.ErrUnsupported, s)
		}
	}
	e, err := TreeEnsembleFromObject(last.v)
	if err != nil {
		return nil, fmt.Errorf("step %q: %w", last.name, err)
	}
	if e.NumFeatures != est.nFeatures {
		return nil, o.errf("trees read %d features, the pipeline takes %d", e.NumFeatures, est.nFeatures)
	}
	// A Pipeline's feature_names_in_ is its first step's (a property,
	// not pickled); the trees saw the scalers' unnamed arrays.
	if names := featureNames(kept[0].o, est.nFeatures); names != nil {
		e.FeatureNames = names
	}
	return e, nil
}

// imputerKeepsAll refuses a SimpleImputer that drops the columns it saw
// no values of (scikit-learn < 1.2's only behaviour, later the default):
// its output columns are no longer the input's.
func imputerKeepsAll(so obj) error {
	if v, _ := so.get("add_indicator"); v == true {
		return fmt.Errorf("SimpleImputer(add_indicator=True) adds features")
	}
	n, err := so.nFeatures()
	if err != nil {
		return err
	}
	stats, err := so.vec("statistics_", n)
	if err != nil {
		return err
	}
	if keep, _ := so.get("keep_empty_features"); keep == true {
		return nil
	}
	for j, s := range stats {
		if math.IsNaN(s) {
			return fmt.Errorf("SimpleImputer drops feature %d, which had no values in training", j)
		}
	}
	return nil
}

// MapFeatures computes the features a Pipeline's trees read from an input
// row by running the steps before them (each transforms one feature
// alone, which layOpen checked); for a bare tree model it returns row. row
// is not modified.
func (m *Model) MapFeatures(row []float64) ([]float64, error) {
	if len(m.est.steps) == 0 {
		return row, nil
	}
	x := newMat(1, len(row))
	copy(x.data, row)
	for _, s := range m.est.steps {
		var err error
		if x, err = s.transform(x); err != nil {
			return nil, err
		}
	}
	return x.data, nil
}
