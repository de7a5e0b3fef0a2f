package explain

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/xgboost"
)

// TestInteractionsOverExplain asks :explain for TreeShap interaction
// values (config interactions=true) on the XGBoost models that have
// pred_interactions goldens (treeshap/testdata/gen/gen_interactions.py,
// libxgboost 1.7) and compares every value, bias row and column dropped
// as Alibi and shap do, within 1e-5. Each matrix row must sum to the
// SHAP value served beside it.
func TestInteractionsOverExplain(t *testing.T) {
	files, _ := filepath.Glob("treeshap/testdata/golden/*/interactions.json")
	if len(files) < 5 {
		t.Fatalf("%d interaction goldens", len(files))
	}
	for _, file := range files {
		dir := filepath.Dir(file)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, "model.json"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := xgboost.Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			var g struct {
				Rows, Cols   int
				Shape        []int
				Input        []*float64
				Interactions []*float64
			}
			if b, err = os.ReadFile(file); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &g); err != nil {
				t.Fatal(err)
			}
			groups, n := 1, g.Cols+1
			if len(g.Shape) == 4 {
				groups = g.Shape[1]
			}
			rows := make(Rows, g.Rows)
			for r := range rows {
				rows[r] = f32(g.Input[r*g.Cols : (r+1)*g.Cols])
			}
			want := f32(g.Interactions)
			body, _ := json.Marshal(map[string]any{"instances": rows})
			lend := func(string) LendFunc {
				return func() (runtime.Model, func(), error) { return m, func() {}, nil }
			}
			h := handler(t, Options{Type: TypeTreeShap, Config: map[string]string{"interactions": "true"}}, "unused", lend)
			code, out := post(t, h, "/v1/models/x:explain", string(body))
			if code != 200 {
				t.Fatalf("%d %v", code, out)
			}
			var d ShapData
			raw, _ := json.Marshal(out["data"])
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Fatal(err)
			}
			if len(d.ShapInteractionValues) != groups {
				t.Fatalf("%d groups of interaction values, want %d", len(d.ShapInteractionValues), groups)
			}
			worst := 0.0
			for k := range groups {
				for r := range g.Rows {
					mat := d.ShapInteractionValues[k][r]
					if len(mat) != g.Cols {
						t.Fatalf("group %d row %d: %d matrix rows, want %d", k, r, len(mat), g.Cols)
					}
					for i := range g.Cols {
						sum := 0.0
						for j := range g.Cols {
							w := want[((r*groups+k)*n+i)*n+j]
							diff := math.Abs(mat[i][j] - w)
							worst = max(worst, diff)
							if diff > 1e-5 {
								t.Fatalf("group %d row %d [%d][%d]: %v, libxgboost %v", k, r, i, j, mat[i][j], w)
							}
							sum += mat[i][j]
						}
						if s := d.ShapValues[k][r][i]; math.Abs(sum-s) > 1e-9 {
							t.Fatalf("group %d row %d feature %d: interactions sum to %v, shap value %v", k, r, i, sum, s)
						}
					}
				}
			}
			t.Logf("%d rows × %d groups: worst |Ferry - libxgboost| %.2g", g.Rows, groups, worst)
		})
	}
}

// f32 reads golden float32 values (null: NaN) as float64s of the same
// float32 numbers.
func f32(vals []*float64) []float64 {
	out := make([]float64, len(vals))
	for i, v := range vals {
		out[i] = math.NaN()
		if v != nil {
			out[i] = float64(float32(*v))
		}
	}
	return out
}

// TestInteractionsBudget: a request whose interaction values would pass
// the bound is refused by name before any work; without interactions=true
// the response carries no shap_interaction_values.
func TestInteractionsBudget(t *testing.T) {
	b, err := os.ReadFile("treeshap/testdata/golden/reg_squarederror/model.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := xgboost.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	lend := func(string) LendFunc {
		return func() (runtime.Model, func(), error) { return m, func() {}, nil }
	}
	h := handler(t, Options{Type: TypeTreeShap}, "unused", lend)
	code, out := post(t, h, "/v1/models/x:explain", `{"instances": [[1, 2, 3, 4, 5]]}`)
	if _, ok := out["data"].(map[string]any)["shap_interaction_values"]; code != 200 || ok {
		t.Fatalf("without interactions: %d %v", code, out)
	}
	x, err := New(Config{Options: Options{Type: TypeTreeShap, Config: map[string]string{"interactions": "true"}}, Lend: lend})
	if err != nil {
		t.Fatal(err)
	}
	rows := make([][]float64, maxInteractionValues/36+1)
	for i := range rows {
		rows[i] = []float64{1, 2, 3, 4, 5}
	}
	if _, err := x.Explain(t.Context(), "x", rows); err == nil || !strings.Contains(err.Error(), "interaction values") {
		t.Fatalf("over budget: %v", err)
	}
	if _, err := New(Config{Options: Options{Type: TypeTreeShap, Config: map[string]string{"interactions": "yes"}}, Lend: lend}); err == nil || !strings.Contains(err.Error(), "interactions") {
		t.Fatalf("interactions=yes: %v", err)
	}
}

// TestInteractionsPerRequest: Alibi's explain argument interactions, at
// the top level (V1) or in V2's parameters, turns interaction values on
// or off for one request over the config; other types refuse it.
func TestInteractionsPerRequest(t *testing.T) {
	b, err := os.ReadFile("treeshap/testdata/golden/reg_squarederror/model.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := xgboost.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	lend := func(string) LendFunc {
		return func() (runtime.Model, func(), error) { return m, func() {}, nil }
	}
	h := handler(t, Options{Type: TypeTreeShap}, "unused", lend)
	for body, want := range map[string]bool{
		`{"instances": [[1, 2, 3, 4, 5]]}`:                          false,
		`{"instances": [[1, 2, 3, 4, 5]], "interactions": true}`:    true,
		`{"instances": [[1, 2, 3, 4, 5]], "interactions": "false"}`: false,
		`{"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": [1, 2, 3, 4, 5]}], "parameters": {"interactions": true}}`: true,
	} {
		code, out := post(t, h, "/v1/models/x:explain", body)
		if _, got := out["data"].(map[string]any)["shap_interaction_values"]; code != 200 || got != want {
			t.Errorf("%s: %d, interaction values %v", body, code, got)
		}
	}
	if code, out := post(t, h, "/v1/models/x:explain", `{"instances": [[1, 2, 3, 4, 5]], "interactions": 1}`); code != 400 || !strings.Contains(out["error"].(string), "interactions") {
		t.Errorf("interactions 1: %d %v", code, out)
	}
	s := v1Server(t, false)
	k := handler(t, Options{Type: TypeKernelShap, Data: background()}, s.URL, nil)
	if code, out := post(t, k, "/v1/models/lin:explain", `{"instances": [[1, 2, 3]], "interactions": true}`); code != 400 || !strings.Contains(out["error"].(string), "only TreeShap") {
		t.Errorf("KernelShap with interactions: %d %v", code, out)
	}
}
