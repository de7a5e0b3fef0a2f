package xgboost

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"math"
	"os"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

const benchFeatures = 20

// benchInput is the batch bench_libxgboost.py times: a 64-bit LCG whose top
// 24 bits give values in [-2, 2), about 2% of them NaN. Keep the two in step.
func benchInput(rows, cols int) []float32 {
	out := make([]float32, rows*cols)
	s := uint64(1)
	for i := range out {
		s = s*6364136223846793005 + 1442695040888963407
		top := s >> 40
		if top%50 == 0 {
			out[i] = float32(math.NaN())
			continue
		}
		out[i] = float32(float64(top)/float64(1<<24)*4 - 2)
	}
	return out
}

// benchModelUBJ returns the ~100-tree benchmark model (testdata/bench,
// written by bench_libxgboost.py --write) as UBJSON.
func benchModelUBJ(tb testing.TB) []byte {
	tb.Helper()
	f, err := os.Open("testdata/bench/model.ubj.gz")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func benchModel(tb testing.TB) *Model {
	tb.Helper()
	m, err := Parse(benchModelUBJ(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// TestBenchModel pins the benchmark model to libxgboost's predictions for
// the first rows of the benchmark batch (printed by bench_libxgboost.py).
func TestBenchModel(t *testing.T) {
	m := benchModel(t)
	if n := len(m.b.trees); n != 100 {
		t.Fatalf("%d trees, want 100", n)
	}
	x := benchInput(3, benchFeatures)
	res, err := m.Predict(t.Context(), &runtime.Request{Inputs: []*tensor.Tensor{{Name: "input-0", Datatype: tensor.FP32, Shape: []int64{3, benchFeatures}, Data: x}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0.9490416, 0.96426344, 0.11677318}
	compare(t, "predict", res.Outputs[0].Data.([]float32), want)
}

func benchRequest(rows int) *runtime.Request {
	return &runtime.Request{Inputs: []*tensor.Tensor{{
		Name: "input-0", Datatype: tensor.FP32, Shape: []int64{int64(rows), benchFeatures}, Data: benchInput(rows, benchFeatures),
	}}}
}

func benchmarkPredict(b *testing.B, rows int) {
	m := benchModel(b)
	req := benchRequest(rows)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Predict(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(rows), "ns/row")
}

// BenchmarkPredict1 and BenchmarkPredict100k time Model.Predict (request to
// probabilities) on the 100-tree model; run with -cpu 1,2,... to see the
// parallel split of large batches.
func BenchmarkPredict1(b *testing.B)    { benchmarkPredict(b, 1) }
func BenchmarkPredict100k(b *testing.B) { benchmarkPredict(b, 100_000) }

func benchmarkParse(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseUBJ(b *testing.B) { benchmarkParse(b, benchModelUBJ(b)) }

func BenchmarkParseJSON(b *testing.B) {
	js, err := ubjToJSON(benchModelUBJ(b))
	if err != nil {
		b.Fatal(err)
	}
	if !bytes.HasPrefix(js, []byte(`{"learner"`)) {
		b.Fatalf("transcoded model starts %.20q", js)
	}
	benchmarkParse(b, js)
}

func BenchmarkParseBinary(b *testing.B) {
	data, err := os.ReadFile("testdata/golden/multi_softprob_forest/model.bst")
	if err != nil {
		b.Fatal(err)
	}
	benchmarkParse(b, data)
}
