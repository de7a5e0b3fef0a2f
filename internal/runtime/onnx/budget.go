package onnx

import (
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime"
)

// DefaultMaxInferenceBytes is Options.MaxInferenceBytes' default.
const DefaultMaxInferenceBytes = 512 << 20

// runBudget bounds the memory one inference's intermediate tensors hold at
// once. Kernels reserve an output's bytes before allocating it (its shape
// is known by then); graph.run releases a value after the last node that
// reads it. A nil *runBudget is unlimited.
type runBudget struct {
	limit, live int64
}

// reserve accounts n elements of size bytes each, or fails naming the
// budget and its flag.
func (rb *runBudget) reserve(n, size int, shape []int) error {
	if rb == nil {
		return nil
	}
	b := int64(n) * int64(size)
	if b > rb.limit-rb.live {
		return fmt.Errorf("%w: a %v tensor of %d bytes would take this inference's intermediate tensors past %d bytes, %d of them already held (the --max-inference-bytes limit)",
			runtime.ErrBudget, shape, b, rb.limit, rb.live)
	}
	rb.live += b
	return nil
}

func (rb *runBudget) release(v *value) {
	if rb != nil && v != nil {
		rb.live -= v.bytes()
	}
}

// newValue is the package's newValue, reserved against the budget first.
func (rb *runBudget) newValue(dt elemType, shape []int) (*value, error) {
	n, ok := numel(shape)
	if !ok {
		return nil, fmt.Errorf("tensor of shape %v is too large (limit %d elements)", shape, maxElements)
	}
	if err := rb.reserve(n, elemBytes(dt), shape); err != nil {
		return nil, err
	}
	return newValue(dt, shape)
}

// elemBytes is the in-memory size of one element of dt as the interpreter
// stores it.
func elemBytes(dt elemType) int {
	switch {
	case dt == tFloat:
		return 4
	case dt == tString:
		return 16
	}
	return 8 // DOUBLE, and every integer type as int64
}

// bytes is the memory v's data takes (string contents aside).
func (v *value) bytes() int64 {
	return int64(len(v.f32))*4 + int64(len(v.f64)+len(v.i64))*8 + int64(len(v.str))*16
}
