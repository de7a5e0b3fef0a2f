package pmml

import (
	"fmt"
	"testing"

	fr "github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// BenchmarkPredict measures ns/row for a single tree (rpart, iris) and a
// 13-tree forest (randomForest, iris, with z-score transformations), at
// batch 1 and 1000, through PredictRecords (V1) and Predict (V2, one
// row-major FP64 tensor).
func BenchmarkPredict(b *testing.B) {
	for _, c := range []struct{ label, name string }{{"tree", "tree_iris_rpart"}, {"forest", "rf_iris_randomforest_vote"}, {"boosted40", ""}} {
		var m *Model
		var recs []map[string]any
		if c.name == "" {
			m = loadGz(b, "testdata/boosted/binary_nan/model.pmml.gz")
			for i := 0; i < 75; i++ {
				r := map[string]any{}
				for j, f := range m.ActiveFields() {
					r[f] = float64((i*7+j*3)%11) - 5
				}
				recs = append(recs, r)
			}
		} else {
			m = loadGolden(b, c.name)
			for _, r := range goldenRecords(b, c.name) {
				for k, v := range r {
					r[k], _ = parseNumber(v.(string))
				}
				recs = append(recs, r)
			}
		}
		for _, batch := range []int{1, 1000} {
			rows := make([]map[string]any, batch)
			x := make([]float64, 0, batch*len(m.inputs))
			for i := range rows {
				rows[i] = recs[i%len(recs)]
				for _, f := range m.ActiveFields() {
					x = append(x, rows[i][f].(float64))
				}
			}
			b.Run(fmt.Sprintf("%s/records/batch=%d", c.label, batch), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.PredictRecords(b.Context(), rows); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/row")
			})
			req := &fr.Request{Inputs: []*tensor.Tensor{fr.NewFP64("input-0", []int64{int64(batch), int64(len(m.inputs))}, x)}}
			b.Run(fmt.Sprintf("%s/v2/batch=%d", c.label, batch), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.Predict(b.Context(), req); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/row")
			})
		}
	}
}
