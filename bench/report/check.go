package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// tolerance is how far a prediction may be from XGBoost's own: both
// evaluate in float32, so they differ only by summation order.
const tolerance = 1e-5

// checkFiles compares the predictions in a V1 ({"predictions": [...]}), V2
// ({"outputs": [{"name": "predict", "data": [...]}]}) or gRPC response
// (contents.fp32Contents) with the reference file written by
// bench/gen_model.py. It returns the largest
// absolute difference and the number of predictions compared.
func checkFiles(expectedPath, responsePath string) (float64, int, error) {
	want, err := predictions(expectedPath)
	if err != nil {
		return 0, 0, err
	}
	got, err := predictions(responsePath)
	if err != nil {
		return 0, 0, err
	}
	return compare(want, got)
}

func compare(want, got []float64) (float64, int, error) {
	if len(got) != len(want) {
		return 0, 0, fmt.Errorf("got %d predictions, want %d", len(got), len(want))
	}
	maxErr := 0.0
	for i := range want {
		d := math.Abs(got[i] - want[i])
		if !(d <= tolerance) { // also catches NaN
			return d, len(want), fmt.Errorf("prediction %d is %g, want %g (tolerance %g)", i, got[i], want[i], tolerance)
		}
		maxErr = max(maxErr, d)
	}
	return maxErr, len(want), nil
}

// answer is a V1, V2 REST or V2 gRPC (as grpcurl prints it) response; only
// the prediction fields are read.
type answer struct {
	Predictions []float64 `json:"predictions"`
	Outputs     []struct {
		Name     string    `json:"name"`
		Data     []float64 `json:"data"`
		Contents struct {
			FP32 []float64 `json:"fp32Contents"`
		} `json:"contents"`
	} `json:"outputs"`
}

func predictions(path string) ([]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if a.Predictions != nil {
		return a.Predictions, nil
	}
	for _, o := range a.Outputs {
		if o.Name == "predict" && o.Data != nil {
			return o.Data, nil
		}
		if o.Name == "predict" {
			return o.Contents.FP32, nil
		}
	}
	return nil, fmt.Errorf("%s: no \"predictions\" and no output named \"predict\"", path)
}
