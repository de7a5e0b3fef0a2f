package sklearn

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
)

// mat is a dense row-major matrix.
type mat struct {
	rows, cols int
	data       []float64
}

func newMat(rows, cols int) mat { return mat{rows: rows, cols: cols, data: make([]float64, rows*cols)} }

func (m mat) row(i int) []float64 { return m.data[i*m.cols : (i+1)*m.cols] }

// transformer is a fitted preprocessing step.
type transformer interface {
	transform(x mat) (mat, error)
}

// regressor predicts one value per row.
type regressor interface {
	regress(x mat) []float64
}

// classifier predicts class indices, with probabilities and decision values
// where the estimator has them.
type classifier interface {
	classes() labels
	hasProba() bool
	// decisionWidth is decision_function's column count (1 means shape
	// [rows]); 0 when the estimator has none.
	decisionWidth() int
	classify(x mat) classResult
}

type classResult struct {
	idx             []int
	proba, decision mat
}

// estimator is a chain of transformers ending in a regressor or classifier.
type estimator struct {
	nFeatures int
	text      textTransformer // first step of a text pipeline: documents in
	steps     []transformer
	reg       regressor
	clf       classifier
}

type builder func(o obj) (any, int, error)

// builders maps supported class names to constructors that return a
// transformer, regressor or classifier and the input feature count.
var builders map[string]builder

func init() {
	builders = map[string]builder{
		"LinearRegression":               buildLinearRegressor,
		"Ridge":                          buildLinearRegressor,
		"Lasso":                          buildLinearRegressor,
		"ElasticNet":                     buildLinearRegressor,
		"SGDRegressor":                   buildLinearRegressor,
		"LinearSVR":                      buildLinearRegressor,
		"LogisticRegression":             buildLinearClassifier,
		"SGDClassifier":                  buildLinearClassifier,
		"LinearSVC":                      buildLinearClassifier,
		"DecisionTreeClassifier":         buildTreeClassifier,
		"ExtraTreeClassifier":            buildTreeClassifier,
		"DecisionTreeRegressor":          buildTreeRegressor,
		"ExtraTreeRegressor":             buildTreeRegressor,
		"RandomForestClassifier":         buildForestClassifier,
		"ExtraTreesClassifier":           buildForestClassifier,
		"RandomForestRegressor":          buildForestRegressor,
		"ExtraTreesRegressor":            buildForestRegressor,
		"GradientBoostingClassifier":     buildGradientBoosting,
		"GradientBoostingRegressor":      buildGradientBoosting,
		"Pipeline":                       nil, // handled in buildEstimator
		"StandardScaler":                 buildStandardScaler,
		"MinMaxScaler":                   buildMinMaxScaler,
		"MaxAbsScaler":                   buildMaxAbsScaler,
		"RobustScaler":                   buildRobustScaler,
		"Normalizer":                     buildNormalizer,
		"SimpleImputer":                  buildSimpleImputer,
		"PolynomialFeatures":             buildPolynomialFeatures,
		"PCA":                            buildPCA,
		"FunctionTransformer":            buildFunctionTransformer,
		"OneHotEncoder":                  buildOneHotEncoder,
		"ColumnTransformer":              buildColumnTransformer,
		"SVC":                            buildSVC,
		"SVR":                            buildSVR,
		"KNeighborsClassifier":           buildKNNClassifier,
		"KNeighborsRegressor":            buildKNNRegressor,
		"GaussianNB":                     buildGaussianNB,
		"HistGradientBoostingClassifier": buildHGB,
		"HistGradientBoostingRegressor":  buildHGB,
		"CountVectorizer":                buildCountVectorizer,
		"TfidfVectorizer":                buildTfidfVectorizer,
		"TfidfTransformer":               buildTfidfTransformer,
	}
}

// helperClasses are sklearn classes that appear inside supported estimators
// (tree structures, loss objects, initial estimators).
var helperClasses = map[string]bool{
	"Tree": true, "DummyClassifier": true, "DummyRegressor": true,
	"LeastSquaresError": true, "LeastAbsoluteError": true, "HuberLossFunction": true,
	"QuantileLossFunction": true, "BinomialDeviance": true, "MultinomialDeviance": true,
	"ExponentialLoss": true, "TreePredictor": true, "_BinMapper": true,
	"KDTree": true, "BallTree": true, "newObj": true,
}

// helperModules hold Cython helpers (loss functions, neighbour trees,
// distance metrics) that supported estimators carry along.
var helperModules = []string{
	"sklearn._loss.", "sklearn.linear_model._sgd_fast", "sklearn.neighbors._kd_tree",
	"sklearn.neighbors._ball_tree", "sklearn.neighbors._binary_tree", "sklearn.metrics._dist_metrics",
	"sklearn.ensemble._hist_gradient_boosting.",
}

// numpyTypes are numpy globals that appear as plain values (dtype
// parameters, random-state records); the reader never calls them.
var numpyTypes = map[pickle.Global]bool{
	{Module: "numpy", Name: "float64"}: true, {Module: "numpy", Name: "float32"}: true,
	{Module: "numpy", Name: "int64"}: true, {Module: "numpy", Name: "int32"}: true,
	{Module: "numpy", Name: "bool_"}: true, {Module: "numpy", Name: "object_"}: true,
	{Module: "numpy.random._pickle", Name: "__randomstate_ctor"}:   true,
	{Module: "numpy.random._pickle", Name: "__bit_generator_ctor"}: true,
	{Module: "numpy.random._pickle", Name: "__generator_ctor"}:     true,
	// TfidfTransformer's idf weights (scikit-learn < 1.5): inert records
	// whose arrays the reader reads, nothing called.
	{Module: "scipy.sparse._csr", Name: "csr_matrix"}: true, {Module: "scipy.sparse.csr", Name: "csr_matrix"}: true,
	{Module: "scipy.sparse._dia", Name: "dia_matrix"}: true, {Module: "scipy.sparse.dia", Name: "dia_matrix"}: true,
}

// allow is the reader's allow-list beyond numpy and joblib data.
func allow(g pickle.Global) bool {
	if numpyTypes[g] {
		return true
	}
	if !strings.HasPrefix(g.Module, "sklearn.") {
		return false
	}
	if _, ok := builders[g.Name]; ok {
		return true
	}
	if helperClasses[g.Name] {
		return true
	}
	for _, m := range helperModules {
		if strings.HasPrefix(g.Module, m) {
			return true
		}
	}
	return false
}

// Supported lists the estimator and transformer classes Ferry evaluates.
func Supported() []string {
	out := make([]string, 0, len(builders))
	for k := range builders {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func notSupported(name string) string {
	return fmt.Sprintf("sklearn estimator %s is not supported; supported: %s", name, strings.Join(Supported(), ", "))
}

func buildEstimator(v any) (estimator, error) {
	o, err := asObj(v)
	if err != nil {
		return estimator{}, err
	}
	if o.cls == "Pipeline" {
		return buildPipeline(o)
	}
	b, ok := builders[o.cls]
	if !ok || b == nil {
		return estimator{}, fmt.Errorf("%w: %s", runtime.ErrUnsupported, notSupported(o.cls))
	}
	e, n, err := b(o)
	if err != nil {
		return estimator{}, err
	}
	out := estimator{nFeatures: n}
	switch e := e.(type) {
	case regressor:
		out.reg = e
	case classifier:
		out.clf = e
	case transformer, textTransformer:
		return estimator{}, fmt.Errorf("%w: %s is a transformer; Ferry serves estimators that predict (put it in a Pipeline)", runtime.ErrUnsupported, o.cls)
	}
	return out, nil
}

func buildPipeline(o obj) (estimator, error) {
	steps, err := o.list("steps")
	if err != nil {
		return estimator{}, err
	}
	var out estimator
	width := -1
	for i, s := range steps {
		t, ok := s.(pickle.Tuple)
		if !ok || len(t) != 2 {
			return estimator{}, o.errf("step %d is %s, want a (name, estimator) tuple", i, pickle.Describe(s))
		}
		if t[1] == nil || t[1] == "passthrough" {
			continue
		}
		so, err := o.sub(t[1])
		if err != nil {
			return estimator{}, err
		}
		var e any
		var n int
		if so.cls == "Pipeline" {
			sub, err := buildPipeline(so)
			if err != nil {
				return estimator{}, err
			}
			e, n = sub, sub.nFeatures
		} else {
			b, ok := builders[so.cls]
			if !ok || b == nil {
				return estimator{}, fmt.Errorf("%w: %s", runtime.ErrUnsupported, notSupported(so.cls))
			}
			if e, n, err = b(so); err != nil {
				return estimator{}, err
			}
		}
		if width >= 0 && n != width {
			return estimator{}, o.errf("step %d (%s) takes %d features but the previous step makes %d", i, so.cls, n, width)
		}
		if out.nFeatures == 0 {
			out.nFeatures = n
		}
		last := i == len(steps)-1
		switch e := e.(type) {
		case textTransformer:
			if out.text != nil || len(out.steps) > 0 {
				return estimator{}, o.errf("step %d (%s) takes documents but is not the first step", i, so.cls)
			}
			out.text = e
			width = e.width()
		case estimator:
			if e.text != nil && (out.text != nil || len(out.steps) > 0) {
				return estimator{}, o.errf("step %d takes documents but is not the first step", i)
			}
			if e.text != nil {
				out.text = e.text
			}
			out.steps = append(out.steps, e.steps...)
			out.reg, out.clf = e.reg, e.clf
			if !last && (e.reg != nil || e.clf != nil) {
				return estimator{}, o.errf("step %d is a predictor but not the last step", i)
			}
		case transformer:
			out.steps = append(out.steps, e)
			width = outWidth(e, n)
		case regressor:
			if !last {
				return estimator{}, o.errf("step %d (%s) is a predictor but not the last step", i, so.cls)
			}
			out.reg = e
		case classifier:
			if !last {
				return estimator{}, o.errf("step %d (%s) is a predictor but not the last step", i, so.cls)
			}
			out.clf = e
		}
	}
	if out.reg == nil && out.clf == nil {
		return estimator{}, fmt.Errorf("%w: Pipeline ends in a transformer; Ferry serves pipelines that end in a predictor", runtime.ErrUnsupported)
	}
	return out, nil
}

// widther is a transformer whose output width differs from its input's.
type widther interface{ width() int }

func outWidth(t transformer, in int) int {
	if w, ok := t.(widther); ok {
		return w.width()
	}
	return in
}

func argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] || (math.IsNaN(v[best]) && !math.IsNaN(x)) {
			best = i
		}
	}
	return best
}

func expit(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// softmaxRow replaces v by its softmax, the way scipy.special.softmax does.
func softmaxRow(v []float64) {
	m := math.Inf(-1)
	for _, x := range v {
		m = max(m, x)
	}
	s := 0.0
	for i, x := range v {
		v[i] = math.Exp(x - m)
		s += v[i]
	}
	for i := range v {
		v[i] /= s
	}
}
