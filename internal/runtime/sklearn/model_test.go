package sklearn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
	"github.com/ferryserve/ferry/internal/tensor"
)

func load(t testing.TB, file string) *Model {
	t.Helper()
	m, err := Load(context.Background(), "testdata/models/"+file)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMatch(t *testing.T) {
	for name, want := range map[string]bool{
		"model.joblib": true, "model.pkl": true, "model.pickle": true, "MODEL.PKL": true,
		"model.txt": false, "model.json": false, "model.joblib.bak": false, "pkl": false,
	} {
		if got := Format.Match(name, nil); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
	if Format.Name != "sklearn" {
		t.Errorf("Format.Name = %q", Format.Name)
	}
}

func TestMetadata(t *testing.T) {
	cases := []struct {
		file    string
		outputs []runtime.TensorMeta
	}{
		{"linreg.joblib", []runtime.TensorMeta{{Name: "predict", Datatype: tensor.FP64, Shape: []int64{-1}}}},
		{"logreg_multi.joblib", []runtime.TensorMeta{
			{Name: "predict", Datatype: tensor.Int64, Shape: []int64{-1}},
			{Name: "predict_proba", Datatype: tensor.FP64, Shape: []int64{-1, 3}},
			{Name: "decision_function", Datatype: tensor.FP64, Shape: []int64{-1, 3}},
		}},
		{"rfc_str.joblib", []runtime.TensorMeta{
			{Name: "predict", Datatype: tensor.Bytes, Shape: []int64{-1}},
			{Name: "predict_proba", Datatype: tensor.FP64, Shape: []int64{-1, 3}},
		}},
		{"linsvc_bin.joblib", []runtime.TensorMeta{
			{Name: "predict", Datatype: tensor.Int64, Shape: []int64{-1}},
			{Name: "decision_function", Datatype: tensor.FP64, Shape: []int64{-1}},
		}},
	}
	for _, c := range cases {
		md := load(t, c.file).Metadata()
		if md.Platform != "sklearn" || len(md.Inputs) != 1 || md.Inputs[0].Name != "input-0" ||
			md.Inputs[0].Datatype != tensor.FP64 || !slices.Equal(md.Inputs[0].Shape, []int64{-1, 5}) {
			t.Errorf("%s: inputs %+v", c.file, md.Inputs)
		}
		if len(md.Outputs) != len(c.outputs) {
			t.Errorf("%s: outputs %+v, want %+v", c.file, md.Outputs, c.outputs)
			continue
		}
		for i, o := range md.Outputs {
			w := c.outputs[i]
			if o.Name != w.Name || o.Datatype != w.Datatype || !slices.Equal(o.Shape, w.Shape) {
				t.Errorf("%s: output %d = %+v, want %+v", c.file, i, o, w)
			}
		}
	}
}

func TestDefaultOutputOnly(t *testing.T) {
	m := load(t, "logreg_multi.joblib")
	g := readGolden(t, "logreg_multi")
	res, err := m.Predict(context.Background(), g.request())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Name != "predict" || !slices.Equal(res.Outputs[0].Shape, []int64{16}) {
		t.Fatalf("outputs = %+v, want predict [16] only", res.Outputs)
	}
	// Only predict_proba when only it is named.
	res, err = m.Predict(context.Background(), g.request("predict_proba"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Name != "predict_proba" || !slices.Equal(res.Outputs[0].Shape, []int64{16, 3}) {
		t.Fatalf("outputs = %+v, want predict_proba [16, 3] only", res.Outputs)
	}
}

// Column-per-feature requests give the same answer as one matrix.
func TestColumnLayout(t *testing.T) {
	m := load(t, "pipe_std_logreg.joblib")
	g := readGolden(t, "pipe_std_logreg")
	req := &runtime.Request{}
	for j := range g.X[0] {
		col := make([]float64, len(g.X))
		for i := range g.X {
			col[i] = float64(g.X[i][j])
		}
		req.Inputs = append(req.Inputs, runtime.NewFP64("f", []int64{int64(len(col))}, col))
	}
	res, err := m.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := res.Outputs[0].Data.([]int64)
	for i, v := range g.Predict {
		if got[i] != int64(v.(float64)) {
			t.Fatalf("predict[%d] = %d, want %v", i, got[i], v)
		}
	}
	// The request's data is not modified by the pipeline's scaler.
	if float64(g.X[0][0]) != req.Inputs[0].Data.([]float64)[0] {
		t.Fatal("the request was modified")
	}
}

func TestRequestNotModified(t *testing.T) {
	m := load(t, "pipe_std_logreg.joblib")
	g := readGolden(t, "pipe_std_logreg")
	req := g.request()
	before := slices.Clone(req.Inputs[0].Data.([]float64))
	if _, err := m.Predict(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, req.Inputs[0].Data.([]float64)) {
		t.Fatal("Predict modified the request tensor")
	}
}

func TestPredictErrors(t *testing.T) {
	reg := load(t, "linreg.joblib")
	clf := load(t, "linsvc_bin.joblib")
	row := func(n int) []*tensor.Tensor {
		return []*tensor.Tensor{runtime.NewFP64("input-0", []int64{1, int64(n)}, make([]float64, n))}
	}
	cases := []struct {
		name string
		m    *Model
		req  *runtime.Request
		msg  string
	}{
		{"wrong feature count", reg, &runtime.Request{Inputs: row(4)}, "expects 5"},
		{"bytes input", reg, &runtime.Request{Inputs: []*tensor.Tensor{runtime.NewBytes("input-0", []int64{1}, []string{"x"})}}, "BYTES"},
		{"proba of a regressor", reg, &runtime.Request{Inputs: row(5), Outputs: []string{"predict_proba"}}, "regressor"},
		{"proba of LinearSVC", clf, &runtime.Request{Inputs: row(5), Outputs: []string{"predict_proba"}}, "no predict_proba"},
		{"unknown output", clf, &runtime.Request{Inputs: row(5), Outputs: []string{"scores"}}, "unknown output"},
		{"no inputs", clf, &runtime.Request{}, "no inputs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.m.Predict(context.Background(), c.req)
			if !errors.Is(err, runtime.ErrInvalidInput) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want ErrInvalidInput mentioning %q", err, c.msg)
			}
		})
	}
}

func TestPredictCancelled(t *testing.T) {
	m := load(t, "rfc.joblib")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Predict(ctx, readGolden(t, "rfc").request()); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(context.Background(), "testdata/models/unsupported_nearest_centroid.joblib")
	if !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), "sklearn estimator NearestCentroid is not supported; supported: ") ||
		!strings.Contains(err.Error(), "RandomForestClassifier") {
		t.Errorf("NearestCentroid: got %v", err)
	}
	_, err = Load(context.Background(), "testdata/models/evil_os_system.pkl")
	if !errors.Is(err, runtime.ErrUnsupported) || !errors.Is(err, pickle.ErrForbidden) || !strings.Contains(err.Error(), "posix.system") {
		t.Errorf("os.system payload: got %v", err)
	}
	if _, err := Load(context.Background(), "testdata/models/missing.joblib"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v", err)
	}
	b, err := os.ReadFile("testdata/models/rfc.joblib")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 10, len(b) / 3, len(b) - 1} {
		if _, err := Read(context.Background(), bytes.NewReader(b[:n])); !errors.Is(err, runtime.ErrCorruptModel) {
			t.Errorf("truncated to %d bytes: got %v, want ErrCorruptModel", n, err)
		}
	}
	// A bare transformer is not a model.
	if _, err := FromObject(nil); !errors.Is(err, runtime.ErrCorruptModel) {
		t.Errorf("None: got %v", err)
	}
}

func TestRegistryDetects(t *testing.T) {
	reg := runtime.NewRegistry(Format)
	dir := t.TempDir()
	b, err := os.ReadFile("testdata/models/ridge.joblib")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/model.joblib", b, 0o644); err != nil {
		t.Fatal(err)
	}
	m, name, err := reg.Load(context.Background(), dir, "")
	if err != nil || name != "sklearn" {
		t.Fatalf("Load = %v, %q, %v", m, name, err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// A pickle can make objects that contain themselves; building must stop.
func TestSelfContainingPipeline(t *testing.T) {
	st := &pickle.Dict{}
	p := &pickle.Object{Class: pickle.Global{Module: "sklearn.pipeline", Name: "Pipeline"}, State: st}
	st.Keys = append(st.Keys, "steps")
	st.Values = append(st.Values, &pickle.List{Items: []any{pickle.Tuple{"again", p}}})
	if _, err := FromObject(p); !errors.Is(err, runtime.ErrCorruptModel) || !strings.Contains(err.Error(), "nested") {
		t.Fatalf("got %v, want a nesting error", err)
	}
}

// An ndarray whose BUILD never came is an error, not a nil dereference.
func TestArrayWithoutState(t *testing.T) {
	st := &pickle.Dict{
		Keys:   []any{"n_features_in_", "coef_", "intercept_"},
		Values: []any{int64(2), &pickle.Array{}, 0.5},
	}
	o := &pickle.Object{Class: pickle.Global{Module: "sklearn.linear_model._base", Name: "LinearRegression"}, State: st}
	if _, err := FromObject(o); !errors.Is(err, runtime.ErrCorruptModel) {
		t.Fatalf("got %v, want ErrCorruptModel", err)
	}
}

// Models are read-only after Load: concurrent Predicts agree (run with -race).
func TestConcurrentPredict(t *testing.T) {
	for _, name := range []string{"pipe_impute_std_rfc", "svc_proba_multi", "pipe_ct_drop_ridge", "hgbc_nan", "knnc_dist"} {
		m := load(t, name+".joblib")
		g := readGolden(t, name)
		outs := []string{"predict"}
		if m.est.clf != nil && m.est.clf.hasProba() {
			outs = append(outs, "predict_proba")
		}
		want, err := m.Predict(context.Background(), g.request(outs...))
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 8)
		for range 8 {
			go func() {
				res, err := m.Predict(context.Background(), g.request(outs...))
				if err == nil && !reflect.DeepEqual(res.Outputs, want.Outputs) {
					err = fmt.Errorf("%s: concurrent result differs", name)
				}
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	}
}

func TestFeatureNames(t *testing.T) {
	md := load(t, "ridge_named.joblib").Metadata()
	if got := md.Properties["feature_names_in_"]; got != "age,height,weight,income,score" {
		t.Errorf("feature_names_in_ = %q", got)
	}
	if got := md.Properties["estimator"]; got != "Ridge" {
		t.Errorf("estimator = %q", got)
	}
	if _, ok := load(t, "ridge.joblib").Metadata().Properties["feature_names_in_"]; ok {
		t.Error("feature_names_in_ reported for a model without names")
	}
}

// FP32 and integer inputs are widened to float64 as sklearn's check_array does.
func TestInputDatatypes(t *testing.T) {
	m := load(t, "linreg.joblib")
	g := readGolden(t, "linreg")
	want := g.Predict[0].(float64)
	row := make([]float32, 5)
	for j, v := range g.X[0] {
		row[j] = float32(v)
	}
	res, err := m.Predict(context.Background(), &runtime.Request{Inputs: []*tensor.Tensor{runtime.NewFP32("input-0", []int64{1, 5}, row)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Outputs[0].Data.([]float64)[0]; relErr(got, want) > 1e-5 {
		t.Errorf("FP32 input: predict = %v, want about %v", got, want)
	}
	ints := &tensor.Tensor{Name: "input-0", Datatype: tensor.Int64, Shape: []int64{1, 5}, Data: []int64{1, 2, 3, 4, 5}}
	if _, err := m.Predict(context.Background(), &runtime.Request{Inputs: []*tensor.Tensor{ints}}); err != nil {
		t.Errorf("INT64 input: %v", err)
	}
}

// Batches larger than one chunk give the same rows as single-row calls.
func TestLargeBatch(t *testing.T) {
	m := load(t, "pipe_std_logreg.joblib")
	g := readGolden(t, "pipe_std_logreg")
	rows := chunkRows*2 + 7
	x := make([]float64, 0, rows*5)
	for i := range rows {
		for _, v := range g.X[i%len(g.X)] {
			x = append(x, float64(v))
		}
	}
	req := &runtime.Request{
		Inputs:  []*tensor.Tensor{runtime.NewFP64("input-0", []int64{int64(rows), 5}, x)},
		Outputs: []string{"predict", "predict_proba", "decision_function"},
	}
	res, err := m.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	pred, proba := res.Outputs[0].Data.([]int64), res.Outputs[1].Data.([]float64)
	if len(pred) != rows || len(proba) != 2*rows || !slices.Equal(res.Outputs[2].Shape, []int64{int64(rows)}) {
		t.Fatalf("shapes: %d predictions, %d probabilities, decision %v", len(pred), len(proba), res.Outputs[2].Shape)
	}
	for i := range rows {
		k := i % len(g.X)
		if pred[i] != int64(g.Predict[k].(float64)) || relErr(proba[2*i+1], g.Proba[k][1]) > 1e-9 {
			t.Fatalf("row %d differs from golden row %d", i, k)
		}
	}
}

func TestZeroRows(t *testing.T) {
	m := load(t, "rfc.joblib")
	req := &runtime.Request{
		Inputs:  []*tensor.Tensor{runtime.NewFP64("input-0", []int64{0, 5}, []float64{})},
		Outputs: []string{"predict", "predict_proba"},
	}
	res, err := m.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Outputs[0].Shape, []int64{0}) || !slices.Equal(res.Outputs[1].Shape, []int64{0, 3}) {
		t.Fatalf("shapes %v, %v", res.Outputs[0].Shape, res.Outputs[1].Shape)
	}
}
