package pmml

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fr "github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, text string
		is         error
		msg        string
	}{
		{"unsupported model", "<PMML version=\"4.4\">\n<DataDictionary/>\n\n  <ClusteringModel functionName=\"clustering\"/>\n</PMML>",
			fr.ErrUnsupported, "<ClusteringModel> at line 4"},
		{"unknown element in tree", doc(treeFields, "\n<TreeModel functionName=\"classification\"><MiningSchema><MiningField name=\"x\"/></MiningSchema>\n<Node><True/><Node><Foo/></Node></Node></TreeModel>"),
			fr.ErrUnsupported, "<Foo> at line 5"},
		{"unsupported function", linear(`<DerivedField name="d"><Apply function="frobnicate"><FieldRef field="x"/></Apply></DerivedField>`, ""),
			fr.ErrUnsupported, "function frobnicate"},
		{"unsupported segmentation", strings.Replace(segDoc("selectAll"), "\n", "\n", 1), fr.ErrUnsupported, "multipleModelMethod selectAll"},
		{"truncated", "<PMML version=\"4.4\"><DataDictionary>", fr.ErrCorruptModel, ""},
		{"not xml", "hello", fr.ErrCorruptModel, ""},
		{"wrong root", "<Foo/>", fr.ErrCorruptModel, "root element"},
		{"no model", doc(numFields, ""), fr.ErrCorruptModel, "no model"},
		{"bad number", doc(numFields, `<RegressionModel functionName="regression"><MiningSchema><MiningField name="x"/></MiningSchema><RegressionTable intercept="abc"/></RegressionModel>`),
			fr.ErrCorruptModel, `intercept="abc"`},
		{"bad defaultChild", tree(`missingValueStrategy="defaultChild"`, `<Node defaultChild="9"><True/><Node id="1"><True/></Node></Node>`),
			fr.ErrCorruptModel, "defaultChild"},
		{"array count", tree(``, `<Node><True/><Node><SimpleSetPredicate field="c" booleanOperator="isIn"><Array n="3" type="string">a b</Array></SimpleSetPredicate></Node></Node>`),
			fr.ErrCorruptModel, "holds 2 items"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.text))
			if !errors.Is(err, c.is) {
				t.Fatalf("err = %v, want %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %q, want it to mention %q", err, c.msg)
			}
		})
	}
}

func segDoc(method string) string {
	return doc(numFields, `<MiningModel functionName="regression"><MiningSchema><MiningField name="x"/></MiningSchema><Segmentation multipleModelMethod="`+method+`"></Segmentation></MiningModel>`)
}

func TestFormatMatch(t *testing.T) {
	cases := []struct {
		name, head string
		want       bool
	}{
		{"model.pmml", "", true},
		{"MODEL.PMML", "", true},
		{"model.xml", `<?xml version="1.0"?><PMML version="4.1">`, true},
		{"model.xml", `<?xml version="1.0"?><onnx/>`, false},
		{"model.txt", `<PMML>`, false},
	}
	for _, c := range cases {
		if got := Format.Match(c.name, []byte(c.head)); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.name, c.head, got, c.want)
		}
	}
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "golden", "tree_iris_rpart", "model.pmml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "iris.xml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	m, name, err := fr.NewRegistry(Format).Load(context.Background(), dir, "")
	if err != nil || name != "pmml" {
		t.Fatalf("registry load: %v %q", err, name)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPredictTensors(t *testing.T) {
	m := loadGolden(t, "tree_audit_rpart")
	md := m.Metadata()
	if len(md.Inputs) != 8 || md.Inputs[0].Name != "Employment" || md.Inputs[0].Datatype != tensor.Bytes || md.Inputs[4].Name != "Income" || md.Inputs[4].Datatype != tensor.FP64 {
		t.Fatalf("metadata inputs = %+v", md.Inputs)
	}
	if len(md.Outputs) != 4 || md.Outputs[0].Name != "Predicted_Adjusted" || md.Outputs[0].Datatype != tensor.Bytes || md.Outputs[1].Datatype != tensor.FP64 {
		t.Fatalf("metadata outputs = %+v", md.Outputs)
	}
	recs := goldenRecords(t, "tree_audit_rpart")[:3]
	want, err := m.PredictRecords(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	var inputs []*tensor.Tensor
	for _, f := range m.ActiveFields() {
		col := make([]string, len(recs))
		for i, r := range recs {
			col[i] = r[f].(string)
		}
		if f == "Income" || f == "Deductions" || f == "Hours" {
			x := make([]float64, len(recs))
			for i, s := range col {
				x[i], _ = parseNumber(s)
			}
			inputs = append(inputs, fr.NewFP64(f, []int64{int64(len(recs)), 1}, x))
			continue
		}
		inputs = append(inputs, fr.NewBytes(f, []int64{int64(len(recs))}, col))
	}
	res, err := m.Predict(t.Context(), &fr.Request{Inputs: inputs})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 4 {
		t.Fatalf("%d outputs, want 4", len(res.Outputs))
	}
	cls := res.Outputs[0].Data.([][]byte)
	p0 := res.Outputs[1].Data.([]float64)
	for i := range recs {
		if string(cls[i]) != want[i]["Predicted_Adjusted"] || p0[i] != want[i]["Probability_0"] {
			t.Errorf("row %d: tensors (%s, %v) != records %v", i, cls[i], p0[i], want[i])
		}
	}
	// Only the requested output comes back.
	res, err = m.Predict(t.Context(), &fr.Request{Inputs: inputs, Outputs: []string{"Probability_1"}})
	if err != nil || len(res.Outputs) != 1 || res.Outputs[0].Name != "Probability_1" {
		t.Fatalf("requested output: %v %+v", err, res)
	}
	if _, err := m.Predict(t.Context(), &fr.Request{Inputs: inputs, Outputs: []string{"nope"}}); !errors.Is(err, fr.ErrInvalidInput) {
		t.Fatalf("unknown output: err = %v", err)
	}
}

func TestPredictRowMajor(t *testing.T) {
	m := loadGolden(t, "regression_ozone_lm")
	recs := goldenRecords(t, "regression_ozone_lm")[:4]
	want, err := m.PredictRecords(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, 0, 12)
	for _, r := range recs {
		for _, f := range m.ActiveFields() {
			v, _ := parseNumber(r[f].(string))
			x = append(x, v)
		}
	}
	res, err := m.Predict(t.Context(), &fr.Request{Inputs: []*tensor.Tensor{fr.NewFP64("input-0", []int64{4, 3}, x)}})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Outputs[0].Data.([]float64)
	for i := range recs {
		if got[i] != want[i]["Predicted_O3"] {
			t.Errorf("row %d: %v != %v", i, got[i], want[i])
		}
	}
	bad := []*fr.Request{
		{Inputs: []*tensor.Tensor{fr.NewFP64("input-0", []int64{4, 2}, x[:8])}},
		{Inputs: []*tensor.Tensor{fr.NewBytes("input-0", []int64{1, 3}, []string{"a", "b", "c"})}},
		{Inputs: []*tensor.Tensor{fr.NewFP64("temp", []int64{2}, x[:2]), fr.NewFP64("ibh", []int64{3}, x[:3])}},
		{},
	}
	for i, r := range bad {
		if _, err := m.Predict(t.Context(), r); !errors.Is(err, fr.ErrInvalidInput) {
			t.Errorf("bad request %d: err = %v, want invalid input", i, err)
		}
	}
}

func TestPredictRecordsNoOutput(t *testing.T) {
	m := loadGolden(t, "tree_dmg_weighted_confidence")
	out := predictOne(t, m, map[string]any{"temperature": 45.0, "humidity": 60.0, "outlook": "sunny"})
	if len(out) != 1 || out["whatIdo"] != "no play" {
		t.Fatalf("got %v, want whatIdo=no play", out)
	}
	if names := m.OutputNames(); len(names) != 1 || names[0] != "whatIdo" {
		t.Fatalf("OutputNames = %v", names)
	}
	res, err := m.Predict(t.Context(), &fr.Request{Inputs: []*tensor.Tensor{
		fr.NewFP64("temperature", []int64{1}, []float64{45}), fr.NewFP64("humidity", []int64{1}, []float64{60}),
		fr.NewBytes("outlook", []int64{1}, []string{"sunny"}),
	}})
	if err != nil || res.Outputs[0].Name != "predict" || string(res.Outputs[0].Data.([][]byte)[0]) != "no play" {
		t.Fatalf("V2 predict: %v %+v", err, res)
	}
	// A field left out of the tensors is missing.
	res, err = m.Predict(t.Context(), &fr.Request{Inputs: []*tensor.Tensor{fr.NewBytes("outlook", []int64{1}, []string{"sunny"})}})
	if err != nil || string(res.Outputs[0].Data.([][]byte)[0]) != "will play" {
		t.Fatalf("V2 predict with missing fields: %v %+v", err, res)
	}
}

func TestPredictCancelled(t *testing.T) {
	m := loadGolden(t, "regression_ozone_lm")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.PredictRecords(ctx, goldenRecords(t, "regression_ozone_lm")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestLatin1Document(t *testing.T) {
	text := "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n" + doc(`<DataField name="x" optype="continuous" dataType="double"/><DataField name="caf`+"\xe9"+`" optype="continuous" dataType="double"/>`,
		`<RegressionModel functionName="regression"><MiningSchema><MiningField name="x"/><MiningField name="caf`+"\xe9"+`" usageType="target"/></MiningSchema><RegressionTable intercept="1"/></RegressionModel>`)
	m, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := predictOne(t, m, map[string]any{"x": 1.0}); got["café"] != 1.0 {
		t.Fatalf("got %v, want café=1", got)
	}
}
