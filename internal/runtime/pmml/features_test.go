package pmml

import (
	"errors"
	"math"
	"strings"
	"testing"

	fr "github.com/ferryserve/ferry/internal/runtime"
)

// doc wraps a DataDictionary body and the rest of a document in <PMML>.
func doc(fields, rest string) string {
	return `<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><DataDictionary>` + fields + `</DataDictionary>` + rest + `</PMML>`
}

const numFields = `<DataField name="x" optype="continuous" dataType="double"/>
<DataField name="c" optype="categorical" dataType="string"><Value value="a"/><Value value="b"/><Value value="z"/></DataField>
<DataField name="y" optype="continuous" dataType="double"/>`

// linear returns a regression document whose prediction is the derived
// field "d" (y = 1 * d), with extra TransformationDictionary content.
func linear(td, mining string) string {
	if mining == "" {
		mining = `<MiningField name="x"/><MiningField name="c"/>`
	}
	return doc(numFields, `<TransformationDictionary>`+td+`</TransformationDictionary>
<RegressionModel functionName="regression"><MiningSchema>`+mining+`<MiningField name="y" usageType="target"/></MiningSchema>
<RegressionTable intercept="0"><NumericPredictor name="d" coefficient="1"/></RegressionTable></RegressionModel>`)
}

func mustParse(t *testing.T, text string) *Model {
	t.Helper()
	m, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return m
}

func predictOne(t *testing.T, m *Model, rec map[string]any) map[string]any {
	t.Helper()
	out, err := m.PredictRecords(t.Context(), []map[string]any{rec})
	if err != nil {
		t.Fatalf("predict %v: %v", rec, err)
	}
	return out[0]
}

func TestTransformations(t *testing.T) {
	cases := []struct {
		name string
		td   string
		rec  map[string]any
		want any // float64, or nil for a missing prediction
	}{
		{"normContinuous inside", `<DerivedField name="d" dataType="double" optype="continuous"><NormContinuous field="x"><LinearNorm orig="0" norm="0"/><LinearNorm orig="10" norm="1"/><LinearNorm orig="20" norm="3"/></NormContinuous></DerivedField>`,
			map[string]any{"x": 15.0}, 2.0},
		{"normContinuous extrapolates", `<DerivedField name="d" dataType="double" optype="continuous"><NormContinuous field="x"><LinearNorm orig="0" norm="0"/><LinearNorm orig="10" norm="1"/></NormContinuous></DerivedField>`,
			map[string]any{"x": 30.0}, 3.0},
		{"normContinuous asExtremeValues", `<DerivedField name="d" dataType="double" optype="continuous"><NormContinuous field="x" outliers="asExtremeValues"><LinearNorm orig="0" norm="0"/><LinearNorm orig="10" norm="1"/></NormContinuous></DerivedField>`,
			map[string]any{"x": -5.0}, 0.0},
		{"normContinuous mapMissingTo", `<DerivedField name="d" dataType="double" optype="continuous"><NormContinuous field="x" mapMissingTo="7"><LinearNorm orig="0" norm="0"/><LinearNorm orig="10" norm="1"/></NormContinuous></DerivedField>`,
			map[string]any{"x": nil}, 7.0},
		{"normDiscrete", `<DerivedField name="d" dataType="double" optype="continuous"><NormDiscrete field="c" value="b"/></DerivedField>`,
			map[string]any{"c": "b"}, 1.0},
		{"discretize", `<DerivedField name="k" dataType="string" optype="categorical"><Discretize field="x" defaultValue="none"><DiscretizeBin binValue="low"><Interval closure="openClosed" rightMargin="1"/></DiscretizeBin><DiscretizeBin binValue="high"><Interval closure="openOpen" leftMargin="1"/></DiscretizeBin></Discretize></DerivedField>
			<DerivedField name="d" dataType="double"><NormDiscrete field="k" value="high"/></DerivedField>`,
			map[string]any{"x": 1.5}, 1.0},
		{"discretize closed edge", `<DerivedField name="k" dataType="string" optype="categorical"><Discretize field="x"><DiscretizeBin binValue="low"><Interval closure="openClosed" rightMargin="1"/></DiscretizeBin><DiscretizeBin binValue="high"><Interval closure="openOpen" leftMargin="1"/></DiscretizeBin></Discretize></DerivedField>
			<DerivedField name="d" dataType="double"><NormDiscrete field="k" value="low"/></DerivedField>`,
			map[string]any{"x": 1.0}, 1.0},
		{"mapValues", `<DerivedField name="d" dataType="double" optype="continuous"><MapValues outputColumn="out" dataType="double" defaultValue="-1"><FieldColumnPair field="c" column="in"/><InlineTable><row><in>a</in><out>10</out></row><row><in>b</in><out>20</out></row></InlineTable></MapValues></DerivedField>`,
			map[string]any{"c": "b"}, 20.0},
		{"mapValues default", `<DerivedField name="d" dataType="double" optype="continuous"><MapValues outputColumn="out" dataType="double" defaultValue="-1"><FieldColumnPair field="c" column="in"/><InlineTable><row><in>a</in><out>10</out></row></InlineTable></MapValues></DerivedField>`,
			map[string]any{"c": "z"}, -1.0},
		{"apply arithmetic", `<DerivedField name="d" dataType="double"><Apply function="+"><Apply function="*"><FieldRef field="x"/><Constant>3</Constant></Apply><Apply function="pow"><Constant>2</Constant><Constant>3</Constant></Apply></Apply></DerivedField>`,
			map[string]any{"x": 2.0}, 14.0},
		{"apply if and comparisons", `<DerivedField name="d" dataType="double"><Apply function="if"><Apply function="and"><Apply function="greaterThan"><FieldRef field="x"/><Constant>1</Constant></Apply><Apply function="equal"><FieldRef field="c"/><Constant dataType="string">a</Constant></Apply></Apply><Constant>1</Constant><Constant>0</Constant></Apply></DerivedField>`,
			map[string]any{"x": 2.0, "c": "a"}, 1.0},
		{"apply isMissing", `<DerivedField name="d" dataType="double"><Apply function="if"><Apply function="isMissing"><FieldRef field="x"/></Apply><Constant>5</Constant><FieldRef field="x"/></Apply></DerivedField>`,
			map[string]any{"x": nil}, 5.0},
		{"apply missing propagates", `<DerivedField name="d" dataType="double"><Apply function="ln"><FieldRef field="x"/></Apply></DerivedField>`,
			map[string]any{"x": nil}, nil},
		{"apply mapMissingTo", `<DerivedField name="d" dataType="double"><Apply function="exp" mapMissingTo="0.5"><FieldRef field="x"/></Apply></DerivedField>`,
			map[string]any{"x": nil}, 0.5},
		{"apply aggregates skip missing", `<DerivedField name="d" dataType="double"><Apply function="avg"><FieldRef field="x"/><Constant>4</Constant><Constant>8</Constant></Apply></DerivedField>`,
			map[string]any{"x": nil}, 6.0},
		{"apply strings", `<DerivedField name="s" dataType="string"><Apply function="concat"><Apply function="uppercase"><FieldRef field="c"/></Apply><Apply function="substring"><Constant dataType="string">xyz</Constant><Constant>2</Constant><Constant>1</Constant></Apply></Apply></DerivedField>
			<DerivedField name="d" dataType="double"><NormDiscrete field="s" value="By"/></DerivedField>`,
			map[string]any{"c": "b"}, 1.0},
		{"define function", `<DefineFunction name="twice" optype="continuous" dataType="double"><ParameterField name="v"/><Apply function="*"><FieldRef field="v"/><Constant>2</Constant></Apply></DefineFunction>
			<DerivedField name="d" dataType="double"><Apply function="twice"><FieldRef field="x"/></Apply></DerivedField>`,
			map[string]any{"x": 4.5}, 9.0},
		{"recursive function is missing", `<DefineFunction name="f" dataType="double"><ParameterField name="v"/><Apply function="+"><Apply function="f"><FieldRef field="v"/></Apply><Apply function="f"><FieldRef field="v"/></Apply></Apply></DefineFunction>
			<DerivedField name="d" dataType="double"><Apply function="f"><FieldRef field="x"/></Apply></DerivedField>`,
			map[string]any{"x": 1.0}, nil},
		{"self reference is missing", `<DerivedField name="d" dataType="double"><Apply function="+"><FieldRef field="d"/><Constant>1</Constant></Apply></DerivedField>`,
			map[string]any{"x": 1.0}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mustParse(t, linear(c.td, ""))
			got := predictOne(t, m, c.rec)["y"]
			if c.want == nil {
				if got != nil {
					t.Fatalf("got %v, want null", got)
				}
				return
			}
			g, ok := got.(float64)
			if !ok || math.Abs(g-c.want.(float64)) > 1e-12 {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestMiningSchemaTreatments(t *testing.T) {
	td := `<DerivedField name="d" dataType="double"><FieldRef field="x"/></DerivedField>`
	cases := []struct {
		name, mining string
		x            any
		want         any
		err          error
	}{
		{"replacement", `<MiningField name="x" missingValueReplacement="3.5"/>`, nil, 3.5, nil},
		{"missing asIs", `<MiningField name="x"/>`, nil, nil, nil},
		{"returnInvalid missing", `<MiningField name="x" missingValueTreatment="returnInvalid"/>`, nil, nil, fr.ErrInvalidInput},
		{"outliers asExtremeValues", `<MiningField name="x" outliers="asExtremeValues" lowValue="0" highValue="10"/>`, 12.0, 10.0, nil},
		{"outliers asMissingValues", `<MiningField name="x" outliers="asMissingValues" lowValue="0" highValue="10" missingValueReplacement="1"/>`, -3.0, 1.0, nil},
		{"invalid returnInvalid", `<MiningField name="x"/>`, "abc", nil, fr.ErrInvalidInput},
		{"invalid asMissing", `<MiningField name="x" invalidValueTreatment="asMissing" missingValueReplacement="2"/>`, "abc", 2.0, nil},
		{"string number", `<MiningField name="x"/>`, "4.25", 4.25, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mustParse(t, linear(td, c.mining))
			out, err := m.PredictRecords(t.Context(), []map[string]any{{"x": c.x}})
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out[0]["y"] != c.want {
				t.Fatalf("got %v, want %v", out[0]["y"], c.want)
			}
		})
	}
}

func TestInvalidCategory(t *testing.T) {
	td := `<DerivedField name="d" dataType="double"><NormDiscrete field="c" value="a"/></DerivedField>`
	m := mustParse(t, linear(td, `<MiningField name="c"/>`))
	if _, err := m.PredictRecords(t.Context(), []map[string]any{{"c": "q"}}); !errors.Is(err, fr.ErrInvalidInput) || !strings.Contains(err.Error(), `"c"`) {
		t.Fatalf("err = %v, want invalid input naming field c", err)
	}
	m = mustParse(t, linear(td, `<MiningField name="c" invalidValueTreatment="asIs"/>`))
	if got := predictOne(t, m, map[string]any{"c": "q"})["y"]; got != 0.0 {
		t.Fatalf("asIs: got %v, want 0", got)
	}
}

const treeFields = `<DataField name="x" optype="continuous" dataType="double"/>
<DataField name="c" optype="categorical" dataType="string"><Value value="a"/><Value value="b"/><Value value="z"/></DataField>
<DataField name="t" optype="categorical" dataType="string"><Value value="yes"/><Value value="no"/></DataField>`

func tree(attrs, nodes string) string {
	return doc(treeFields, `<TreeModel functionName="classification" `+attrs+`><MiningSchema><MiningField name="x"/><MiningField name="c"/><MiningField name="t" usageType="target"/></MiningSchema>
<Output><OutputField name="p" feature="predictedValue"/><OutputField name="conf" feature="confidence"/><OutputField name="node" feature="entityId"/></Output>`+nodes+`</TreeModel>`)
}

const treeNodes = `<Node id="root" score="yes"><True/>
 <ScoreDistribution value="yes" recordCount="6"/><ScoreDistribution value="no" recordCount="4"/>
 <Node id="n1" score="no"><SimpleSetPredicate field="c" booleanOperator="isIn"><Array type="string" n="2">a "b"</Array></SimpleSetPredicate>
  <Node id="n3" score="yes"><SimplePredicate field="x" operator="lessThan" value="5"/></Node>
  <Node id="n4" score="no"><CompoundPredicate booleanOperator="xor"><SimplePredicate field="x" operator="greaterOrEqual" value="5"/><SimplePredicate field="x" operator="greaterThan" value="100"/></CompoundPredicate></Node>
 </Node>
 <Node id="n2" score="no"><SimplePredicate field="c" operator="equal" value="z"/></Node>
</Node>`

func TestTreeStrategies(t *testing.T) {
	cases := []struct {
		name, attrs string
		rec         map[string]any
		want, node  any
	}{
		{"plain", ``, map[string]any{"x": 1.0, "c": "a"}, "yes", "n3"},
		{"set predicate quoted item", ``, map[string]any{"x": 9.0, "c": "b"}, "no", "n4"},
		{"xor both true", ``, map[string]any{"x": 200.0, "c": "b"}, nil, nil},
		{"xor both true, last prediction", `noTrueChildStrategy="returnLastPrediction"`, map[string]any{"x": 200.0, "c": "b"}, "no", "n1"},
		{"none: unknown is false", ``, map[string]any{"x": nil, "c": "a"}, nil, nil},
		{"lastPrediction", `missingValueStrategy="lastPrediction"`, map[string]any{"x": nil, "c": "a"}, "no", "n1"},
		{"nullPrediction", `missingValueStrategy="nullPrediction"`, map[string]any{"x": 1.0, "c": nil}, nil, nil},
		{"lastPrediction at root", `missingValueStrategy="lastPrediction"`, map[string]any{"x": 1.0, "c": nil}, "yes", "root"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mustParse(t, tree(c.attrs, treeNodes))
			out := predictOne(t, m, c.rec)
			if out["p"] != c.want || out["node"] != c.node {
				t.Fatalf("got %v at %v, want %v at %v", out["p"], out["node"], c.want, c.node)
			}
		})
	}
	m := mustParse(t, tree(`missingValueStrategy="lastPrediction"`, treeNodes))
	if got := predictOne(t, m, map[string]any{"x": 1.0, "c": nil})["conf"]; got != 0.6 {
		t.Fatalf("confidence from record counts = %v, want 0.6", got)
	}
}

func TestRegressionNormalizations(t *testing.T) {
	x := 0.3
	cases := map[string]float64{
		"none":    x,
		"logit":   1 / (1 + math.Exp(-x)),
		"exp":     math.Exp(x),
		"probit":  0.5 * (1 + math.Erf(x/math.Sqrt2)),
		"cloglog": 1 - math.Exp(-math.Exp(x)),
		"loglog":  math.Exp(-math.Exp(-x)),
		"cauchit": 0.5 + math.Atan(x)/math.Pi,
	}
	for norm, want := range cases {
		m := mustParse(t, doc(numFields, `<RegressionModel functionName="regression" normalizationMethod="`+norm+`"><MiningSchema><MiningField name="x"/><MiningField name="c"/><MiningField name="y" usageType="target"/></MiningSchema>
<RegressionTable intercept="0.1"><NumericPredictor name="x" coefficient="2" exponent="2"/><CategoricalPredictor name="c" value="a" coefficient="0.02"/><CategoricalPredictor name="c" value="b" coefficient="5"/></RegressionTable></RegressionModel>`))
		// 0.1 + 2*0.3^2 ... is not 0.3, so feed x where 0.1+2x^2+0.02 = 0.3.
		xv := math.Sqrt((0.3 - 0.12) / 2)
		got := predictOne(t, m, map[string]any{"x": xv, "c": "a"})["y"].(float64)
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: got %.15g, want %.15g", norm, got, want)
		}
	}
}

func TestTargetsRescale(t *testing.T) {
	m := mustParse(t, doc(numFields, `<RegressionModel functionName="regression"><MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
<Targets><Target field="y" rescaleFactor="10" rescaleConstant="0.5" max="3" castInteger="round"/></Targets>
<RegressionTable intercept="0"><NumericPredictor name="x" coefficient="1"/></RegressionTable></RegressionModel>`))
	for _, c := range [][2]float64{{0.1, 2}, {0.12, 2}, {0.16, 2}, {5, 31}, {-0.2, -1}} {
		if got := predictOne(t, m, map[string]any{"x": c[0]})["y"]; got != c[1] {
			t.Errorf("x=%v: got %v, want %v", c[0], got, c[1])
		}
	}
}

func TestSegmentation(t *testing.T) {
	seg := func(pred, w, k string) string {
		return pred + "|" + w + `|<RegressionModel functionName="regression"><MiningSchema><MiningField name="x"/></MiningSchema><RegressionTable intercept="0"><NumericPredictor name="x" coefficient="` + k + `"/></RegressionTable></RegressionModel>`
	}
	parse := func(s string) (string, string, string) {
		p, rest, _ := strings.Cut(s, "|")
		w, body, _ := strings.Cut(rest, "|")
		return p, w, body
	}
	build := func(method, fn string, segs ...string) string {
		var b strings.Builder
		for _, s := range segs {
			p, w, body := parse(s)
			b.WriteString(`<Segment weight="` + w + `">` + p + body + `</Segment>`)
		}
		fields, target := numFields, `<MiningField name="y" usageType="target"/>`
		if fn == "classification" {
			fields, target = treeFields, `<MiningField name="t" usageType="target"/>`
		}
		return doc(fields, `<MiningModel functionName="`+fn+`"><MiningSchema><MiningField name="x"/><MiningField name="c"/>`+target+`</MiningSchema>
<Output><OutputField name="p" feature="predictedValue"/><OutputField name="pyes" feature="probability" value="yes"/></Output>
<Segmentation multipleModelMethod="`+method+`">`+b.String()+`</Segmentation></MiningModel>`)
	}
	never := `<False/>`
	always := `<True/>`
	reg := []struct {
		method string
		want   float64
	}{
		{"sum", 2 + 3 + 7}, {"average", 4}, {"weightedAverage", (1*2 + 2*3 + 1*7) / 4.0}, {"median", 3}, {"max", 7},
	}
	for _, c := range reg {
		m := mustParse(t, build(c.method, "regression", seg(always, "1", "2"), seg(always, "2", "3"), seg(always, "1", "7"), seg(never, "9", "100")))
		if got := predictOne(t, m, map[string]any{"x": 1.0})["p"]; got != c.want {
			t.Errorf("%s: got %v, want %v", c.method, got, c.want)
		}
	}
	m := mustParse(t, build("selectFirst", "regression", seg(`<SimplePredicate field="c" operator="equal" value="b"/>`, "1", "2"), seg(always, "1", "3")))
	if got := predictOne(t, m, map[string]any{"x": 1.0, "c": "a"})["p"]; got != 3.0 {
		t.Errorf("selectFirst: got %v, want 3", got)
	}
	vote := func(w, class string) string {
		return always + "|" + w + `|<TreeModel functionName="classification"><MiningSchema><MiningField name="x"/></MiningSchema><Node score="` + class + `"><True/></Node></TreeModel>`
	}
	m = mustParse(t, build("majorityVote", "classification", vote("1", "yes"), vote("5", "no"), vote("1", "yes")))
	if out := predictOne(t, m, map[string]any{"x": 1.0}); out["p"] != "yes" || math.Abs(out["pyes"].(float64)-2.0/3) > 1e-15 {
		t.Errorf("majorityVote: got %v", out)
	}
	m = mustParse(t, build("weightedMajorityVote", "classification", vote("1", "yes"), vote("5", "no"), vote("1", "yes")))
	if out := predictOne(t, m, map[string]any{"x": 1.0}); out["p"] != "no" || math.Abs(out["pyes"].(float64)-2.0/7) > 1e-15 {
		t.Errorf("weightedMajorityVote: got %v", out)
	}
}

func TestScorecardNoMatch(t *testing.T) {
	m := mustParse(t, doc(numFields, `<Scorecard functionName="regression" useReasonCodes="false"><MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
<Characteristics><Characteristic name="cx"><Attribute partialScore="1"><SimplePredicate field="x" operator="lessThan" value="0"/></Attribute></Characteristic></Characteristics></Scorecard>`))
	if _, err := m.PredictRecords(t.Context(), []map[string]any{{"x": 1.0}}); !errors.Is(err, fr.ErrInvalidInput) {
		t.Fatalf("err = %v, want invalid input", err)
	}
	if got := predictOne(t, m, map[string]any{"x": -1.0})["y"]; got != 1.0 {
		t.Fatalf("got %v, want 1", got)
	}
}

func TestDerivedActiveField(t *testing.T) {
	// sklearn2pmml-style: the model lists a TransformationDictionary field
	// in its MiningSchema; callers still send only x.
	td := `<DerivedField name="d" dataType="double"><Apply function="*"><FieldRef field="x"/><Constant>2</Constant></Apply></DerivedField>`
	m := mustParse(t, linear(td, `<MiningField name="x"/><MiningField name="d"/>`))
	if got := m.ActiveFields(); len(got) != 1 || got[0] != "x" {
		t.Fatalf("ActiveFields = %v, want [x]", got)
	}
	if got := predictOne(t, m, map[string]any{"x": 1.5})["y"]; got != 3.0 {
		t.Fatalf("got %v, want 3", got)
	}
}

func TestFloatFieldsCompareInSinglePrecision(t *testing.T) {
	text := doc(`<DataField name="x" optype="continuous" dataType="float"/><DataField name="t" optype="categorical" dataType="string"/>`,
		`<TreeModel functionName="classification"><MiningSchema><MiningField name="x"/><MiningField name="t" usageType="target"/></MiningSchema>
<Node score="root"><True/><Node score="low"><SimplePredicate field="x" operator="lessThan" value="0.1000000002"/></Node><Node score="high"><True/></Node></Node></TreeModel>`)
	m := mustParse(t, text)
	// In double precision 0.1000000001 < 0.1000000002; both round to the
	// same float32, so a float field is not less.
	if got := predictOne(t, m, map[string]any{"x": 0.1000000001})["t"]; got != "high" {
		t.Fatalf("got %v, want high", got)
	}
	if got := predictOne(t, m, map[string]any{"x": 0.09})["t"]; got != "low" {
		t.Fatalf("got %v, want low", got)
	}
}

func TestConcurrentPredict(t *testing.T) {
	m := loadGolden(t, "rf_iris_randomforest_vote")
	recs := goldenRecords(t, "rf_iris_randomforest_vote")
	want, err := m.PredictRecords(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			got, err := m.PredictRecords(t.Context(), recs)
			if err == nil {
				for i := range got {
					if got[i]["Predicted_Species"] != want[i]["Predicted_Species"] {
						err = errors.New("prediction changed under concurrency")
					}
				}
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
