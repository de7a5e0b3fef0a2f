package onnx_test

import (
	"context"
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/onnx"
	"github.com/ferryserve/ferry/internal/tensor"
)

// A scikit-learn random forest exported as ai.onnx.ml TreeEnsembleClassifier
// plus ZipMap, evaluated by the pure-Go engine. The ZipMap output comes back
// as a dense [rows, classes] tensor.
func ExampleLoadFile() {
	ctx := context.Background()
	m, err := onnx.LoadFile(ctx, "testdata/golden/sklearn_rfc_zipmap.onnx", onnx.Options{Engine: onnx.EngineGo})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	md := m.Metadata()
	fmt.Println("input:", md.Inputs[0].Name, md.Inputs[0].Datatype, md.Inputs[0].Shape)

	res, err := m.Predict(ctx, &runtime.Request{Inputs: []*tensor.Tensor{{
		Name: "input", Datatype: tensor.FP32, Shape: []int64{2, 4},
		Data: []float32{5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3},
	}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, out := range res.Outputs {
		fmt.Println(out.Name, out.Datatype, out.Shape)
	}
	fmt.Println("labels:", res.Outputs[0].Data)
	// Output:
	// input: input FP32 [-1 4]
	// label INT64 [2]
	// output_probability FP32 [2 3]
	// labels: [0 2]
}
