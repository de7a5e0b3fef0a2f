package runtime

import (
	"fmt"

	"github.com/ferryserve/ferry/internal/tensor"
)

// Matrix is a dense row-major feature matrix built from a request.
type Matrix[T float32 | float64] struct {
	Rows, Cols int
	Data       []T
}

// Row returns row i.
func (m Matrix[T]) Row(i int) []T { return m.Data[i*m.Cols : (i+1)*m.Cols] }

// FeatureMatrix32 turns a request into a rows × features float32 matrix.
// See featureTensors for the accepted layouts.
func FeatureMatrix32(req *Request, features int) (Matrix[float32], error) {
	rows, parts, err := featureTensors(req, features)
	if err != nil {
		return Matrix[float32]{}, err
	}
	if len(parts) == 1 {
		x, err := parts[0].Float32s()
		if err != nil {
			return Matrix[float32]{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
		return Matrix[float32]{Rows: rows, Cols: features, Data: x}, nil
	}
	out := make([]float32, rows*features)
	for j, p := range parts {
		col, err := p.Float32s()
		if err != nil {
			return Matrix[float32]{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
		for i, v := range col {
			out[i*features+j] = v
		}
	}
	return Matrix[float32]{Rows: rows, Cols: features, Data: out}, nil
}

// FeatureMatrix64 is FeatureMatrix32 for float64.
func FeatureMatrix64(req *Request, features int) (Matrix[float64], error) {
	rows, parts, err := featureTensors(req, features)
	if err != nil {
		return Matrix[float64]{}, err
	}
	if len(parts) == 1 {
		x, err := parts[0].Float64s()
		if err != nil {
			return Matrix[float64]{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
		return Matrix[float64]{Rows: rows, Cols: features, Data: x}, nil
	}
	out := make([]float64, rows*features)
	for j, p := range parts {
		col, err := p.Float64s()
		if err != nil {
			return Matrix[float64]{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
		for i, v := range col {
			out[i*features+j] = v
		}
	}
	return Matrix[float64]{Rows: rows, Cols: features, Data: out}, nil
}

// featureTensors accepts the layouts users send for tabular models:
//   - one numeric tensor of shape [rows, features] (or [features] for one row);
//   - one numeric tensor per feature, each of shape [rows] or [rows, 1].
//
// features < 0 means "take the column count from the single tensor".
func featureTensors(req *Request, features int) (int, []*tensor.Tensor, error) {
	if len(req.Inputs) == 0 {
		return 0, nil, fmt.Errorf("%w: request has no inputs", ErrInvalidInput)
	}
	for _, in := range req.Inputs {
		if in.Datatype == tensor.Bytes || in.Datatype == tensor.Invalid {
			return 0, nil, fmt.Errorf("%w: input %q has datatype %s; this model takes numeric features (FP32, FP64, INT*, UINT*, BOOL)", ErrInvalidInput, in.Name, in.Datatype)
		}
		// The matrix's rows are cut from the data by the shape: a tensor
		// whose data does not fill its shape would be read past its end,
		// on evaluation goroutines where a panic ends the process.
		if err := in.Validate(); err != nil {
			return 0, nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
	}
	if len(req.Inputs) == 1 {
		in := req.Inputs[0]
		var rows, cols int
		switch len(in.Shape) {
		case 1:
			rows, cols = 1, int(in.Shape[0])
		case 2:
			rows, cols = int(in.Shape[0]), int(in.Shape[1])
		default:
			return 0, nil, fmt.Errorf("%w: input %q has shape %v; want [rows, %d]", ErrInvalidInput, in.Name, in.Shape, features)
		}
		if features >= 0 && cols != features {
			if len(in.Shape) == 1 && features == 1 {
				return int(in.Shape[0]), req.Inputs, nil
			}
			return 0, nil, fmt.Errorf("%w: input %q has %d features per row (shape %v); the model expects %d", ErrInvalidInput, in.Name, cols, in.Shape, features)
		}
		return rows, req.Inputs, nil
	}
	if features >= 0 && len(req.Inputs) != features {
		return 0, nil, fmt.Errorf("%w: got %d input tensors; send one [rows, %d] tensor or %d single-column tensors", ErrInvalidInput, len(req.Inputs), features, features)
	}
	rows := -1
	for _, in := range req.Inputs {
		r, c := in.Rows()
		if len(in.Shape) > 2 || c != 1 {
			return 0, nil, fmt.Errorf("%w: input %q has shape %v; with one tensor per feature each must be [rows] or [rows, 1]", ErrInvalidInput, in.Name, in.Shape)
		}
		if rows >= 0 && r != rows {
			return 0, nil, fmt.Errorf("%w: input %q has %d rows, earlier inputs have %d", ErrInvalidInput, in.Name, r, rows)
		}
		rows = r
	}
	return rows, req.Inputs, nil
}

// NewFP32 builds an FP32 output tensor.
func NewFP32(name string, shape []int64, data []float32) *tensor.Tensor {
	return &tensor.Tensor{Name: name, Datatype: tensor.FP32, Shape: shape, Data: data}
}

// NewFP64 builds an FP64 output tensor.
func NewFP64(name string, shape []int64, data []float64) *tensor.Tensor {
	return &tensor.Tensor{Name: name, Datatype: tensor.FP64, Shape: shape, Data: data}
}

// NewInt64 builds an INT64 output tensor.
func NewInt64(name string, shape []int64, data []int64) *tensor.Tensor {
	return &tensor.Tensor{Name: name, Datatype: tensor.Int64, Shape: shape, Data: data}
}

// NewBytes builds a BYTES output tensor from strings.
func NewBytes(name string, shape []int64, data []string) *tensor.Tensor {
	b := make([][]byte, len(data))
	for i, s := range data {
		b[i] = []byte(s)
	}
	return &tensor.Tensor{Name: name, Datatype: tensor.Bytes, Shape: shape, Data: b}
}

// Wants reports whether output name was requested, treating an empty list
// as "default outputs only" (def says whether name is a default output).
func (r *Request) Wants(name string, def bool) bool {
	if len(r.Outputs) == 0 {
		return def
	}
	for _, o := range r.Outputs {
		if o == name {
			return true
		}
	}
	return false
}
