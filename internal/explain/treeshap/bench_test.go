package treeshap

import (
	"math/rand/v2"
	"testing"

	"github.com/ferryserve/ferry/internal/cputime"
)

// BenchmarkShapRow: one row through the golden "deep" model, 100 trees of
// depth 6 on 20 features (gen.py trains it). Compare with gen.py --time,
// libxgboost's pred_contribs on one thread.
func BenchmarkShapRow(b *testing.B) {
	m, _ := loadGolden(b, "testdata/golden/deep")
	x, err := FromModel(m)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	const rows = 256
	in := make([]float64, rows*x.NumFeatures())
	for i := range in {
		in[i] = float64(float32(rng.Float64()*4 - 2))
	}
	out := make([]float64, x.Width())
	buf := make([]pathElem, x.bufLen)
	b.ReportAllocs()
	start := cputime.Process()
	i := 0
	for b.Loop() {
		r := i % rows
		if err := x.shap(in[r*x.NumFeatures():(r+1)*x.NumFeatures()], out, buf); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(cputime.Process()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkInteractionsRow: SHAP interaction values of one row through
// the "deep" model (100 trees of depth 6, 20 features): 2·20 conditioned
// passes beside the plain one.
func BenchmarkInteractionsRow(b *testing.B) {
	m, _ := loadGolden(b, "testdata/golden/deep")
	x, err := FromModel(m)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	const rows = 64
	in := make([]float64, rows*x.NumFeatures())
	for i := range in {
		in[i] = float64(float32(rng.Float64()*4 - 2))
	}
	out := make([]float64, x.InteractionWidth())
	b.ReportAllocs()
	start := cputime.Process()
	i := 0
	for b.Loop() {
		r := i % rows
		if err := x.Interactions(in[r*x.NumFeatures():(r+1)*x.NumFeatures()], out); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(cputime.Process()-start)/float64(b.N), "cpu-ns/op")
}
