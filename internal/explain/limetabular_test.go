package explain

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// TestLimeTabularOverV1 explains the loopback linear predictor
// 2·a - b + 0.5·c over V1: the weights come back per training standard
// deviation, largest first, with the model's signs. The instance lies
// far from the training mean the samples are drawn around, so few
// samples weigh much and lime's ridge penalty (alpha 1) shrinks every
// weight a little (5% here): the weights and their ratios come within
// 10%; sampling around the instance, within 5%.
func TestLimeTabularOverV1(t *testing.T) {
	s := v1Server(t, false)
	for around, tol := range map[string]float64{"false": 0.1, "true": 0.05} {
		t.Run("sample_around_instance="+around, func(t *testing.T) {
			testLimeLinear(t, s.URL, around, tol)
		})
	}
}

func testLimeLinear(t *testing.T, url, around string, tol float64) {
	h := handler(t, Options{Type: TypeLimeTabular, Config: map[string]string{"seed": "1", "num_samples": "2000", "sample_around_instance": around, "discretize_continuous": "false"}, Data: background()}, url, nil)
	code, out := post(t, h, "/v1/models/lin:explain", `{"instances": [[1, 2, 3]]}`)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	var exp struct {
		Meta Meta     `json:"meta"`
		Data LimeData `json:"data"`
	}
	b, _ := json.Marshal(out)
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	if exp.Meta.Name != "LimeTabular" || exp.Meta.Params["sample_around_instance"] != around || len(exp.Data.Explanations) != 1 {
		t.Fatalf("%+v", exp)
	}
	e := exp.Data.Explanations[0]
	std := []float64{2, math.Sqrt2, math.Sqrt(2.0 / 3)} // of background()'s columns
	w := []float64{2, -1, 0.5}
	names := []string{"a", "b", "c"}
	for k, item := range e.AsList {
		if item[0] != names[k] {
			t.Fatalf("as_list %v: want a, b, c", e.AsList)
		}
		got, want := item[1].(float64), w[k]*std[k]
		if math.Abs(got-want) > tol*math.Abs(want) || math.Signbit(got) != math.Signbit(want) {
			t.Errorf("%s: weight %v, want %v", names[k], got, want)
		}
		if ratio, wantRatio := got/e.AsList[0][1].(float64), want/(w[0]*std[0]); math.Abs(ratio-wantRatio) > tol*math.Abs(wantRatio) {
			t.Errorf("%s: weight / a's weight %v, want %v", names[k], ratio, wantRatio)
		}
		if int(e.LocalExp[k][0].(float64)) != k || e.LocalExp[k][1] != item[1] {
			t.Errorf("local_exp %v", e.LocalExp)
		}
	}
	if e.ModelPrediction != 2*1-2+0.5*3 || e.Score < 0.999 || exp.Data.Prediction[0] != e.ModelPrediction {
		t.Errorf("%+v", e)
	}
}

func TestLimeTabularCategoryNames(t *testing.T) {
	d := background()
	d.CategoryMap = map[int][]string{2: {"low", "mid", "high"}}
	for _, r := range d.Rows {
		r[2]++ // categories 0..2
	}
	s := v1Server(t, false)
	h := handler(t, Options{Type: TypeLimeTabular, Config: map[string]string{"seed": "2"}, Data: d}, s.URL, nil)
	code, out := post(t, h, "/v1/models/lin:explain", `{"instances": [[1, 2, 2]]}`)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	asList := out["data"].(map[string]any)["explanations"].([]any)[0].(map[string]any)["as_list"].([]any)
	found := false
	for _, item := range asList {
		if p := item.([]any); p[0] == "c=high" {
			found = true
			// Being category 2 (value 2) rather than 0 or 1 adds 0.5·(2 - 0.5) on average.
			if w := p[1].(float64); w < 0.5 || w > 1 {
				t.Errorf("c=high weight %v", w)
			}
		}
	}
	if !found {
		t.Fatalf("as_list %v has no c=high", asList)
	}
}

func TestLimeTabularConfigRefused(t *testing.T) {
	for cfg, want := range map[string]string{
		"discretize_continuous=maybe": "discretize_continuous",
		"num_sample=10":               `LimeTabular does not take "num_sample"; it takes: num_samples,`,
		"feature_selection=lasso":     "feature_selection",
		"kernel_width=wide":           "kernel_width",
	} {
		c, _ := ParseConfig([]string{cfg})
		_, err := New(Config{Options: Options{Type: TypeLimeTabular, Config: c, Data: background()}, Predictor: func(string) Predictor { return nil }})
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", cfg, err)
		}
	}
	if _, err := New(Config{Options: Options{Type: TypeLimeTabular}}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "training rows") {
		t.Errorf("no data: %v", err)
	}
	if !NeedsData(TypeLimeTabular) {
		t.Error("NeedsData(LimeTabular) is false")
	}
}

// TestLimeTabularDiscretizedOverV1: by default (lime's
// discretize_continuous) features are named by the instance's training
// quartile, and the linear model's strongest feature leads with its sign.
func TestLimeTabularDiscretizedOverV1(t *testing.T) {
	s := v1Server(t, false)
	h := handler(t, Options{Type: TypeLimeTabular, Config: map[string]string{"seed": "3"}, Data: background()}, s.URL, nil)
	code, out := post(t, h, "/v1/models/lin:explain", `{"instances": [[3, -2, 1]]}`)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	asList := out["data"].(map[string]any)["explanations"].([]any)[0].(map[string]any)["as_list"].([]any)
	// a = 3 is in a's top quartile, b = -2 in b's bottom one, c = 1 in
	// (0, 1]: each raises 2a - b + 0.5c over the rest of its column, a
	// the most.
	want := []string{"a > 1.25", "b <= -1.00", "0.00 < c <= 1.00"}
	for k, item := range asList {
		p := item.([]any)
		if p[0] != want[k] || p[1].(float64) <= 0 {
			t.Fatalf("as_list %v, want names %v with positive weights", asList, want)
		}
	}
}
