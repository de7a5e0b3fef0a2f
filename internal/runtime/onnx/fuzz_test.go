package onnx

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// FuzzLoad feeds arbitrary bytes to the protobuf reader and the Go engine's
// compiler; whatever loads is then run on a small input. Nothing may panic
// or allocate without bound. Seeds: the golden models and a few node cases.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.onnx"))
	for _, n := range []string{"test_conv_with_strides_padding", "test_maxpool_2d_ceil", "test_reshape_negative_dim", "test_gemm_all_attributes", "test_transpose_all_permutations_3"} {
		seeds = append(seeds, filepath.Join("testdata", "node", n, "model.onnx"))
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load(t.Context(), data, Options{Engine: EngineGo})
		if err != nil {
			return
		}
		req := &runtime.Request{}
		for _, in := range m.Metadata().Inputs {
			shape := make([]int64, len(in.Shape))
			n := int64(1)
			for i, d := range in.Shape {
				if d < 0 {
					d = 2
				}
				shape[i] = min(d, 64)
				n *= shape[i]
			}
			if n > 1<<16 {
				return
			}
			data, err := tensor.MakeData(in.Datatype, int(n))
			if err != nil {
				return
			}
			req.Inputs = append(req.Inputs, &tensor.Tensor{Name: in.Name, Datatype: in.Datatype, Shape: shape, Data: data})
		}
		_, _ = m.Predict(t.Context(), req)
	})
}
