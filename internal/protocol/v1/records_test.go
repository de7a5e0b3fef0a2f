package v1

import (
	"context"
	"testing"
)

// irisPMML stands in for a PMML model with several Output fields.
type irisPMML struct{ got []map[string]any }

func (m *irisPMML) ActiveFields() []string { return []string{"sepal_length", "petal_length"} }

func (m *irisPMML) PredictRecords(_ context.Context, recs []map[string]any) ([]map[string]any, error) {
	m.got = recs
	out := make([]map[string]any, len(recs))
	for i := range recs {
		out[i] = map[string]any{"Species": "setosa", "Probability_setosa": 1.0}
	}
	return out, nil
}

// TestListRowsReturnEveryOutputField checks that numeric list instances for
// a record model come back as records holding every Output field, as
// KServe's pmmlserver answers, with null kept as a missing value.
func TestListRowsReturnEveryOutputField(t *testing.T) {
	in, err := decodeInstances([]byte(`{"instances": [[5.1, 1.4], [6.2, null]]}`))
	if err != nil {
		t.Fatal(err)
	}
	if in.tensor == nil {
		t.Fatal("numeric rows did not decode to a tensor")
	}
	if in.records, err = tensorRows(in.tensor); err != nil {
		t.Fatal(err)
	}
	m := &irisPMML{}
	body, err := predictRecords(context.Background(), m, in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"predictions":[{"Probability_setosa":1,"Species":"setosa"},{"Probability_setosa":1,"Species":"setosa"}]}`
	if string(body) != want {
		t.Errorf("body = %s\nwant %s", body, want)
	}
	if len(m.got) != 2 || m.got[0]["sepal_length"] != 5.1 || m.got[1]["petal_length"] != nil {
		t.Errorf("records = %v", m.got)
	}
	if _, ok := m.got[1]["petal_length"]; !ok {
		t.Errorf("missing value dropped from the record: %v", m.got[1])
	}
}
