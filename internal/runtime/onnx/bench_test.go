package onnx

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// benchPredict measures Predict on random rows for a golden model whose
// input is [rows, rest...], reporting ns/row.
func benchPredict(b *testing.B, m *Model, rowShape []int64, rows int) {
	per := int64(1)
	for _, d := range rowShape {
		per *= d
	}
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]float32, int64(rows)*per)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	shape := append([]int64{int64(rows)}, rowShape...)
	req := &runtime.Request{Inputs: []*tensor.Tensor{{Name: "input", Datatype: tensor.FP32, Shape: shape, Data: data}}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Predict(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(rows), "ns/row")
}

func benchModel(b *testing.B, name string, opts Options) *Model {
	b.Helper()
	m, err := LoadFile(b.Context(), "testdata/golden/"+name+".onnx", opts)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func BenchmarkPredict(b *testing.B) {
	cases := []struct {
		model string
		row   []int64
	}{
		{"torch_mlp_opset13", []int64{8}},
		{"torch_cnn", []int64{1, 12, 12}},
		{"sklearn_rfc_zipmap", []int64{4}},
		{"sklearn_gbr", []int64{5}},
	}
	for _, engine := range benchEngines() {
		for _, c := range cases {
			m := benchModel(b, c.model, Options{Engine: engine, LibraryPath: os.Getenv("ONNXRUNTIME_LIB"), IntraOpThreads: 1})
			for _, rows := range []int{1, 1000} {
				b.Run(fmt.Sprintf("engine=%s/%s/batch=%d", engine, c.model, rows), func(b *testing.B) {
					benchPredict(b, m, c.row, rows)
				})
			}
			m.Close()
		}
	}
}

// benchEngines lists the engines this build can run; the native one needs
// $ONNXRUNTIME_LIB (see fetch-ort.sh).
func benchEngines() []string {
	if nativeBuilt && os.Getenv("ONNXRUNTIME_LIB") != "" {
		return []string{EngineGo, EngineNative}
	}
	return []string{EngineGo}
}
