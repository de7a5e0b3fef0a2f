package sklearn_test

import (
	"context"
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn"
	"github.com/ferryserve/ferry/internal/tensor"
)

// Load a joblib file written by scikit-learn and ask for class
// probabilities next to the predicted labels.
func Example() {
	m, err := sklearn.Load(context.Background(), "testdata/models/rfc_str.joblib")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	req := &runtime.Request{
		Inputs:  []*tensor.Tensor{runtime.NewFP64("input-0", []int64{1, 5}, []float64{0.5, -1.2, 0.3, 2.0, -0.7})},
		Outputs: []string{"predict", "predict_proba"},
	}
	res, err := m.Predict(context.Background(), req)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range res.Outputs {
		fmt.Println(o.Name, o.Datatype, o.Shape)
	}
	fmt.Printf("%s %v\n", res.Outputs[0].Data.([][]byte)[0], res.Outputs[1].Data)
	fmt.Println(m.Class(), m.Metadata().Inputs[0].Shape)
	// Output:
	// predict BYTES [1]
	// predict_proba FP64 [1 3]
	// fish [0.125 0.4 0.475]
	// RandomForestClassifier [-1 5]
}
