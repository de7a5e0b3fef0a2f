package lime

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

// linear is the model 2·a - b + 0.5·c.
func linear(_ context.Context, rows [][]float64) ([][]float64, error) {
	out := make([][]float64, len(rows))
	for i, r := range rows {
		out[i] = []float64{2*r[0] - r[1] + 0.5*r[2]}
	}
	return out, nil
}

// training draws n rows with the given standard deviations.
func training(n int, std ...float64) [][]float64 {
	rng := rand.New(rand.NewPCG(7, 7))
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = make([]float64, len(std))
		for j, s := range std {
			rows[i][j] = rng.NormFloat64()*s + float64(j)
		}
	}
	return rows
}

// TestTabularRecoversLinearWeights: on a linear model LIME's local model
// is the model itself, so its weights are the model's weights per
// training standard deviation, in the same order and with the same
// signs, and the local fit is exact but for the ridge penalty (R² ≥ 0.999).
func TestTabularRecoversLinearWeights(t *testing.T) {
	for _, tc := range []struct {
		name string
		std  []float64
	}{
		{"equal spreads", []float64{1, 1, 1}},
		{"unequal spreads", []float64{0.5, 3, 1}},
	} {
		rows := training(500, tc.std...)
		x, err := NewTabular(rows, nil, TabularConfig{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := x.Explain(t.Context(), linear, []float64{1, -2, 4})
		if err != nil {
			t.Fatal(err)
		}
		e := res.Explanations[0]
		w := []float64{2, -1, 0.5}
		want := make([]int, 3) // features by |w·std|, largest first
		for i := range want {
			want[i] = i
		}
		slices.SortFunc(want, func(a, b int) int {
			return cmpDesc(math.Abs(w[a]*x.scale[a]), math.Abs(w[b]*x.scale[b]))
		})
		if !slices.Equal(e.Features, want) {
			t.Fatalf("%s: features %v, want %v (weights %v)", tc.name, e.Features, want, e.Weights)
		}
		for k, f := range e.Features {
			if got, exp := e.Weights[k], w[f]*x.scale[f]; math.Signbit(got) != math.Signbit(exp) || math.Abs(got-exp) > 0.01*math.Abs(exp) {
				t.Errorf("%s: feature %d weight %v, want %v", tc.name, f, got, exp)
			}
		}
		if e.Score < 0.999 || math.Abs(e.LocalPrediction-e.ModelPrediction) > 0.05 || e.ModelPrediction != 2*1+2+0.5*4 {
			t.Errorf("%s: score %v, local %v, model %v", tc.name, e.Score, e.LocalPrediction, e.ModelPrediction)
		}
	}
}

// TestTabularClassifier explains the most probable class of a softmax
// over two linear scores: the feature that raises that class's score
// gets a positive weight and the one that lowers it a negative one.
func TestTabularClassifier(t *testing.T) {
	predict := func(_ context.Context, rows [][]float64) ([][]float64, error) {
		out := make([][]float64, len(rows))
		for i, r := range rows {
			z := 3*r[0] - 2*r[1] // class 1's score over class 0's
			p := 1 / (1 + math.Exp(-z))
			out[i] = []float64{1 - p, p}
		}
		return out, nil
	}
	x, err := NewTabular(training(300, 1, 1, 1), nil, TabularConfig{Seed: 3, TopLabels: 2, SampleAroundInstance: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := x.Explain(t.Context(), predict, []float64{1, 0.2, 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Explanations) != 2 || res.Explanations[0].Label != 1 || res.Explanations[1].Label != 0 {
		t.Fatalf("labels: %+v", res.Explanations)
	}
	e := res.Explanations[0]
	weight := map[int]float64{}
	for k, f := range e.Features {
		weight[f] = e.Weights[k]
	}
	if e.Features[0] != 0 || weight[0] <= 0 || weight[1] >= 0 || math.Abs(weight[2]) > 0.1*math.Abs(weight[1]) {
		t.Fatalf("class 1 weights %v (features %v)", e.Weights, e.Features)
	}
	if e.Score < 0.5 {
		t.Errorf("score %v", e.Score)
	}
}

// TestTabularCategorical: a categorical column is explained as "same
// category as the instance": the model adds 3 when it is category 2, so
// an instance of category 2 gets a weight near +3 for it.
func TestTabularCategorical(t *testing.T) {
	rows := training(400, 1, 1)
	for i, r := range rows {
		r[1] = float64(i % 4) // categories 0..3
	}
	predict := func(_ context.Context, rows [][]float64) ([][]float64, error) {
		out := make([][]float64, len(rows))
		for i, r := range rows {
			v := r[0]
			if r[1] == 2 {
				v += 3
			}
			out[i] = []float64{v}
		}
		return out, nil
	}
	x, err := NewTabular(rows, []int{1}, TabularConfig{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	res, err := x.Explain(t.Context(), predict, []float64{0.5, 2})
	if err != nil {
		t.Fatal(err)
	}
	e := res.Explanations[0]
	if e.Features[0] != 1 || math.Abs(e.Weights[0]-3) > 0.1 {
		t.Fatalf("features %v weights %v", e.Features, e.Weights)
	}
}

// TestTabularSelectionAndSeed: num_features keeps the strongest
// features under each selection method, and a seed repeats the answer.
func TestTabularSelectionAndSeed(t *testing.T) {
	for _, sel := range []string{"auto", "forward_selection", "highest_weights"} {
		x, err := NewTabular(training(200, 1, 1, 1), nil, TabularConfig{Seed: 9, NumFeatures: 2, FeatureSelection: sel})
		if err != nil {
			t.Fatal(err)
		}
		a, err := x.Explain(t.Context(), linear, []float64{3, 3, 3})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := x.Explain(t.Context(), linear, []float64{3, 3, 3})
		if !slices.Equal(a.Explanations[0].Features, []int{0, 1}) || !slices.Equal(a.Explanations[0].Weights, b.Explanations[0].Weights) {
			t.Errorf("%s: %+v then %+v", sel, a.Explanations[0], b.Explanations[0])
		}
	}
}

func TestTabularErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  TabularConfig
		want string
	}{
		{TabularConfig{NumSamples: 1}, "num_samples"},
		{TabularConfig{KernelWidth: -1}, "kernel_width"},
		{TabularConfig{FeatureSelection: "lasso_path"}, "feature_selection"},
		{TabularConfig{NumSamples: 1_000_000}, "values an explanation may hold"},
	} {
		if _, err := NewTabular(training(10, make([]float64, 20)...), nil, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
	x, _ := NewTabular(training(10, 1, 1, 1), nil, TabularConfig{})
	if _, err := x.Explain(t.Context(), linear, []float64{1, math.NaN(), 1}); err == nil || !strings.Contains(err.Error(), "feature 1") {
		t.Errorf("missing value: %v", err)
	}
	if _, err := x.Explain(t.Context(), linear, []float64{1, 1}); err == nil {
		t.Error("short row accepted")
	}
}

// TestRidgeExact: with no penalty a weighted fit of exact linear data
// recovers its coefficients and intercept.
func TestRidgeExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var x [][]float64
	var y, w []float64
	for range 50 {
		r := []float64{rng.NormFloat64(), rng.NormFloat64(), 7} // a constant column
		x = append(x, r)
		y = append(y, 1.5-2*r[0]+0.25*r[1])
		w = append(w, rng.Float64())
	}
	f, err := ridge(x, []int{0, 1, 2}, y, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(f.coef[0]+2) > 1e-9 || math.Abs(f.coef[1]-0.25) > 1e-9 || f.coef[2] != 0 || math.Abs(f.intercept-1.5) > 1e-9 || math.Abs(f.score-1) > 1e-12 {
		t.Fatalf("%+v", f)
	}
}

func BenchmarkTabular(b *testing.B) {
	x, _ := NewTabular(training(500, 1, 1, 1, 1, 1, 1, 1, 1), nil, TabularConfig{Seed: 1})
	row := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	predict := func(_ context.Context, rows [][]float64) ([][]float64, error) {
		out := make([][]float64, len(rows))
		for i, r := range rows {
			out[i] = []float64{r[0] - r[3] + 0.1*r[7]}
		}
		return out, nil
	}
	for b.Loop() {
		if _, err := x.Explain(b.Context(), predict, row); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRidgeMatchesScikitLearn compares ridge with scikit-learn 1.2's
// Ridge(alpha).fit(X, y, sample_weight) and .score, lime's local model,
// on LIME-like problems (testdata/gen/gen_ridge.py): coefficients,
// intercept and weighted R² within 1e-9.
func TestRidgeMatchesScikitLearn(t *testing.T) {
	b, err := os.ReadFile("testdata/ridge.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []struct {
			X                [][]float64
			Y, W             []float64
			Alpha            float64
			Coef             []float64
			Intercept, Score float64
		}
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 4 {
		t.Fatalf("%d cases", len(g.Cases))
	}
	worst := 0.0
	for i, c := range g.Cases {
		cols := make([]int, len(c.X[0]))
		for j := range cols {
			cols[j] = j
		}
		f, err := ridge(c.X, cols, c.Y, c.W, c.Alpha)
		if err != nil {
			t.Fatal(err)
		}
		got := append(append(slices.Clone(f.coef), f.intercept), f.score)
		want := append(append(slices.Clone(c.Coef), c.Intercept), c.Score)
		for k := range got {
			d := math.Abs(got[k] - want[k])
			worst = max(worst, d)
			if d > 1e-9 {
				t.Errorf("case %d (alpha %v): value %d is %v, scikit-learn %v", i, c.Alpha, k, got[k], want[k])
			}
		}
	}
	t.Logf("worst |Ferry - scikit-learn| %.2g", worst)
}

// TestQuartiles: lime's quartile bins of 1..100, their names, and draws
// that stay inside the bin asked for.
func TestQuartiles(t *testing.T) {
	col := make([]float64, 100)
	for i := range col {
		col[i] = float64(i + 1)
	}
	q := newQuartiles(col)
	if !slices.Equal(q.cuts, []float64{25.75, 50.5, 75.25}) {
		t.Fatalf("cuts %v", q.cuts)
	}
	for b, want := range []string{"x <= 25.75", "25.75 < x <= 50.50", "50.50 < x <= 75.25", "x > 75.25"} {
		if got := q.name("x", b); got != want {
			t.Errorf("bin %d: %q, want %q", b, got, want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for b := range 4 {
		for range 500 {
			if v := q.draw(rng, b); v < q.lo[b] || v > q.hi[b] {
				t.Fatalf("bin %d drew %v outside [%v, %v]", b, v, q.lo[b], q.hi[b])
			}
		}
	}
	if c := newQuartiles([]float64{3, 3, 3, math.NaN()}); len(c.cuts) != 1 || c.draw(rng, 0) != 3 {
		t.Fatalf("a constant column: cuts %v", c.cuts)
	}
}

// TestTabularDiscretized: with lime's default discretisation a step
// model (1 above 50 in feature 0) is explained by "feature 0 is in the
// instance's quartile", positively, and noise features weigh little.
func TestTabularDiscretized(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	rows := make([][]float64, 400)
	for i := range rows {
		rows[i] = []float64{rng.Float64() * 100, rng.NormFloat64(), rng.NormFloat64()}
	}
	step := func(_ context.Context, rows [][]float64) ([][]float64, error) {
		out := make([][]float64, len(rows))
		for i, r := range rows {
			out[i] = []float64{0}
			if r[0] > 50 {
				out[i][0] = 1
			}
		}
		return out, nil
	}
	x, err := NewTabular(rows, nil, TabularConfig{Seed: 2, Discretize: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := x.Explain(t.Context(), step, []float64{90, 0.1, -0.2})
	if err != nil {
		t.Fatal(err)
	}
	e := res.Explanations[0]
	if e.Features[0] != 0 || e.Weights[0] < 0.4 || math.Abs(e.Weights[1]) > 0.1 || math.Abs(e.Weights[2]) > 0.1 {
		t.Fatalf("features %v weights %v", e.Features, e.Weights)
	}
	if name := x.BinName(0, "a", 90); !strings.HasPrefix(name, "a > 7") {
		t.Errorf("bin name %q", name)
	}
}
