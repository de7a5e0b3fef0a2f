package lightgbm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// Hand-written models cover what the CLI fixtures do not: the other
// objectives, multiclassova, average_output, iteration ranges and the edge
// cases of each split rule. Expected values are worked out by hand in each
// table, never by running the evaluator.

// header builds a model header for nFeatures features.
func header(objective string, numClass, nFeatures int, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tree\nversion=v4\nnum_class=%d\nnum_tree_per_iteration=%d\nlabel_index=0\nmax_feature_idx=%d\n", numClass, numClass, nFeatures-1)
	if objective != "" {
		fmt.Fprintf(&b, "objective=%s\n", objective)
	}
	names := make([]string, nFeatures)
	for i := range names {
		names[i] = fmt.Sprintf("f%d", i)
	}
	fmt.Fprintf(&b, "feature_names=%s\n", strings.Join(names, " "))
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	return b.String()
}

// build joins a header and tree bodies into a model file.
func build(head string, trees ...string) string {
	var b strings.Builder
	b.WriteString(head + "\n")
	for i, t := range trees {
		fmt.Fprintf(&b, "Tree=%d\n%s\nshrinkage=1\n\n\n", i, strings.TrimSpace(t))
	}
	b.WriteString("end of trees\n\nfeature_importances:\n\nparameters:\n[boosting: gbdt]\nend of parameters\n")
	return b.String()
}

// stump: f0 <= 0.5 → 0.1, else 0.3; NaN goes left (decision_type 10).
const stump = `num_leaves=2
num_cat=0
split_feature=0
threshold=0.5
decision_type=10
left_child=-1
right_child=-2
leaf_value=0.1 0.3`

// constant: a one-leaf tree worth 0.2.
const constant = `num_leaves=1
num_cat=0
split_feature=
threshold=
decision_type=
left_child=
right_child=
leaf_value=0.2`

func mustParse(t *testing.T, text string, opts Options) *Model {
	t.Helper()
	m, err := Parse([]byte(text), opts)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return m
}

// predictRows runs rows through m with the given parameters and returns
// "predict".
func predictRows(t *testing.T, m *Model, params map[string]any, rows ...[]float64) []float64 {
	t.Helper()
	cols := m.NumFeatures()
	data := make([]float64, 0, len(rows)*cols)
	for _, r := range rows {
		data = append(data, r...)
	}
	in := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{int64(len(rows)), int64(cols)}, Data: data}
	res, err := m.Predict(context.Background(), &runtime.Request{Inputs: []*tensor.Tensor{in}, Parameters: params})
	if err != nil {
		t.Fatal(err)
	}
	return output(t, res, OutputPredict).Data.([]float64)
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12 }

func TestObjectives(t *testing.T) {
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	// Raw scores: f0=0 → 0.1+0.2 = 0.3; f0=1 → 0.3+0.2 = 0.5.
	cases := []struct {
		objective string
		at0, at1  float64
	}{
		{"regression", 0.3, 0.5},
		{"regression sqrt", 0.09, 0.25},
		{"regression_l1", 0.3, 0.5},
		{"huber", 0.3, 0.5},
		{"fair", 0.3, 0.5},
		{"quantile", 0.3, 0.5},
		{"mape", 0.3, 0.5},
		{"poisson", math.Exp(0.3), math.Exp(0.5)},
		{"gamma", math.Exp(0.3), math.Exp(0.5)},
		{"tweedie", math.Exp(0.3), math.Exp(0.5)},
		{"binary sigmoid:1", sig(0.3), sig(0.5)},
		{"binary sigmoid:2", sig(0.6), sig(1.0)},
		{"cross_entropy", sig(0.3), sig(0.5)},
		{"cross_entropy_lambda", math.Log(1 + math.Exp(0.3)), math.Log(1 + math.Exp(0.5))},
		{"lambdarank", 0.3, 0.5},
		{"rank_xendcg", 0.3, 0.5},
		{"", 0.3, 0.5}, // custom objective: no objective line
	}
	for _, c := range cases {
		t.Run(c.objective, func(t *testing.T) {
			m := mustParse(t, build(header(c.objective, 1, 1), stump, constant), Options{})
			got := predictRows(t, m, nil, []float64{0}, []float64{1}, []float64{math.NaN()})
			if !near(got[0], c.at0) || !near(got[1], c.at1) || !near(got[2], c.at0) {
				t.Errorf("predict = %v, want [%v %v %v]", got, c.at0, c.at1, c.at0)
			}
			raw := predictRows(t, m, map[string]any{ParamRawScore: true}, []float64{0}, []float64{1})
			if !near(raw[0], 0.3) || !near(raw[1], 0.5) {
				t.Errorf("raw = %v, want [0.3 0.5]", raw)
			}
		})
	}
}

func TestMulticlassOVA(t *testing.T) {
	// Class 0: stump (0.1 / 0.3); class 1: constant 0.2; sigmoid 1.5.
	m := mustParse(t, build(header("multiclassova num_class:2 sigmoid:1.5", 2, 1), stump, constant), Options{})
	got := predictRows(t, m, nil, []float64{1})
	want := []float64{1 / (1 + math.Exp(-1.5*0.3)), 1 / (1 + math.Exp(-1.5*0.2))}
	if len(got) != 2 || !near(got[0], want[0]) || !near(got[1], want[1]) {
		t.Errorf("predict = %v, want %v", got, want)
	}
	if s := m.Metadata().Outputs[0].Shape; len(s) != 2 || s[1] != 2 {
		t.Errorf("metadata predict shape %v, want [-1 2]", s)
	}
}

func TestCustomMultiOutput(t *testing.T) {
	// No objective line and two trees per round: raw scores per class.
	m := mustParse(t, build(header("", 2, 1), stump, constant, stump, stump), Options{})
	got := predictRows(t, m, nil, []float64{1})
	if len(got) != 2 || !near(got[0], 0.6) || !near(got[1], 0.5) {
		t.Errorf("predict = %v, want [0.6 0.5]", got)
	}
}

func TestSparseTreeKeys(t *testing.T) {
	// A one-leaf tree may leave out its (empty) split arrays, and a tree
	// may leave out decision_type, meaning plain splits with NaN as 0.
	bare := "num_leaves=1\nleaf_value=0.25"
	noDT := "num_leaves=2\nsplit_feature=0\nthreshold=-1\nleft_child=-1\nright_child=-2\nleaf_value=1 2"
	m := mustParse(t, build(header("regression", 1, 1), bare, noDT), Options{})
	got := predictRows(t, m, nil, []float64{-3}, []float64{math.NaN()})
	if got[0] != 1.25 || got[1] != 2.25 {
		t.Errorf("predict = %v, want [1.25 2.25]", got)
	}
}

func TestIterations(t *testing.T) {
	// Three rounds: stump, constant, stump. At f0=1: 0.3, 0.2, 0.3.
	text := build(header("regression", 1, 1), stump, constant, stump)
	cases := []struct {
		name   string
		opts   Options
		params map[string]any
		want   float64
	}{
		{"all", Options{}, nil, 0.8},
		{"num_iteration=1", Options{}, map[string]any{ParamNumIteration: int64(1)}, 0.3},
		{"num_iteration=2 float", Options{}, map[string]any{ParamNumIteration: 2.0}, 0.5},
		{"num_iteration=99", Options{}, map[string]any{ParamNumIteration: int64(99)}, 0.8},
		{"num_iteration=0 means all", Options{}, map[string]any{ParamNumIteration: int64(0)}, 0.8},
		{"option", Options{NumIteration: 2}, nil, 0.5},
		{"request overrides option", Options{NumIteration: 2}, map[string]any{ParamNumIteration: "1"}, 0.3},
		{"start_iteration=1", Options{}, map[string]any{ParamStartIteration: int64(1)}, 0.5},
		{"start 1, num 1", Options{}, map[string]any{ParamStartIteration: int64(1), ParamNumIteration: int64(1)}, 0.2},
		{"start past end", Options{}, map[string]any{ParamStartIteration: int64(7)}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mustParse(t, text, c.opts)
			if got := predictRows(t, m, c.params, []float64{1}); !near(got[0], c.want) {
				t.Errorf("predict = %v, want %v", got[0], c.want)
			}
		})
	}
}

func TestAverageOutput(t *testing.T) {
	// Random-forest mode: the raw score is the mean over the rounds used.
	m := mustParse(t, build(header("binary sigmoid:1", 1, 1, "average_output"), stump, constant, stump), Options{})
	raw := predictRows(t, m, map[string]any{ParamRawScore: true}, []float64{1}, []float64{0})
	if !near(raw[0], 0.8/3) || !near(raw[1], 0.4/3) {
		t.Errorf("raw = %v, want [%v %v]", raw, 0.8/3, 0.4/3)
	}
	two := predictRows(t, m, map[string]any{ParamNumIteration: int64(2)}, []float64{1})
	if want := 1 / (1 + math.Exp(-0.25)); !near(two[0], want) {
		t.Errorf("2 rounds: predict = %v, want %v", two[0], want)
	}
}

// numTree is a one-split numerical tree on f0 with the given decision_type
// and threshold; left leaf 1, right leaf 2.
func numTree(decisionType int, threshold string) string {
	return fmt.Sprintf("num_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=%s\ndecision_type=%d\nleft_child=-1\nright_child=-2\nleaf_value=1 2", threshold, decisionType)
}

func TestNumericalSplits(t *testing.T) {
	nan := math.NaN()
	const L, R = 1.0, 2.0
	cases := []struct {
		name      string
		dt        int
		threshold string
		x         float64
		want      float64
	}{
		{"equal goes left", 0, "0.5", 0.5, L},
		{"above goes right", 0, "0.5", math.Nextafter(0.5, 1), R},
		{"none: NaN is 0 (left)", 0, "0.5", nan, L},
		{"none: NaN is 0 (right)", 0, "-1", nan, R},
		{"none: default-left bit ignored", 2, "-1", nan, R},
		{"nan: NaN default right", 8, "1", nan, R},
		{"nan: NaN default left", 10, "-1", nan, L},
		{"nan: 0 compared normally", 8, "1", 0, L},
		{"zero: 0 default right", 4, "-1", 0, R},
		{"zero: 0 default left", 6, "-5", 0, L},
		{"zero: tiny is zero", 4, "-1", 1e-36, R},
		{"zero: -1e-35 is zero", 4, "-1", -1e-35, R},
		{"zero: NaN is zero", 4, "-1", nan, R},
		{"zero: NaN is zero, left", 6, "-5", nan, L},
		{"zero: nonzero compared", 4, "-1", -2, L},
		{"zero: 1e-30 is not zero", 6, "-1", 1e-30, R},
		{"+inf", 0, "1e300", math.Inf(1), R},
		{"-inf", 0, "-1e300", math.Inf(-1), L},
		// LightGBM writes threshold=inf for a split that separates the
		// missing values from all others.
		{"nan: inf threshold, NaN right", 8, "inf", nan, R},
		{"nan: inf threshold, +inf left", 8, "inf", math.Inf(1), L},
		{"nan: inf threshold, NaN left", 10, "inf", nan, L},
		{"zero: inf threshold, 0 right", 4, "inf", 0, R},
		{"zero: inf threshold, NaN right", 4, "inf", nan, R},
		{"zero: inf threshold, +inf left", 4, "inf", math.Inf(1), L},
		{"none: inf threshold, NaN is 0", 0, "inf", nan, L},
		{"nan: -inf threshold, -inf left", 8, "-inf", math.Inf(-1), L},
		{"nan: -inf threshold, NaN left", 10, "-inf", nan, L},
		{"nan: -inf threshold, NaN right", 8, "-inf", nan, R},
		{"zero: -inf threshold, 0 left", 6, "-inf", 0, L},
		{"nan threshold: values go right", 0, "nan", 1, R},
		{"nan threshold: NaN default left", 10, "nan", nan, L},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mustParse(t, build(header("regression", 1, 1), numTree(c.dt, c.threshold)), Options{})
			// One and four rows walk the trees of one row together; nine
			// walk each tree across the rows (flat.go). A NaN threshold
			// keeps the node walk.
			for _, n := range []int{1, 4, 9} {
				rows := make([][]float64, n)
				for i := range rows {
					rows[i] = []float64{c.x}
				}
				for i, got := range predictRows(t, m, nil, rows...) {
					if got != c.want {
						t.Errorf("batch %d row %d, f0=%v: got leaf value %v, want %v", n, i, c.x, got, c.want)
					}
				}
			}
		})
	}
}

func TestCategoricalSplits(t *testing.T) {
	// Categories {0, 5, 33} go left: word 0 = 1<<0 | 1<<5 = 33, word 1 = 1<<1 = 2.
	// A second categorical split (index 1, set {2}) shows cat_boundaries at work.
	tr := `num_leaves=3
num_cat=2
split_feature=1 1
threshold=0 1
decision_type=1 1
left_child=-1 -2
right_child=1 -3
leaf_value=10 20 30
cat_boundaries=0 2 3
cat_threshold=33 2 4`
	m := mustParse(t, build(header("regression", 1, 2), tr), Options{})
	nan := math.NaN()
	cases := []struct {
		x    float64
		want float64
	}{
		{0, 10}, {5, 10}, {33, 10}, {5.9, 10}, {-0.5, 10},
		{2, 20},
		{1, 30}, {32, 30}, {34, 30}, {64, 30}, {-1, 30}, {nan, 30},
		{1e300, 30}, {math.Inf(1), 30}, {math.Inf(-1), 30}, {float64(math.MaxInt32) + 5, 30},
	}
	for _, c := range cases {
		if got := predictRows(t, m, nil, []float64{0, c.x}); got[0] != c.want {
			t.Errorf("cat=%v: got %v, want %v", c.x, got[0], c.want)
		}
	}
}

func TestLinearLeaves(t *testing.T) {
	// Left leaf: 1 + 2·f1 - 0.5·f0 (leaf_value 7 as the NaN fallback);
	// right leaf: constant -1 with no features.
	tr := `num_leaves=2
num_cat=0
split_feature=0
threshold=0
decision_type=2
left_child=-1
right_child=-2
leaf_value=7 8
is_linear=1
leaf_const=1 -1
num_features=2 0
leaf_features=1 0  
leaf_coeff=2 -0.5  `
	m := mustParse(t, build(header("regression", 1, 2), tr), Options{})
	got := predictRows(t, m, nil,
		[]float64{-2, 3},          // 1 + 6 + 1
		[]float64{1, 3},           // right: -1
		[]float64{-2, math.NaN()}, // fallback to leaf_value
		[]float64{math.NaN(), 3},  // NaN → 0 for the split (left), NaN in the linear model → fallback
	)
	want := []float64{8, -1, 7, 7}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func TestOutputsAndMetadata(t *testing.T) {
	m := mustParse(t, build(header("binary sigmoid:1", 1, 2), stump, constant), Options{})
	md := m.Metadata()
	if md.Inputs[0].Name != "input-0" || md.Inputs[0].Datatype != tensor.FP64 || md.Inputs[0].Shape[1] != 2 {
		t.Errorf("input metadata %+v", md.Inputs[0])
	}
	if md.Properties["feature_names"] != "f0,f1" || md.Properties["objective"] != "binary" || md.Properties["num_iterations"] != "2" {
		t.Errorf("properties %v", md.Properties)
	}
	in := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP32, Shape: []int64{2, 2}, Data: []float32{0, 0, 1, 0}}
	res, err := m.Predict(context.Background(), &runtime.Request{Inputs: []*tensor.Tensor{in}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Name != OutputPredict || res.Outputs[0].Datatype != tensor.FP64 {
		t.Fatalf("default outputs: %+v", res.Outputs)
	}
	res, err = m.Predict(context.Background(), &runtime.Request{Inputs: []*tensor.Tensor{in}, Outputs: []string{OutputRawScore}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Name != OutputRawScore {
		t.Fatalf("raw only: %+v", res.Outputs)
	}
	if raw := res.Outputs[0].Data.([]float64); !near(raw[0], 0.3) || !near(raw[1], 0.5) {
		t.Errorf("raw_score = %v, want [0.3 0.5]", raw)
	}
	// raw_score=true with both outputs: equal values, separate memory.
	res, err = m.Predict(context.Background(), &runtime.Request{Inputs: []*tensor.Tensor{in}, Outputs: []string{OutputPredict, OutputRawScore}, Parameters: map[string]any{ParamRawScore: "true"}})
	if err != nil {
		t.Fatal(err)
	}
	p, r := res.Outputs[0].Data.([]float64), res.Outputs[1].Data.([]float64)
	if &p[0] == &r[0] || p[0] != r[0] || !near(p[1], 0.5) {
		t.Errorf("predict %v and raw_score %v should be equal copies", p, r)
	}
	// An empty batch is fine.
	empty := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{0, 2}, Data: []float64{}}
	res, err = m.Predict(context.Background(), &runtime.Request{Inputs: []*tensor.Tensor{empty}})
	if err != nil || res.Outputs[0].Shape[0] != 0 {
		t.Errorf("empty batch: %v, %+v", err, res)
	}
}

func TestPredictErrors(t *testing.T) {
	m := mustParse(t, build(header("regression", 1, 2), stump), Options{})
	good := func() *tensor.Tensor {
		return &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{1, 2}, Data: []float64{0, 0}}
	}
	cases := []struct {
		name string
		req  *runtime.Request
		want string
	}{
		{"too few features", &runtime.Request{Inputs: []*tensor.Tensor{{Name: "x", Datatype: tensor.FP64, Shape: []int64{1, 3}, Data: []float64{0, 0, 0}}}}, `"x" has 3 features`},
		{"bytes", &runtime.Request{Inputs: []*tensor.Tensor{{Name: "x", Datatype: tensor.Bytes, Shape: []int64{1}, Data: [][]byte{[]byte("a")}}}}, "BYTES"},
		{"no inputs", &runtime.Request{}, "no inputs"},
		{"raw_score not bool", &runtime.Request{Inputs: []*tensor.Tensor{good()}, Parameters: map[string]any{ParamRawScore: int64(3)}}, "raw_score"},
		{"negative num_iteration", &runtime.Request{Inputs: []*tensor.Tensor{good()}, Parameters: map[string]any{ParamNumIteration: int64(-1)}}, "num_iteration"},
		{"fractional num_iteration", &runtime.Request{Inputs: []*tensor.Tensor{good()}, Parameters: map[string]any{ParamNumIteration: 1.5}}, "num_iteration"},
		{"unknown output", &runtime.Request{Inputs: []*tensor.Tensor{good()}, Outputs: []string{"predict_proba"}}, "predict_proba"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Predict(context.Background(), c.req)
			if !errors.Is(err, runtime.ErrInvalidInput) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want ErrInvalidInput mentioning %q", err, c.want)
			}
		})
	}
}

func TestPredictCancelled(t *testing.T) {
	m := loadCase(t, "binary_nan")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{5000, 6}, Data: make([]float64, 5000*6)}
	if _, err := m.Predict(ctx, &runtime.Request{Inputs: []*tensor.Tensor{in}}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestParseErrors(t *testing.T) {
	ok := build(header("regression", 1, 2), stump)
	cases := []struct {
		name  string
		text  string
		want  error
		match string
	}{
		{"empty", "", runtime.ErrCorruptModel, "tree"},
		{"not a model", "hello\n", runtime.ErrCorruptModel, "tree"},
		{"no end of trees", strings.Split(ok, "end of trees")[0], runtime.ErrCorruptModel, "truncated"},
		{"version", strings.Replace(ok, "version=v4", "version=v9", 1), runtime.ErrUnsupported, "v9"},
		{"objective", strings.Replace(ok, "objective=regression", "objective=bogus", 1), runtime.ErrUnsupported, "bogus"},
		{"no max_feature_idx", strings.Replace(ok, "max_feature_idx=1\n", "", 1), runtime.ErrCorruptModel, "max_feature_idx"},
		{"huge max_feature_idx", strings.Replace(ok, "max_feature_idx=1", "max_feature_idx=99999999999", 1), runtime.ErrCorruptModel, "max_feature_idx"},
		{"names mismatch", strings.Replace(ok, "feature_names=f0 f1", "feature_names=f0", 1), runtime.ErrCorruptModel, "feature_names"},
		{"feature out of range", strings.Replace(ok, "split_feature=0", "split_feature=2", 1), runtime.ErrCorruptModel, "feature 2"},
		{"lying num_leaves", strings.Replace(ok, "num_leaves=2", "num_leaves=2000000000", 1), runtime.ErrCorruptModel, "leaf_value"},
		{"short leaf_value", strings.Replace(ok, "leaf_value=0.1 0.3", "leaf_value=0.1", 1), runtime.ErrCorruptModel, "leaf_value"},
		{"bad number", strings.Replace(ok, "threshold=0.5", "threshold=x", 1), runtime.ErrCorruptModel, "threshold"},
		{"child out of range", strings.Replace(ok, "right_child=-2", "right_child=-3", 1), runtime.ErrCorruptModel, "child"},
		{"cycle", strings.Replace(ok, "right_child=-2", "right_child=0", 1), runtime.ErrCorruptModel, "reached twice"},
		{"missing type 3", strings.Replace(ok, "decision_type=10", "decision_type=12", 1), runtime.ErrCorruptModel, "missing type"},
		{"tree numbering", strings.Replace(ok, "Tree=0", "Tree=1", 1), runtime.ErrCorruptModel, "Tree=0"},
		{"tree_sizes", strings.Replace(ok, "feature_names", "tree_sizes=10 20\nfeature_names", 1), runtime.ErrCorruptModel, "tree_sizes"},
		{"no trees", build(header("regression", 1, 1)), runtime.ErrCorruptModel, "no trees"},
		{"multiclass trees", build(header("multiclass num_class:2", 2, 1), stump), runtime.ErrCorruptModel, "multiple"},
		{"binary with 2 classes", build(header("binary sigmoid:1", 2, 1), stump, stump), runtime.ErrCorruptModel, "num_class"},
		{"trees per round", strings.Replace(build(header("multiclass num_class:2", 2, 1), stump, stump), "num_tree_per_iteration=2", "num_tree_per_iteration=1", 1), runtime.ErrCorruptModel, "num_tree_per_iteration"},
		{"bad sigmoid", strings.Replace(ok, "objective=regression", "objective=binary sigmoid:-1", 1), runtime.ErrCorruptModel, "sigmoid"},
		{"cat index", build(header("regression", 1, 1), strings.Replace(numTree(1, "3"), "num_cat=0", "num_cat=1\ncat_boundaries=0 1\ncat_threshold=1", 1)), runtime.ErrCorruptModel, "categorical threshold"},
		{"cat boundaries", build(header("regression", 1, 1), strings.Replace(numTree(1, "0"), "num_cat=0", "num_cat=1\ncat_boundaries=0 5\ncat_threshold=1", 1)), runtime.ErrCorruptModel, "cat_boundaries"},
		{"linear counts", build(header("regression", 1, 1), numTree(0, "0")+"\nis_linear=1\nleaf_const=1 2\nnum_features=1 0\nleaf_features=\nleaf_coeff="), runtime.ErrCorruptModel, "num_features"},
		{"linear feature", build(header("regression", 1, 1), numTree(0, "0")+"\nis_linear=1\nleaf_const=1 2\nnum_features=1 0\nleaf_features=4\nleaf_coeff=1"), runtime.ErrCorruptModel, "leaf_features"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.text), Options{})
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.match) {
				t.Errorf("err = %v, want %v mentioning %q", err, c.want, c.match)
			}
		})
	}
}

// TestTruncated cuts a real model at many points: every cut must fail
// cleanly with ErrCorruptModel.
func TestTruncated(t *testing.T) {
	for _, name := range goldenCases {
		data := readFile(t, name)
		step := max(1, len(data)/300)
		for n := 0; n < len(data)-len("end of trees"); n += step {
			idx := strings.LastIndex(string(data[:n]), "end of trees")
			if idx >= 0 {
				break // past the trees; the rest is not needed to predict
			}
			if _, err := Parse(data[:n], Options{}); !errors.Is(err, runtime.ErrCorruptModel) {
				t.Fatalf("%s cut at %d: err = %v, want ErrCorruptModel", name, n, err)
			}
		}
	}
}

func TestMatch(t *testing.T) {
	cases := []struct {
		name string
		head string
		want bool
	}{
		{"model.txt", "tree\nversion=v4\n", true},
		{"MODEL.TXT", "tree\r\nversion=v4\r\n", true},
		{"model.txt", "trees are nice\n", false},
		{"notes.txt", "hello\n", false},
		{"model.json", "tree\n", false},
	}
	for _, c := range cases {
		if got := Format.Match(c.name, []byte(c.head)); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.name, c.head, got, c.want)
		}
	}
	if Format.Name != "lightgbm" {
		t.Errorf("Format.Name = %q", Format.Name)
	}
}

func TestLoadViaFormat(t *testing.T) {
	m, err := Format.Load(context.Background(), "testdata/binary_nan/model.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.Metadata().Inputs[0].Shape; got[1] != 6 {
		t.Errorf("input shape %v, want [-1 6]", got)
	}
	if _, err := Format.Load(context.Background(), "testdata/nope/model.txt"); err == nil {
		t.Error("loading a missing file succeeded")
	}
}
