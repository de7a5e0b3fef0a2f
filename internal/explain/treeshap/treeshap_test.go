package treeshap

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/xgboost"
)

// golden is one contribs.json written by testdata/gen/gen.py with
// libxgboost 1.7's Booster.predict(pred_contribs=True).
type golden struct {
	Rows     int   `json:"rows"`
	Cols     int   `json:"cols"`
	Shape    []int `json:"contribs_shape"`
	Input    f32s  `json:"input"`
	Contribs f32s  `json:"contribs"`
	Margin   f32s  `json:"margin"`
}

// f32s reads float32 arrays written in their shortest float32 form; null
// is NaN.
type f32s []float64

func (f *f32s) UnmarshalJSON(b []byte) error {
	var nums []*json.Number
	if err := json.Unmarshal(b, &nums); err != nil {
		return err
	}
	out := make([]float64, len(nums))
	for i, n := range nums {
		out[i] = math.NaN()
		if n != nil {
			v, err := strconv.ParseFloat(string(*n), 32)
			if err != nil {
				return err
			}
			out[i] = v
		}
	}
	*f = out
	return nil
}

func loadGolden(t testing.TB, dir string) (*xgboost.Model, golden) {
	t.Helper()
	var g golden
	b, err := os.ReadFile(filepath.Join(dir, "contribs.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	var model []byte
	if model, err = os.ReadFile(filepath.Join(dir, "model.json")); err != nil {
		f, err := os.Open(filepath.Join(dir, "model.ubj.gz"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		z, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		if model, err = io.ReadAll(z); err != nil {
			t.Fatal(err)
		}
	}
	m, err := xgboost.Parse(model)
	if err != nil {
		t.Fatal(err)
	}
	return m, g
}

func TestGoldenXGBoost(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil || len(dirs) < 20 {
		t.Fatalf("golden cases: %d (%v); run testdata/gen/gen.py", len(dirs), err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, g := loadGolden(t, dir)
			x, err := FromModel(m)
			if err != nil {
				t.Fatal(err)
			}
			w := x.Width()
			if len(g.Contribs) != g.Rows*w {
				t.Fatalf("golden has %d contributions for %d rows, explainer gives %d per row", len(g.Contribs), g.Rows, w)
			}
			got := make([]float64, g.Rows*w)
			if err := x.ShapRows(g.Input, got); err != nil {
				t.Fatal(err)
			}
			f := x.NumFeatures()
			for r := range g.Rows {
				for k := range w {
					i := r*w + k
					if d := math.Abs(got[i] - g.Contribs[i]); d > 1e-5 {
						t.Fatalf("row %d group %d column %d: %v, libxgboost %v", r, k/(f+1), k%(f+1), got[i], g.Contribs[i])
					}
				}
				// Additivity: each group's values sum to its margin.
				for grp := range x.NumGroups() {
					sum := 0.0
					for _, v := range got[r*w+grp*(f+1) : r*w+(grp+1)*(f+1)] {
						sum += v
					}
					margin := marginOf(t, m, g.Input[r*f:(r+1)*f], grp)
					if d := math.Abs(sum - margin); d > 1e-6*max(1, math.Abs(margin)) {
						t.Fatalf("row %d group %d: values sum to %v, margin %v", r, grp, sum, margin)
					}
				}
			}
		})
	}
}

// marginOf evaluates the row's margin from the ensemble in float64, the
// reference the additivity check holds the SHAP values to (the runtime's
// float32 margin differs by its rounding).
func marginOf(t testing.TB, m *xgboost.Model, row []float64, group int) float64 {
	t.Helper()
	e, err := m.TreeEnsemble()
	if err != nil {
		t.Fatal(err)
	}
	sum := e.Base[group]
	for _, tr := range e.Trees {
		if tr.Group != group {
			continue
		}
		n := &tr.Nodes[0]
		for !n.IsLeaf() {
			if n.GoesLeft(row[n.Feature]) {
				n = &tr.Nodes[n.Left]
			} else {
				n = &tr.Nodes[n.Right]
			}
		}
		sum += tr.Weight * n.Value
	}
	return sum
}

func TestRejects(t *testing.T) {
	leaf := runtime.TreeNode{Left: -1, Right: -1, Cover: 1}
	cases := map[string]*runtime.TreeEnsemble{
		"no features": {NumFeatures: 0, NumGroups: 1, Base: []float64{0}},
		"bad group":   {NumFeatures: 1, NumGroups: 1, Base: []float64{0}, Trees: []runtime.Tree{{Group: 1, Nodes: []runtime.TreeNode{leaf}}}},
		"cycle": {NumFeatures: 1, NumGroups: 1, Base: []float64{0}, Trees: []runtime.Tree{{Nodes: []runtime.TreeNode{
			{Left: 1, Right: 0, Cover: 2}, leaf}}}},
		"feature": {NumFeatures: 1, NumGroups: 1, Base: []float64{0}, Trees: []runtime.Tree{{Nodes: []runtime.TreeNode{
			{Left: 1, Right: 2, Feature: 3, Cover: 2}, leaf, leaf}}}},
		"no cover": {NumFeatures: 1, NumGroups: 1, Base: []float64{0}, Trees: []runtime.Tree{{Nodes: []runtime.TreeNode{
			{Left: 1, Right: 2, Cover: 0}, leaf, leaf}}}},
	}
	for name, e := range cases {
		if _, err := New(e); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLinearModelRefused(t *testing.T) {
	b, err := os.ReadFile("../../runtime/xgboost/testdata/golden/gblinear_squarederror/model.json")
	if err != nil {
		t.Skip("runtime golden model missing:", err)
	}
	m, err := xgboost.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FromModel(m); err == nil || !bytes.Contains([]byte(err.Error()), []byte("gblinear")) {
		t.Fatalf("linear model: %v", err)
	}
}
