package sklearn

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ferryserve/ferry/internal/cputime"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// BenchmarkRandomForest100 evaluates a 100-tree RandomForestClassifier
// (max_depth 5, 10 features) and reports ns per row.
func BenchmarkRandomForest100(b *testing.B) {
	m, err := Load(context.Background(), "testdata/models/bench_rf100.zlib.joblib")
	if err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{1, 10000} {
		for _, out := range []string{"predict", "predict_proba"} {
			b.Run(fmt.Sprintf("batch=%d/%s", batch, out), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 2))
				x := make([]float64, batch*m.nFeatures)
				for i := range x {
					x[i] = r.NormFloat64()
				}
				req := &runtime.Request{
					Inputs:  []*tensor.Tensor{runtime.NewFP64("input-0", []int64{int64(batch), int64(m.nFeatures)}, x)},
					Outputs: []string{out},
				}
				b.ReportAllocs()
				cpu0 := cputime.Process()
				for b.Loop() {
					if _, err := m.Predict(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/row")
				// Process CPU time, as bench_sklearn.py reports scikit-learn's:
				// steadier than wall time on a shared machine. Run with
				// GOMAXPROCS=1 so that it counts one core's work.
				b.ReportMetric(float64((cputime.Process()-cpu0).Nanoseconds())/float64(b.N*batch), "cpu-ns/row")
			})
		}
	}
}

func BenchmarkLoadRandomForest100(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(context.Background(), "testdata/models/bench_rf100.zlib.joblib"); err != nil {
			b.Fatal(err)
		}
	}
}
