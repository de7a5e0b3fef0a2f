package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/onnx/onnxpb"
	"github.com/ferryserve/ferry/internal/tensor"
)

// elemType is an ONNX TensorProto.DataType code.
type elemType int32

// The ONNX element types the interpreter knows.
const (
	tUndefined elemType = 0
	tFloat     elemType = 1
	tUint8     elemType = 2
	tInt8      elemType = 3
	tUint16    elemType = 4
	tInt16     elemType = 5
	tInt32     elemType = 6
	tInt64     elemType = 7
	tString    elemType = 8
	tBool      elemType = 9
	tFloat16   elemType = 10
	tDouble    elemType = 11
	tUint32    elemType = 12
	tUint64    elemType = 13
)

func (t elemType) String() string {
	if n, ok := onnxpb.TensorProto_DataType_name[int32(t)]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", int32(t))
}

// isInt reports whether t is one of the integer or bool types, which the
// interpreter stores as int64.
func (t elemType) isInt() bool {
	switch t {
	case tUint8, tInt8, tUint16, tInt16, tInt32, tInt64, tBool, tUint32, tUint64:
		return true
	}
	return false
}

// maxElements bounds every tensor the interpreter allocates, so that a
// corrupt model (huge dims, pads or kernel sizes) fails with an error rather
// than exhausting memory.
const maxElements = 1 << 27

// value is one tensor flowing through the interpreter. Exactly one of the
// data slices is set, chosen by dt: f32 for FLOAT, f64 for DOUBLE, str for
// STRING and i64 for every integer type and BOOL. seq, when set, is a
// sequence of per-row maps (ZipMap's output), stored as a dense
// [rows, classes] FLOAT tensor in f32 with the class keys alongside.
type value struct {
	dt    elemType
	shape []int
	f32   []float32
	f64   []float64
	i64   []int64
	str   []string
	// zipmap marks ZipMap's output (a sequence of maps in ONNX), held here
	// as its dense probability matrix.
	zipmap bool
}

// numel multiplies out a shape, reporting false on a negative dimension,
// overflow or a count above maxElements.
func numel(shape []int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > maxElements/d {
			return 0, false
		}
		n *= d
	}
	return n, n <= maxElements
}

// newValue allocates a zeroed tensor of type dt.
func newValue(dt elemType, shape []int) (*value, error) {
	n, ok := numel(shape)
	if !ok {
		return nil, fmt.Errorf("tensor of shape %v is too large (limit %d elements)", shape, maxElements)
	}
	v := &value{dt: dt, shape: shape}
	switch {
	case dt == tFloat:
		v.f32 = make([]float32, n)
	case dt == tDouble:
		v.f64 = make([]float64, n)
	case dt == tString:
		v.str = make([]string, n)
	case dt.isInt():
		v.i64 = make([]int64, n)
	default:
		return nil, fmt.Errorf("element type %s is not supported", dt)
	}
	return v, nil
}

func (v *value) len() int {
	switch {
	case v.dt == tFloat:
		return len(v.f32)
	case v.dt == tDouble:
		return len(v.f64)
	case v.dt == tString:
		return len(v.str)
	}
	return len(v.i64)
}

// float64s returns the elements of a numeric value as float64 (a copy unless
// the value is DOUBLE).
func (v *value) float64s() ([]float64, error) {
	switch {
	case v.dt == tDouble:
		return v.f64, nil
	case v.dt == tFloat:
		out := make([]float64, len(v.f32))
		for i, x := range v.f32 {
			out[i] = float64(x)
		}
		return out, nil
	case v.dt.isInt():
		out := make([]float64, len(v.i64))
		for i, x := range v.i64 {
			out[i] = float64(x)
		}
		return out, nil
	}
	return nil, fmt.Errorf("element type %s is not numeric", v.dt)
}

// float32s returns the elements of a numeric value as float32 (a copy unless
// the value is FLOAT).
func (v *value) float32s() ([]float32, error) {
	switch {
	case v.dt == tFloat:
		return v.f32, nil
	case v.dt == tDouble:
		out := make([]float32, len(v.f64))
		for i, x := range v.f64 {
			out[i] = float32(x)
		}
		return out, nil
	case v.dt.isInt():
		out := make([]float32, len(v.i64))
		for i, x := range v.i64 {
			out[i] = float32(x)
		}
		return out, nil
	}
	return nil, fmt.Errorf("element type %s is not numeric", v.dt)
}

// ints returns the elements of an integer value (shape operands).
func (v *value) ints() ([]int64, error) {
	if !v.dt.isInt() {
		return nil, fmt.Errorf("want an integer tensor, got %s", v.dt)
	}
	return v.i64, nil
}

// decodeTensor turns an initializer or attribute tensor into a value. The
// element count must match dims exactly, so a corrupt file cannot make the
// reader allocate more than the file holds.
func decodeTensor(t *onnxpb.TensorProto) (*value, error) {
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL || len(t.GetExternalData()) > 0 {
		return nil, fmt.Errorf("%w: tensor %q keeps its data in an external file", runtime.ErrUnsupported, t.GetName())
	}
	if t.GetSegment() != nil {
		return nil, fmt.Errorf("%w: tensor %q is segmented", runtime.ErrUnsupported, t.GetName())
	}
	shape := make([]int, len(t.GetDims()))
	for i, d := range t.GetDims() {
		if d < 0 || d > maxElements {
			return nil, fmt.Errorf("%w: tensor %q has dimension %d", runtime.ErrCorruptModel, t.GetName(), d)
		}
		shape[i] = int(d)
	}
	n, ok := numel(shape)
	if !ok {
		return nil, fmt.Errorf("%w: tensor %q has dims %v: too many elements", runtime.ErrCorruptModel, t.GetName(), t.GetDims())
	}
	dt := elemType(t.GetDataType())
	raw := t.GetRawData()
	count := func(got int) error {
		if got != n {
			return fmt.Errorf("%w: tensor %q has dims %v (%d elements) but holds %d", runtime.ErrCorruptModel, t.GetName(), t.GetDims(), n, got)
		}
		return nil
	}
	v := &value{dt: dt, shape: shape}
	switch {
	case dt == tFloat:
		if raw != nil {
			if err := count(len(raw) / 4); err != nil || len(raw)%4 != 0 {
				return nil, fmt.Errorf("%w: tensor %q: raw_data of %d bytes for %d FLOAT elements", runtime.ErrCorruptModel, t.GetName(), len(raw), n)
			}
			v.f32 = make([]float32, n)
			for i := range v.f32 {
				v.f32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			return v, nil
		}
		if err := count(len(t.GetFloatData())); err != nil {
			return nil, err
		}
		v.f32 = t.GetFloatData()
	case dt == tDouble:
		if raw != nil {
			if len(raw) != 8*n {
				return nil, fmt.Errorf("%w: tensor %q: raw_data of %d bytes for %d DOUBLE elements", runtime.ErrCorruptModel, t.GetName(), len(raw), n)
			}
			v.f64 = make([]float64, n)
			for i := range v.f64 {
				v.f64[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
			}
			return v, nil
		}
		if err := count(len(t.GetDoubleData())); err != nil {
			return nil, err
		}
		v.f64 = t.GetDoubleData()
	case dt == tString:
		if err := count(len(t.GetStringData())); err != nil {
			return nil, err
		}
		v.str = make([]string, n)
		for i, s := range t.GetStringData() {
			v.str[i] = string(s)
		}
	case dt.isInt():
		size := intSize(dt)
		if raw != nil {
			if len(raw) != size*n {
				return nil, fmt.Errorf("%w: tensor %q: raw_data of %d bytes for %d %s elements", runtime.ErrCorruptModel, t.GetName(), len(raw), n, dt)
			}
			v.i64 = make([]int64, n)
			for i := range v.i64 {
				v.i64[i] = readInt(dt, raw[size*i:])
			}
			return v, nil
		}
		v.i64 = make([]int64, 0, min(n, 1<<16))
		switch dt {
		case tInt64:
			if err := count(len(t.GetInt64Data())); err != nil {
				return nil, err
			}
			v.i64 = append(v.i64, t.GetInt64Data()...)
		case tUint32, tUint64:
			if err := count(len(t.GetUint64Data())); err != nil {
				return nil, err
			}
			for _, x := range t.GetUint64Data() {
				v.i64 = append(v.i64, int64(x))
			}
		default:
			if err := count(len(t.GetInt32Data())); err != nil {
				return nil, err
			}
			for _, x := range t.GetInt32Data() {
				v.i64 = append(v.i64, int64(x))
			}
		}
	default:
		return nil, fmt.Errorf("%w: tensor %q has element type %s", runtime.ErrUnsupported, t.GetName(), dt)
	}
	return v, nil
}

func intSize(dt elemType) int {
	switch dt {
	case tUint8, tInt8, tBool:
		return 1
	case tUint16, tInt16:
		return 2
	case tInt32, tUint32:
		return 4
	}
	return 8
}

func readInt(dt elemType, b []byte) int64 {
	switch dt {
	case tUint8, tBool:
		return int64(b[0])
	case tInt8:
		return int64(int8(b[0]))
	case tUint16:
		return int64(binary.LittleEndian.Uint16(b))
	case tInt16:
		return int64(int16(binary.LittleEndian.Uint16(b)))
	case tInt32:
		return int64(int32(binary.LittleEndian.Uint32(b)))
	case tUint32:
		return int64(binary.LittleEndian.Uint32(b))
	}
	return int64(binary.LittleEndian.Uint64(b))
}

// fromTensor converts a request tensor to a value of the graph input's
// element type. Numeric tensors convert between numeric types (the protocol
// often carries FP64 for an FP32 input); strings only feed STRING inputs.
func fromTensor(in *tensor.Tensor, want elemType) (*value, error) {
	shape := make([]int, len(in.Shape))
	for i, d := range in.Shape {
		shape[i] = int(d)
	}
	if _, ok := numel(shape); !ok {
		return nil, fmt.Errorf("shape %v is too large", in.Shape)
	}
	v := &value{dt: want, shape: shape}
	switch {
	case want == tString:
		b, ok := in.Data.([][]byte)
		if !ok {
			return nil, fmt.Errorf("datatype %s; the model takes BYTES", in.Datatype)
		}
		v.str = make([]string, len(b))
		for i, s := range b {
			v.str[i] = string(s)
		}
		return v, nil
	case in.Datatype == tensor.Bytes:
		return nil, fmt.Errorf("datatype BYTES; the model takes %s", tensorType(want))
	case want == tFloat:
		x, err := in.Float32s()
		if err != nil {
			return nil, err
		}
		v.f32 = x
	case want == tDouble:
		x, err := in.Float64s()
		if err != nil {
			return nil, err
		}
		v.f64 = x
	case want.isInt():
		if in.Datatype.IsFloat() {
			return nil, fmt.Errorf("datatype %s; the model takes %s", in.Datatype, tensorType(want))
		}
		x, err := in.Float64s()
		if err != nil {
			return nil, err
		}
		v.i64 = make([]int64, len(x))
		for i, f := range x {
			v.i64[i] = int64(f)
		}
	default:
		return nil, fmt.Errorf("the model's input type %s is not supported", want)
	}
	return v, nil
}

// tensorType maps an ONNX element type to the protocol datatype.
func tensorType(t elemType) tensor.DataType {
	switch t {
	case tFloat:
		return tensor.FP32
	case tDouble:
		return tensor.FP64
	case tUint8:
		return tensor.Uint8
	case tInt8:
		return tensor.Int8
	case tUint16:
		return tensor.Uint16
	case tInt16:
		return tensor.Int16
	case tInt32:
		return tensor.Int32
	case tInt64:
		return tensor.Int64
	case tString:
		return tensor.Bytes
	case tBool:
		return tensor.Bool
	case tFloat16:
		return tensor.FP16
	case tUint32:
		return tensor.Uint32
	case tUint64:
		return tensor.Uint64
	}
	return tensor.Invalid
}

// toTensor converts an interpreter value to a response tensor named name.
func toTensor(name string, v *value) *tensor.Tensor {
	shape := make([]int64, len(v.shape))
	for i, d := range v.shape {
		shape[i] = int64(d)
	}
	t := &tensor.Tensor{Name: name, Datatype: tensorType(v.dt), Shape: shape}
	// Values may share memory with the request (Identity, Reshape) or with
	// the model's initializers, so responses get their own copy.
	switch v.dt {
	case tFloat:
		t.Data = slices.Clone(v.f32)
	case tDouble:
		t.Data = slices.Clone(v.f64)
	case tString:
		b := make([][]byte, len(v.str))
		for i, s := range v.str {
			b[i] = []byte(s)
		}
		t.Data = b
	case tInt64:
		t.Data = slices.Clone(v.i64)
	case tInt32:
		t.Data = convertInts[int32](v.i64)
	case tInt16:
		t.Data = convertInts[int16](v.i64)
	case tInt8:
		t.Data = convertInts[int8](v.i64)
	case tUint8:
		t.Data = convertInts[uint8](v.i64)
	case tUint16:
		t.Data = convertInts[uint16](v.i64)
	case tUint32:
		t.Data = convertInts[uint32](v.i64)
	case tUint64:
		t.Data = convertInts[uint64](v.i64)
	case tBool:
		b := make([]bool, len(v.i64))
		for i, x := range v.i64 {
			b[i] = x != 0
		}
		t.Data = b
	}
	return t
}

func convertInts[T int8 | int16 | int32 | uint8 | uint16 | uint32 | uint64](x []int64) []T {
	out := make([]T, len(x))
	for i, v := range x {
		out[i] = T(v)
	}
	return out
}
