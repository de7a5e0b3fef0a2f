package xgboost

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// handModel is a small XGBoost JSON model written by hand: one tree on two
// features,
//
//	node 0: f0 < 0.5, missing right -> node 1 / node 2
//	node 1: leaf 1     node 2: f1 < 2, missing left -> node 3 / node 4
//	node 3: leaf 2     node 4: leaf 3
//
// Placeholders let tests corrupt one field at a time.
const handModel = `{"learner":{"attributes":{},"feature_names":["a","b"],"feature_types":[],
"gradient_booster":{"model":{"gbtree_model_param":{"num_parallel_tree":"1","num_trees":"1","size_leaf_vector":"0"},
"tree_info":[0],"trees":[{"base_weights":[0,0,0,0,0],"categories":[],"categories_nodes":[],"categories_segments":[],
"categories_sizes":[],"default_left":@DL@,"id":0,"left_children":@LC@,"loss_changes":[0,0,0,0,0],
"parents":[2147483647,0,0,2,2],"right_children":[2,-1,4,-1,-1],"split_conditions":[5E-1,1E0,2E0,2E0,3E0],
"split_indices":@SI@,"split_type":[0,0,0,0,0],"sum_hessian":[1,1,1,1,1],
"tree_param":{"num_deleted":"0","num_feature":"2","num_nodes":"5","size_leaf_vector":"0"}}]},"name":"gbtree"},
"learner_model_param":{"base_score":@BS@,"boost_from_average":"1","num_class":"0","num_feature":"@NF@","num_target":"1"},
"objective":{"name":"@OBJ@","reg_loss_param":{"scale_pos_weight":"1"}}},"version":[1,7,4]}`

func handJSON(repl ...string) []byte {
	defaults := map[string]string{
		"@DL@": "[0,0,1,0,0]", "@LC@": "[1,-1,3,-1,-1]", "@SI@": "[0,0,1,0,0]",
		"@BS@": `"0E0"`, "@NF@": "2", "@OBJ@": "reg:squarederror",
	}
	for i := 0; i+1 < len(repl); i += 2 {
		defaults[repl[i]] = repl[i+1]
	}
	s := handModel
	for k, v := range defaults {
		s = strings.ReplaceAll(s, k, v)
	}
	return []byte(s)
}

func mustParse(t *testing.T, data []byte) *Model {
	t.Helper()
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func predict(t *testing.T, m *Model, rows [][]float32) []float32 {
	t.Helper()
	var x []float32
	for _, r := range rows {
		x = append(x, r...)
	}
	res, err := m.Predict(t.Context(), &runtime.Request{Inputs: []*tensor.Tensor{{
		Name: "input-0", Datatype: tensor.FP32, Shape: []int64{int64(len(rows)), int64(m.NumFeatures())}, Data: x,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Outputs[0].Data.([]float32)
}

func TestHandModelSplits(t *testing.T) {
	nan := float32(math.NaN())
	m := mustParse(t, handJSON())
	got := predict(t, m, [][]float32{
		{0.4, 0},    // f0 < 0.5: left leaf 1
		{0.5, 1.99}, // f0 == threshold goes right; f1 < 2: leaf 2
		{0.5, 2},    // leaf 3
		{nan, 5},    // missing f0 goes right (default_left 0); leaf 3
		{1, nan},    // missing f1 goes left (default_left 1); leaf 2
		{float32(math.Inf(-1)), 0},
		{float32(math.Inf(1)), float32(math.Inf(1))},
	})
	want := []float32{1, 2, 3, 3, 2, 1, 3}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestBaseScoreForms(t *testing.T) {
	for _, tc := range []struct {
		obj, base string
		want      float32 // prediction for a row reaching leaf 1
	}{
		{"reg:squarederror", `"5E-1"`, 1.5},
		{"reg:squarederror", `"[5E-1]"`, 1.5}, // XGBoost >= 3.1
		{"reg:squarederror", `""`, 1.5},       // absent: XGBoost's default 0.5
		{"binary:logitraw", `"2.5E-1"`, 1.25},
		{"count:poisson", `"[2E0]"`, 2 * float32(math.E)},
		{"binary:logistic", `"5E-1"`, float32(1 / (1 + math.Exp(-1)))},
	} {
		m := mustParse(t, handJSON("@OBJ@", tc.obj, "@BS@", tc.base))
		got := predict(t, m, [][]float32{{0, 0}})[0]
		if !closeEnough(got, tc.want) {
			t.Errorf("%s base_score %s: got %v, want %v", tc.obj, tc.base, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, runtime.ErrCorruptModel},
		{"not json", []byte(`{"learner": [}`), runtime.ErrCorruptModel},
		{"no learner", []byte(`{"version":[1,7,4]}`), runtime.ErrCorruptModel},
		{"unknown objective", handJSON("@OBJ@", "reg:madeup"), runtime.ErrUnsupported},
		{"child cycle", handJSON("@LC@", "[1,-1,0,-1,-1]"), runtime.ErrCorruptModel},
		{"child shared", handJSON("@LC@", "[2,-1,4,-1,-1]"), runtime.ErrCorruptModel},
		{"child out of range", handJSON("@LC@", "[1,-1,9,-1,-1]"), runtime.ErrCorruptModel},
		{"short arrays", handJSON("@LC@", "[1,-1,3]"), runtime.ErrCorruptModel},
		{"feature out of range", handJSON("@SI@", "[0,0,2,0,0]"), runtime.ErrCorruptModel},
		{"negative feature", handJSON("@SI@", "[0,0,-1,0,0]"), runtime.ErrCorruptModel},
		{"no features", handJSON("@NF@", "0"), runtime.ErrCorruptModel},
		{"bad num_feature", handJSON("@NF@", "two"), runtime.ErrCorruptModel},
		{"bad base_score", handJSON("@BS@", `"half"`), runtime.ErrCorruptModel},
		{"base_score vector length", handJSON("@BS@", `"[1E-1,2E-1]"`), runtime.ErrCorruptModel},
		{"logistic base_score 1", handJSON("@OBJ@", "binary:logistic", "@BS@", `"1E0"`), runtime.ErrCorruptModel},
		{"default_left type", handJSON("@DL@", `["x",0,1,0,0]`), runtime.ErrCorruptModel},
		{"vector leaf", []byte(strings.Replace(string(handJSON()), `"num_nodes":"5","size_leaf_vector":"0"`, `"num_nodes":"5","size_leaf_vector":"3"`, 1)), runtime.ErrUnsupported},
		{"ubjson garbage", []byte("{L\xff\xff\xff\xff\xff\xff\xff\xff"), runtime.ErrCorruptModel},
		{"binary short", []byte("binf\x00\x00"), runtime.ErrCorruptModel},
		{"base64 binary", []byte("bs64AAAA"), runtime.ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestTruncated cuts every golden model at many lengths: each prefix must
// fail cleanly with ErrCorruptModel (or parse, for the odd prefix that is
// still a complete document), never panic.
func TestTruncated(t *testing.T) {
	paths, _ := filepath.Glob("testdata/golden/*/model.*")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		step := max(1, len(data)/97)
		for n := 0; n < len(data); n += step {
			if _, err := Parse(data[:n]); err != nil && !errors.Is(err, runtime.ErrCorruptModel) {
				t.Errorf("%s[:%d]: %v does not wrap ErrCorruptModel", p, n, err)
			}
		}
	}
}

func TestSniffAndMatch(t *testing.T) {
	for _, tc := range []struct {
		data string
		want Encoding
	}{
		{`{"learner":{}}`, EncodingJSON},
		{" \n{ \"learner\"", EncodingJSON},
		{"{L\x00\x00\x00\x00\x00\x00\x00\x07learner", EncodingUBJSON},
		{"binf\x00\x00", EncodingBinary},
		{"\x00\x00\x00?", EncodingBinary},
	} {
		if got := Sniff([]byte(tc.data)); got != tc.want {
			t.Errorf("Sniff(%q) = %q, want %q", tc.data, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name, head string
		want       bool
	}{
		{"model.json", `{"learner":{"attributes":{}`, true},
		{"MODEL.JSON", `{"learner":{}}`, true},
		{"model.json", `{"inputs":[]}`, false}, // some other JSON file
		{"model.ubj", "{L", true},
		{"model.bst", "binf", true},
		{"model.txt", "tree\n", false},
		{"model.pkl", "", false},
	} {
		if got := Format.Match(tc.name, []byte(tc.head)); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.name, tc.head, got, tc.want)
		}
	}
}

func TestLoadThroughRegistry(t *testing.T) {
	reg := runtime.NewRegistry(Format)
	for _, enc := range []string{"json", "ubj", "bst"} {
		dir := t.TempDir()
		src, err := os.ReadFile("testdata/golden/binary_logistic/model." + enc)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "model."+enc), src, 0o644); err != nil {
			t.Fatal(err)
		}
		m, name, err := reg.Load(t.Context(), dir, "")
		if err != nil || name != "xgboost" {
			t.Fatalf("%s: load %q: %v", enc, name, err)
		}
		md := m.Metadata()
		if md.Platform != "xgboost_"+enc || md.Inputs[0].Name != "input-0" || md.Inputs[0].Datatype != tensor.FP32 ||
			!slices.Equal(md.Inputs[0].Shape, []int64{-1, 5}) || md.Outputs[0].Name != "predict" {
			t.Errorf("%s: metadata %+v", enc, md)
		}
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestPredictRequests(t *testing.T) {
	m := mustParse(t, handJSON())
	fp32 := func(name string, shape []int64, data ...float32) *tensor.Tensor {
		return &tensor.Tensor{Name: name, Datatype: tensor.FP32, Shape: shape, Data: data}
	}
	t.Run("column per feature", func(t *testing.T) {
		res, err := m.Predict(t.Context(), &runtime.Request{Inputs: []*tensor.Tensor{
			fp32("a", []int64{2}, 0.4, 0.5), fp32("b", []int64{2, 1}, 0, 3),
		}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Outputs[0].Data.([]float32); !slices.Equal(got, []float32{1, 3}) || !slices.Equal(res.Outputs[0].Shape, []int64{2}) {
			t.Errorf("got %v shape %v", got, res.Outputs[0].Shape)
		}
	})
	t.Run("fp64 input", func(t *testing.T) {
		res, err := m.Predict(t.Context(), &runtime.Request{Inputs: []*tensor.Tensor{
			{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{1, 2}, Data: []float64{0.5, 1}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Outputs[0].Data.([]float32); !slices.Equal(got, []float32{2}) {
			t.Errorf("got %v", got)
		}
	})
	t.Run("raw_score only", func(t *testing.T) {
		res, err := m.Predict(t.Context(), &runtime.Request{Inputs: []*tensor.Tensor{fp32("x", []int64{1, 2}, 0, 0)}, Outputs: []string{"raw_score"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Outputs) != 1 || res.Outputs[0].Name != "raw_score" {
			t.Errorf("outputs %v", res.Outputs)
		}
	})
	for _, tc := range []struct {
		name   string
		req    *runtime.Request
		substr string
	}{
		{"too few features", &runtime.Request{Inputs: []*tensor.Tensor{fp32("x", []int64{1, 1}, 0)}}, `"x" has 1 features per row`},
		{"bytes", &runtime.Request{Inputs: []*tensor.Tensor{{Name: "s", Datatype: tensor.Bytes, Shape: []int64{1}, Data: [][]byte{[]byte("a")}}}}, `"s" has datatype BYTES`},
		{"no inputs", &runtime.Request{}, "no inputs"},
		{"unknown output", &runtime.Request{Inputs: []*tensor.Tensor{fp32("x", []int64{1, 2}, 0, 0)}, Outputs: []string{"predict_proba"}}, "predict_proba"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Predict(t.Context(), tc.req)
			if !errors.Is(err, runtime.ErrInvalidInput) || !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("got %v, want ErrInvalidInput mentioning %q", err, tc.substr)
			}
		})
	}
}

// TestParallelMatchesSerial runs batches large enough to be split over
// goroutines, where trees walk eight rows in lockstep, and checks rows
// against single-row prediction, which walks them one by one.
func TestParallelMatchesSerial(t *testing.T) {
	for name, m := range map[string]*Model{
		"forest": mustParse(t, mustRead(t, "testdata/golden/multi_softprob_forest/model.json")),
		"bench":  benchModel(t),
	} {
		const rows = 5000
		nf, ng := m.NumFeatures(), m.b.ngroup
		x := benchInput(rows, nf)
		big, err := m.PredictMargins(t.Context(), x, rows)
		if err != nil {
			t.Fatal(err)
		}
		for r := 0; r < rows; r += 7 {
			one, err := m.PredictMargins(t.Context(), x[r*nf:(r+1)*nf], 1)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(one, big[r*ng:(r+1)*ng]) {
				t.Fatalf("%s row %d: batch %v, alone %v", name, r, big[r*ng:(r+1)*ng], one)
			}
		}
	}
}

func TestPredictCancelled(t *testing.T) {
	m := benchModel(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := m.PredictMargins(ctx, benchInput(10000, benchFeatures), 10000); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUBJSONForms(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"[$S#U\x02U\x01aU\x01b", `["a","b"]`},                              // typed array of strings
		{"{#U\x01U\x01kNi\x05", `{"k":5}`},                                  // counted object, no-op
		{"[d\x3f\x80\x00\x00D\x3f\xf8\x00\x00\x00\x00\x00\x00]", `[1,1.5]`}, // float32, float64
		{"[I\xff\xfel\x00\x01\x00\x00TFZ]", `[-2,65536,true,false,null]`},
		{"SU\x02\"\x01", `"\"\u0001"`},
		{"[$d#U\x01\x7f\xc0\x00\x00", `["NaN"]`},
	} {
		got, err := ubjToJSON([]byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("ubjToJSON(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "[", "{U\x01k", "[$Z#U\x05", "[#L\x7f\xff\xff\xff\xff\xff\xff\xff", "Q", "[]x", strings.Repeat("[", 100)} {
		if _, err := ubjToJSON([]byte(bad)); !errors.Is(err, runtime.ErrCorruptModel) {
			t.Errorf("ubjToJSON(%q): got %v, want ErrCorruptModel", bad, err)
		}
	}
}
