package pmml

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary documents to the XML reader and compiler and
// scores whatever loads: corrupt input must give errors, never panics.
// The seed corpus is every golden document plus the hand-written ones.
func FuzzParse(f *testing.F) {
	for _, name := range goldenCases {
		data, err := os.ReadFile(filepath.Join("testdata", "golden", name, "model.pmml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(handBoosted))
	f.Add([]byte(tree(`missingValueStrategy="weightedConfidence"`, treeNodes)))
	f.Add([]byte(linear(`<DefineFunction name="f" dataType="double"><ParameterField name="v"/><Apply function="f"><FieldRef field="v"/></Apply></DefineFunction><DerivedField name="d" dataType="double"><Apply function="f"><FieldRef field="x"/></Apply></DerivedField>`, "")))
	f.Add([]byte(linear(`<DerivedField name="d" dataType="double"><MapValues outputColumn="o"><FieldColumnPair field="c" column="i"/><InlineTable><row><i>a</i><o>1</o></row></InlineTable></MapValues></DerivedField>`, "")))
	records := []map[string]any{
		{},
		{"x": 1.0, "c": "a", "Sepal.Length": 5.1, "Petal.Length": 1.4, "temperature": 45.0, "outlook": "sunny"},
		{"x": "abc", "c": 2.0, "Sepal.Length": nil, "Employment": "Private", "Income": -1e300},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		for _, r := range records {
			_, _ = m.PredictRecords(t.Context(), []map[string]any{r})
		}
		_ = m.Metadata()
	})
}

// FuzzRecords scores random field values through models with every
// transformation and missing value path.
func FuzzRecords(f *testing.F) {
	f.Add(1.5, "a", false)
	f.Add(-1e308, "", true)
	f.Add(0.0, "z", false)
	docs := []*Model{}
	for _, text := range []string{
		tree(`missingValueStrategy="aggregateNodes"`, treeNodes),
		tree(`missingValueStrategy="defaultChild"`, `<Node defaultChild="a"><True/><Node id="a" score="yes"><SimplePredicate field="x" operator="lessThan" value="1"/></Node><Node id="b" score="no"><True/></Node></Node>`),
		handBoosted,
	} {
		m, err := Parse([]byte(text))
		if err != nil {
			f.Fatal(err)
		}
		docs = append(docs, m)
	}
	f.Fuzz(func(t *testing.T, x float64, c string, nilX bool) {
		rec := map[string]any{"x": x, "c": c, "x1": x, "x2": c}
		if nilX {
			rec["x"] = nil
		}
		for _, m := range docs {
			_, _ = m.PredictRecords(t.Context(), []map[string]any{rec})
		}
	})
}
