package pmml_test

import (
	"context"
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime/pmml"
)

const exampleDoc = `<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
 <DataDictionary>
  <DataField name="temperature" optype="continuous" dataType="double"/>
  <DataField name="outlook" optype="categorical" dataType="string"><Value value="sunny"/><Value value="rain"/></DataField>
  <DataField name="play" optype="categorical" dataType="string"><Value value="yes"/><Value value="no"/></DataField>
 </DataDictionary>
 <TreeModel functionName="classification" missingValueStrategy="lastPrediction">
  <MiningSchema>
   <MiningField name="temperature"/><MiningField name="outlook"/><MiningField name="play" usageType="target"/>
  </MiningSchema>
  <Output>
   <OutputField name="predicted" feature="predictedValue"/>
   <OutputField name="p(yes)" feature="probability" value="yes"/>
  </Output>
  <Node score="yes"><True/>
   <ScoreDistribution value="yes" recordCount="9"/><ScoreDistribution value="no" recordCount="5"/>
   <Node score="no"><SimplePredicate field="outlook" operator="equal" value="rain"/>
    <ScoreDistribution value="yes" recordCount="1"/><ScoreDistribution value="no" recordCount="3"/>
   </Node>
   <Node score="yes"><True/>
    <ScoreDistribution value="yes" recordCount="8"/><ScoreDistribution value="no" recordCount="2"/>
   </Node>
  </Node>
 </TreeModel>
</PMML>`

func ExampleModel_PredictRecords() {
	m, err := pmml.Parse([]byte(exampleDoc))
	if err != nil {
		panic(err)
	}
	fmt.Println(m.ActiveFields())
	out, err := m.PredictRecords(context.Background(), []map[string]any{
		{"temperature": 21.0, "outlook": "rain"},
		{"temperature": 25.0, "outlook": "sunny"},
		{"temperature": 18.0, "outlook": nil}, // missing: lastPrediction stops at the root
	})
	if err != nil {
		panic(err)
	}
	for _, r := range out {
		fmt.Println(r["predicted"], r["p(yes)"])
	}
	// Output:
	// [temperature outlook]
	// no 0.25
	// yes 0.8
	// yes 0.6428571428571429
}
