package pmml

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// loadGz reads a gzipped PMML document from testdata.
func loadGz(t testing.TB, path string) *Model {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// TestBoostedLightGBM scores the PMML ensembles testdata/gen/lightgbm2pmml.py
// wrote from the LightGBM runtime's golden models (modelChain of sum
// MiningModels and a logit/softmax RegressionModel; defaultChild trees)
// and compares them with LightGBM's own predictions.
func TestBoostedLightGBM(t *testing.T) {
	for _, name := range []string{"binary_nan", "multiclass", "regression_use_missing_false"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "boosted", name)
			m := loadGz(t, filepath.Join(dir, "model.pmml.gz"))
			head, rows := readCSVFile(t, filepath.Join(dir, "input.csv"))
			recs := make([]map[string]any, len(rows))
			for i, row := range rows {
				recs[i] = map[string]any{}
				for j, h := range head {
					if row[j] != "nan" {
						f, err := strconv.ParseFloat(row[j], 64)
						if err != nil {
							t.Fatal(err)
						}
						recs[i][h] = f
					}
				}
			}
			got, err := m.PredictRecords(t.Context(), recs)
			if err != nil {
				t.Fatal(err)
			}
			wantHead, want := readCSVFile(t, filepath.Join(dir, "expected.csv"))
			worst := 0.0
			for i := range want {
				for j, col := range wantHead {
					key := "y"
					switch {
					case col == "prediction" && m.top.classification():
						key = "probability(1)"
					case strings.HasPrefix(col, "class_"):
						key = "probability(" + strings.TrimPrefix(col, "class_") + ")"
					}
					w, _ := strconv.ParseFloat(want[i][j], 64)
					g, ok := got[i][key].(float64)
					if !ok {
						t.Fatalf("row %d: %s = %v", i, key, got[i][key])
					}
					e := relErr(g, w)
					worst = math.Max(worst, e)
					if e > 1e-12 {
						t.Errorf("row %d %s: got %.17g, want %.17g", i, col, g, w)
					}
				}
			}
			t.Logf("%d rows, max relative error %.3g", len(want), worst)
		})
	}
}

// handBoosted is a two-tree binary ensemble in the shape XGBoost exporters
// write: a modelChain whose first segment sums the trees (base score as
// the Target's rescaleConstant) and exposes the margin, and whose second
// segment applies the logistic function.
const handBoosted = `<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
 <DataDictionary>
  <DataField name="x1" optype="continuous" dataType="float"/>
  <DataField name="x2" optype="continuous" dataType="float"/>
  <DataField name="label" optype="categorical" dataType="integer"><Value value="0"/><Value value="1"/></DataField>
 </DataDictionary>
 <MiningModel functionName="classification">
  <MiningSchema>
   <MiningField name="x1"/><MiningField name="x2"/><MiningField name="label" usageType="target"/>
  </MiningSchema>
  <Output>
   <OutputField name="xgbValue" feature="predictedValue" dataType="double" targetField="label" isFinalResult="false"/>
   <OutputField name="probability(0)" optype="continuous" dataType="double" feature="probability" value="0"/>
   <OutputField name="probability(1)" optype="continuous" dataType="double" feature="probability" value="1"/>
  </Output>
  <Segmentation multipleModelMethod="modelChain">
   <Segment id="1">
    <True/>
    <MiningModel functionName="regression">
     <MiningSchema><MiningField name="x1"/><MiningField name="x2"/></MiningSchema>
     <Output><OutputField name="margin" optype="continuous" dataType="double" feature="predictedValue"/></Output>
     <Targets><Target rescaleConstant="-0.5"/></Targets>
     <Segmentation multipleModelMethod="sum">
      <Segment id="1">
       <True/>
       <TreeModel functionName="regression" missingValueStrategy="defaultChild" noTrueChildStrategy="returnLastPrediction" splitCharacteristic="binarySplit">
        <MiningSchema><MiningField name="x1"/></MiningSchema>
        <Node defaultChild="2">
         <True/>
         <Node id="2" score="0.4"><SimplePredicate field="x1" operator="lessThan" value="1.5"/></Node>
         <Node id="3" score="-0.3"><SimplePredicate field="x1" operator="greaterOrEqual" value="1.5"/></Node>
        </Node>
       </TreeModel>
      </Segment>
      <Segment id="2">
       <True/>
       <TreeModel functionName="regression" missingValueStrategy="defaultChild" noTrueChildStrategy="returnLastPrediction" splitCharacteristic="binarySplit">
        <MiningSchema><MiningField name="x1"/><MiningField name="x2"/></MiningSchema>
        <Node defaultChild="5">
         <True/>
         <Node id="4" defaultChild="7"><SimplePredicate field="x2" operator="lessThan" value="0"/>
          <Node id="6" score="0.25"><SimplePredicate field="x1" operator="lessThan" value="3"/></Node>
          <Node id="7" score="0.1"><SimplePredicate field="x1" operator="greaterOrEqual" value="3"/></Node>
         </Node>
         <Node id="5" score="-0.2"><SimplePredicate field="x2" operator="greaterOrEqual" value="0"/></Node>
        </Node>
       </TreeModel>
      </Segment>
     </Segmentation>
    </MiningModel>
   </Segment>
   <Segment id="2">
    <True/>
    <RegressionModel functionName="classification" normalizationMethod="logit">
     <MiningSchema><MiningField name="margin"/><MiningField name="label" usageType="target"/></MiningSchema>
     <RegressionTable intercept="0" targetCategory="1"><NumericPredictor name="margin" coefficient="1"/></RegressionTable>
     <RegressionTable intercept="0" targetCategory="0"/>
    </RegressionModel>
   </Segment>
  </Segmentation>
 </MiningModel>
</PMML>`

func TestHandBoosted(t *testing.T) {
	m, err := Parse([]byte(handBoosted))
	if err != nil {
		t.Fatal(err)
	}
	sigmoid := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	cases := []struct {
		x1, x2 any
		margin float64 // worked out by hand from the two trees
		class  float64
	}{
		{1.0, -1.0, -0.5 + 0.4 + 0.25, 1}, // left, left-left
		{2.0, -1.0, -0.5 - 0.3 + 0.25, 0}, // right, left-left
		{4.0, -1.0, -0.5 - 0.3 + 0.1, 0},  // right, left-right
		{1.0, 2.0, -0.5 + 0.4 - 0.2, 0},   // left, right
		{nil, nil, -0.5 + 0.4 - 0.2, 0},   // both default children
		{5.0, nil, -0.5 - 0.3 - 0.2, 0},   // tree 2 default child
		{nil, -3.0, -0.5 + 0.4 + 0.1, 1},  // defaults, then default 7
		{1.5, 0.0, -0.5 - 0.3 - 0.2, 0},   // split values go right
	}
	for _, c := range cases {
		out, err := m.PredictRecords(t.Context(), []map[string]any{{"x1": c.x1, "x2": c.x2}})
		if err != nil {
			t.Fatal(err)
		}
		p1 := sigmoid(c.margin)
		if got := out[0]["probability(1)"].(float64); relErr(got, p1) > 1e-15 {
			t.Errorf("x=(%v,%v): probability(1) = %.17g, want %.17g", c.x1, c.x2, got, p1)
		}
		if got := out[0]["probability(0)"].(float64); relErr(got, 1-p1) > 1e-15 {
			t.Errorf("x=(%v,%v): probability(0) = %.17g, want %.17g", c.x1, c.x2, got, 1-p1)
		}
		if got := out[0]["xgbValue"]; got != c.class {
			t.Errorf("x=(%v,%v): xgbValue = %v, want %v", c.x1, c.x2, got, c.class)
		}
	}
}
