package pmml

import (
	"math"
	"testing"
)

// Hand-written documents for model paths the golden fixtures do not
// reach; each expected value is worked out in the test from the
// document's own numbers.

func near(t *testing.T, what string, got any, want float64) {
	t.Helper()
	g, ok := got.(float64)
	if !ok || math.Abs(g-want) > 1e-12*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %.15g", what, got, want)
	}
}

func TestNeuralRegression(t *testing.T) {
	m := mustParse(t, doc(numFields, `<NeuralNetwork functionName="regression" activationFunction="tanh">
<MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
<NeuralInputs><NeuralInput id="0"><DerivedField dataType="double" optype="continuous"><NormContinuous field="x"><LinearNorm orig="0" norm="-1"/><LinearNorm orig="10" norm="1"/></NormContinuous></DerivedField></NeuralInput></NeuralInputs>
<NeuralLayer><Neuron id="1" bias="0.5"><Con from="0" weight="2"/></Neuron><Neuron id="2" bias="-0.25"><Con from="0" weight="-1"/></Neuron></NeuralLayer>
<NeuralLayer activationFunction="identity"><Neuron id="3" bias="0.1"><Con from="1" weight="1.5"/><Con from="2" weight="0.5"/></Neuron></NeuralLayer>
<NeuralOutputs><NeuralOutput outputNeuron="3"><DerivedField dataType="double" optype="continuous"><NormContinuous field="y"><LinearNorm orig="0" norm="0"/><LinearNorm orig="100" norm="1"/></NormContinuous></DerivedField></NeuralOutput></NeuralOutputs>
</NeuralNetwork>`))
	in := 7.0/10*2 - 1
	h1, h2 := math.Tanh(0.5+2*in), math.Tanh(-0.25-in)
	out := 0.1 + 1.5*h1 + 0.5*h2
	near(t, "y", predictOne(t, m, map[string]any{"x": 7.0})["y"], out*100)
}

func TestSVMRegressionAndOneAgainstAll(t *testing.T) {
	vd := `<VectorDictionary><VectorFields><FieldRef field="x"/><FieldRef field="y"/></VectorFields>
<VectorInstance id="a"><Array type="real" n="2">1 2</Array></VectorInstance>
<VectorInstance id="b"><REAL-SparseArray n="2"><Indices>2</Indices><REAL-Entries>-1</REAL-Entries></REAL-SparseArray></VectorInstance></VectorDictionary>`
	machine := func(target, b, ca, cb string) string {
		return `<SupportVectorMachine targetCategory="` + target + `"><SupportVectors><SupportVector vectorId="a"/><SupportVector vectorId="b"/></SupportVectors><Coefficients absoluteValue="` + b + `"><Coefficient value="` + ca + `"/><Coefficient value="` + cb + `"/></Coefficients></SupportVectorMachine>`
	}
	fields := `<DataField name="x" optype="continuous" dataType="double"/><DataField name="y" optype="continuous" dataType="double"/>
<DataField name="r" optype="continuous" dataType="double"/><DataField name="t" optype="categorical" dataType="string"><Value value="p"/><Value value="q"/></DataField>`
	m := mustParse(t, doc(fields, `<SupportVectorMachineModel functionName="regression"><MiningSchema><MiningField name="x"/><MiningField name="y"/><MiningField name="r" usageType="target"/></MiningSchema>
<PolynomialKernelType gamma="0.5" coef0="1" degree="2"/>`+vd+machine("", "0.3", "2", "-1")+`</SupportVectorMachineModel>`))
	k := func(a, b [2]float64) float64 { return math.Pow(0.5*(a[0]*b[0]+a[1]*b[1])+1, 2) }
	x := [2]float64{0.5, 3}
	want := 0.3 + 2*k(x, [2]float64{1, 2}) - 1*k(x, [2]float64{0, -1})
	near(t, "r", predictOne(t, m, map[string]any{"x": 0.5, "y": 3.0})["r"], want)

	m = mustParse(t, doc(fields, `<SupportVectorMachineModel functionName="classification" classificationMethod="OneAgainstAll"><MiningSchema><MiningField name="x"/><MiningField name="y"/><MiningField name="t" usageType="target"/></MiningSchema>
<LinearKernelType/>`+vd+machine("p", "0", "1", "0")+machine("q", "0", "0", "1")+`</SupportVectorMachineModel>`))
	// p scores x·a = x+2y, q scores x·b = -y; the smallest wins.
	if got := predictOne(t, m, map[string]any{"x": 1.0, "y": 1.0})["t"]; got != "q" {
		t.Errorf("OneAgainstAll: got %v, want q", got)
	}
	if got := predictOne(t, m, map[string]any{"x": -5.0, "y": 1.0})["t"]; got != "p" {
		t.Errorf("OneAgainstAll: got %v, want p", got)
	}
}

func glmDoc(attrs, target, body string) string {
	fields := `<DataField name="x" optype="continuous" dataType="double"/><DataField name="c" optype="categorical" dataType="string"><Value value="a"/><Value value="b"/></DataField>
<DataField name="y" optype="continuous" dataType="double"/><DataField name="t" optype="categorical" dataType="string"><Value value="lo"/><Value value="mid"/><Value value="hi"/></DataField>`
	return doc(fields, `<GeneralRegressionModel `+attrs+`><MiningSchema><MiningField name="x"/><MiningField name="c"/><MiningField name="`+target+`" usageType="target"/></MiningSchema>
<ParameterList><Parameter name="p0"/><Parameter name="p1"/><Parameter name="p2"/><Parameter name="p3"/></ParameterList>
<FactorList><Predictor name="c"/></FactorList><CovariateList><Predictor name="x"/></CovariateList>
<PPMatrix><PPCell value="b" predictorName="c" parameterName="p1"/><PPCell value="2" predictorName="x" parameterName="p2"/><PPCell value="1" predictorName="x" parameterName="p3"/><PPCell value="b" predictorName="c" parameterName="p3"/></PPMatrix>
<ParamMatrix>`+body+`</ParamMatrix></GeneralRegressionModel>`)
}

func TestGeneralRegression(t *testing.T) {
	x := 1.5
	// eta = b0 + b1*[c=b] + b2*x^2 + b3*x*[c=b]
	eta := func(b [4]float64, cb bool) float64 {
		i := 0.0
		if cb {
			i = 1
		}
		return b[0] + b[1]*i + b[2]*x*x + b[3]*x*i
	}
	cells := func(cat string, b [4]float64) string {
		out := ""
		for i, v := range b {
			out += `<PCell parameterName="p` + formatNumber(float64(i)) + `" targetCategory="` + cat + `" beta="` + formatNumber(v) + `"/>`
		}
		return out
	}
	b := [4]float64{0.5, -1, 0.25, 2}
	m := mustParse(t, glmDoc(`modelType="regression" functionName="regression"`, "y", cells("", b)))
	near(t, "regression", predictOne(t, m, map[string]any{"x": x, "c": "b"})["y"], eta(b, true))

	m = mustParse(t, glmDoc(`modelType="generalizedLinear" linkFunction="log" functionName="regression" offsetValue="0.1"`, "y", cells("", b)))
	near(t, "log link", predictOne(t, m, map[string]any{"x": x, "c": "a"})["y"], math.Exp(eta(b, false)+0.1))

	b2 := [4]float64{-0.5, 0.75, 0.1, -0.2}
	m = mustParse(t, glmDoc(`modelType="multinomialLogistic" functionName="classification"`, "t", cells("lo", b)+cells("mid", b2)))
	out := predictOne(t, m, map[string]any{"x": x, "c": "b"})
	e1, e2 := math.Exp(eta(b, true)), math.Exp(eta(b2, true))
	if out["t"] != "lo" {
		t.Errorf("multinomial: got %v, want lo", out["t"])
	}
	sc, err := m.score([]value{numValue(x), strValue("b")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "P(hi)", sc.res.probs["hi"], 1/(1+e1+e2))
	near(t, "P(lo)", sc.res.probs["lo"], e1/(1+e1+e2))

	// Ordinal: cumulative logit with per-category intercepts.
	ord := `<PCell parameterName="p0" targetCategory="lo" beta="-1"/><PCell parameterName="p0" targetCategory="mid" beta="1"/><PCell parameterName="p2" beta="0.3"/>`
	m = mustParse(t, glmDoc(`modelType="ordinalMultinomial" cumulativeLink="logit" functionName="classification"`, "t", ord))
	sc, err = m.score([]value{numValue(x), strValue("a")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lg := func(z float64) float64 { return 1 / (1 + math.Exp(-z)) }
	// The covariate beta has no targetCategory, so it applies to every
	// category's linear predictor.
	c1, c2 := lg(-1+0.3*x*x), lg(1+0.3*x*x)
	near(t, "P(lo)", sc.res.probs["lo"], c1)
	near(t, "P(mid)", sc.res.probs["mid"], c2-c1)
	near(t, "P(hi)", sc.res.probs["hi"], 1-c2)
}

func TestScorecardPointsAbove(t *testing.T) {
	m := mustParse(t, doc(numFields, `<Scorecard functionName="regression" reasonCodeAlgorithm="pointsAbove" baselineScore="5" initialScore="100">
<MiningSchema><MiningField name="x"/><MiningField name="c"/><MiningField name="y" usageType="target"/></MiningSchema>
<Output><OutputField name="score" feature="predictedValue"/><OutputField name="rc1" feature="reasonCode" rank="1"/><OutputField name="rc2" feature="reasonCode" rank="2"/></Output>
<Characteristics>
<Characteristic name="cx" reasonCode="X"><Attribute partialScore="9"><SimplePredicate field="x" operator="greaterThan" value="0"/></Attribute><Attribute partialScore="1"><True/></Attribute></Characteristic>
<Characteristic name="cc" reasonCode="C"><Attribute reasonCode="CB"><SimplePredicate field="c" operator="equal" value="b"/><ComplexPartialScore><Apply function="*"><FieldRef field="x"/><Constant>10</Constant></Apply></ComplexPartialScore></Attribute><Attribute partialScore="0"><True/></Attribute></Characteristic>
</Characteristics></Scorecard>`))
	out := predictOne(t, m, map[string]any{"x": 2.0, "c": "b"})
	// x: 9 (4 above the baseline), c: 2*10 = 20 (15 above, code CB).
	if out["score"] != 129.0 || out["rc1"] != "CB" || out["rc2"] != "X" {
		t.Fatalf("got %v, want score 129, reason codes CB then X", out)
	}
}

func TestNaiveBayesPoisson(t *testing.T) {
	fields := `<DataField name="n" optype="continuous" dataType="integer"/><DataField name="t" optype="categorical" dataType="string"><Value value="u"/><Value value="v"/></DataField>`
	m := mustParse(t, doc(fields, `<NaiveBayesModel functionName="classification" threshold="0.001"><MiningSchema><MiningField name="n"/><MiningField name="t" usageType="target"/></MiningSchema>
<BayesInputs><BayesInput fieldName="n"><TargetValueStats><TargetValueStat value="u"><PoissonDistribution mean="2"/></TargetValueStat><TargetValueStat value="v"><PoissonDistribution mean="5"/></TargetValueStat></TargetValueStats></BayesInput></BayesInputs>
<BayesOutput fieldName="t"><TargetValueCounts><TargetValueCount value="u" count="30"/><TargetValueCount value="v" count="10"/></TargetValueCounts></BayesOutput></NaiveBayesModel>`))
	sc, err := m.score([]value{numValue(4)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pu := 30 * math.Exp(-2) * math.Pow(2, 4) / 24
	pv := 10 * math.Exp(-5) * math.Pow(5, 4) / 24
	near(t, "P(u)", sc.res.probs["u"], pu/(pu+pv))
}
