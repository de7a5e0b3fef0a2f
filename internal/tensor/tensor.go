// Package tensor owns Ferry's typed tensors: the thirteen Open Inference
// Protocol datatypes (plus BF16), shapes, row-major storage and the
// little-endian binary layout shared by the binary tensor extension and the
// gRPC raw contents fields. It knows nothing of HTTP, gRPC or models.
package tensor

import (
	"errors"
	"fmt"
	"math"
)

// DataType is one of the Open Inference Protocol tensor datatypes.
type DataType uint8

// The datatypes, in the order the protocol lists them.
const (
	Invalid DataType = iota
	Bool
	Uint8
	Uint16
	Uint32
	Uint64
	Int8
	Int16
	Int32
	Int64
	FP16
	FP32
	FP64
	Bytes
	BF16
)

var names = [...]string{
	Invalid: "INVALID",
	Bool:    "BOOL",
	Uint8:   "UINT8",
	Uint16:  "UINT16",
	Uint32:  "UINT32",
	Uint64:  "UINT64",
	Int8:    "INT8",
	Int16:   "INT16",
	Int32:   "INT32",
	Int64:   "INT64",
	FP16:    "FP16",
	FP32:    "FP32",
	FP64:    "FP64",
	Bytes:   "BYTES",
	BF16:    "BF16",
}

// String returns the protocol name of d, e.g. "FP32".
func (d DataType) String() string {
	if int(d) < len(names) {
		return names[d]
	}
	return fmt.Sprintf("DataType(%d)", d)
}

// ParseDataType maps a protocol datatype name to a DataType.
func ParseDataType(s string) (DataType, error) {
	for i, n := range names {
		if i != 0 && n == s {
			return DataType(i), nil
		}
	}
	return Invalid, fmt.Errorf("unknown datatype %q (want one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES, BF16)", s)
}

// Size is the number of bytes one element takes in the binary layout; 0 for
// BYTES, whose elements are length-prefixed.
func (d DataType) Size() int {
	switch d {
	case Bool, Uint8, Int8:
		return 1
	case Uint16, Int16, FP16, BF16:
		return 2
	case Uint32, Int32, FP32:
		return 4
	case Uint64, Int64, FP64:
		return 8
	}
	return 0
}

// IsFloat reports whether d is a floating-point type.
func (d DataType) IsFloat() bool { return d == FP16 || d == FP32 || d == FP64 || d == BF16 }

// Tensor is a named, typed, row-major n-dimensional array.
//
// Data holds the elements in a Go slice whose type depends on Datatype:
//
//	BOOL []bool; UINT8 []uint8; UINT16 []uint16; UINT32 []uint32; UINT64 []uint64
//	INT8 []int8; INT16 []int16; INT32 []int32; INT64 []int64
//	FP16 and BF16 []uint16 (the raw bit patterns); FP32 []float32; FP64 []float64
//	BYTES [][]byte
type Tensor struct {
	Name       string
	Datatype   DataType
	Shape      []int64
	Data       any
	Parameters map[string]any
}

// ErrInvalid marks a tensor that is malformed: wrong shape, wrong data type or
// wrong element count. Protocol layers map it to 400 / INVALID_ARGUMENT.
var ErrInvalid = errors.New("invalid tensor")

// NumElements is the product of the shape; 1 for a scalar (empty shape).
// It returns -1 when a dimension is negative or the product overflows.
func NumElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		if d != 0 && n > math.MaxInt64/d {
			return -1
		}
		n *= d
	}
	return n
}

// Len is the number of elements stored in Data.
func (t *Tensor) Len() int {
	switch v := t.Data.(type) {
	case []bool:
		return len(v)
	case []uint8:
		return len(v)
	case []uint16:
		return len(v)
	case []uint32:
		return len(v)
	case []uint64:
		return len(v)
	case []int8:
		return len(v)
	case []int16:
		return len(v)
	case []int32:
		return len(v)
	case []int64:
		return len(v)
	case []float32:
		return len(v)
	case []float64:
		return len(v)
	case [][]byte:
		return len(v)
	}
	return 0
}

// Validate checks that Data has the Go type Datatype requires and as many
// elements as Shape says.
func (t *Tensor) Validate() error {
	if !sliceMatches(t.Datatype, t.Data) {
		return fmt.Errorf("%w: tensor %q: datatype %s does not match its data", ErrInvalid, t.Name, t.Datatype)
	}
	want := NumElements(t.Shape)
	if want < 0 {
		return fmt.Errorf("%w: tensor %q: shape %v has a negative dimension", ErrInvalid, t.Name, t.Shape)
	}
	if got := int64(t.Len()); got != want {
		return fmt.Errorf("%w: tensor %q: shape %v needs %d elements, data has %d", ErrInvalid, t.Name, t.Shape, want, got)
	}
	return nil
}

func sliceMatches(d DataType, data any) bool {
	switch data.(type) {
	case []bool:
		return d == Bool
	case []uint8:
		return d == Uint8
	case []uint16:
		return d == Uint16 || d == FP16 || d == BF16
	case []uint32:
		return d == Uint32
	case []uint64:
		return d == Uint64
	case []int8:
		return d == Int8
	case []int16:
		return d == Int16
	case []int32:
		return d == Int32
	case []int64:
		return d == Int64
	case []float32:
		return d == FP32
	case []float64:
		return d == FP64
	case [][]byte:
		return d == Bytes
	}
	return false
}

// MakeData allocates a zeroed Data slice of n elements for d.
func MakeData(d DataType, n int) (any, error) {
	switch d {
	case Bool:
		return make([]bool, n), nil
	case Uint8:
		return make([]uint8, n), nil
	case Uint16, FP16, BF16:
		return make([]uint16, n), nil
	case Uint32:
		return make([]uint32, n), nil
	case Uint64:
		return make([]uint64, n), nil
	case Int8:
		return make([]int8, n), nil
	case Int16:
		return make([]int16, n), nil
	case Int32:
		return make([]int32, n), nil
	case Int64:
		return make([]int64, n), nil
	case FP32:
		return make([]float32, n), nil
	case FP64:
		return make([]float64, n), nil
	case Bytes:
		return make([][]byte, n), nil
	}
	return nil, fmt.Errorf("%w: unsupported datatype %s", ErrInvalid, d)
}

// Rows returns the first dimension of the shape (the batch size) and the
// number of elements in each row. A rank-1 tensor of n elements reports
// (n, 1); a scalar reports (1, 1).
func (t *Tensor) Rows() (rows, cols int) {
	if len(t.Shape) == 0 {
		return 1, 1
	}
	rows = int(t.Shape[0])
	cols = 1
	for _, d := range t.Shape[1:] {
		cols *= int(d)
	}
	return rows, cols
}
