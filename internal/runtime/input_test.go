package runtime

import (
	"errors"
	"testing"

	"github.com/ferryserve/ferry/internal/tensor"
)

// TestFeatureMatrixRefusesShortData: a tensor whose data does not fill its
// shape is refused, not turned into a matrix whose rows run past the data.
func TestFeatureMatrixRefusesShortData(t *testing.T) {
	tests := []struct {
		name   string
		inputs []*tensor.Tensor
		nf     int
	}{
		{"one tensor", []*tensor.Tensor{{Name: "x", Datatype: tensor.FP64, Shape: []int64{1001, 1}, Data: []float64{1}}}, 1},
		{"one per feature", []*tensor.Tensor{
			{Name: "a", Datatype: tensor.FP32, Shape: []int64{2}, Data: []float32{1, 2}},
			{Name: "b", Datatype: tensor.FP32, Shape: []int64{2}, Data: []float32{1, 2, 3}},
		}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &Request{Inputs: tc.inputs}
			if _, err := FeatureMatrix64(req, tc.nf); !errors.Is(err, ErrInvalidInput) {
				t.Errorf("FeatureMatrix64: %v, want ErrInvalidInput", err)
			}
			if _, err := FeatureMatrix32(req, tc.nf); !errors.Is(err, ErrInvalidInput) {
				t.Errorf("FeatureMatrix32: %v, want ErrInvalidInput", err)
			}
		})
	}
	ok := &Request{Inputs: []*tensor.Tensor{{Name: "x", Datatype: tensor.FP64, Shape: []int64{2, 1}, Data: []float64{1, 2}}}}
	if m, err := FeatureMatrix64(ok, 1); err != nil || m.Rows != 2 {
		t.Errorf("FeatureMatrix64 = %+v, %v", m, err)
	}
}
