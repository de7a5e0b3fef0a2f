package pickle

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Dtype is a numpy dtype: a scalar kind and size, or a structured record.
type Dtype struct {
	// Kind is numpy's kind character: 'f', 'i', 'u', 'b', 'O', 'U', 'S', 'V'.
	Kind      byte
	Size      int // bytes per element
	BigEndian bool
	Fields    []Field // structured dtypes only, in declaration order
}

// Field is one member of a structured dtype.
type Field struct {
	Name   string
	Dtype  *Dtype
	Offset int
}

func (d *Dtype) String() string {
	if d == nil {
		return "<nil dtype>"
	}
	return string(d.Kind) + strconv.Itoa(d.Size)
}

// Field returns the structured field called name.
func (d *Dtype) Field(name string) (Field, bool) {
	for _, f := range d.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// newDtype interprets numpy.dtype's constructor argument, e.g. "f8", "U3".
func newDtype(spec string) (*Dtype, error) {
	if spec == "" {
		return nil, fmt.Errorf("%w: empty dtype", ErrCorrupt)
	}
	switch spec {
	case "O", "O8", "O4":
		return &Dtype{Kind: 'O', Size: 8}, nil
	case "b1", "?":
		return &Dtype{Kind: 'b', Size: 1}, nil
	}
	kind := spec[0]
	n, err := strconv.Atoi(spec[1:])
	if err != nil || n < 0 || n > 1<<30 {
		return nil, fmt.Errorf("%w: numpy dtype %q", ErrUnsupported, spec)
	}
	switch kind {
	case 'f':
		if n != 4 && n != 8 {
			return nil, fmt.Errorf("%w: numpy dtype %q", ErrUnsupported, spec)
		}
	case 'i', 'u':
		if n != 1 && n != 2 && n != 4 && n != 8 {
			return nil, fmt.Errorf("%w: numpy dtype %q", ErrUnsupported, spec)
		}
	case 'U':
		n *= 4
	case 'S', 'V':
	default:
		return nil, fmt.Errorf("%w: numpy dtype %q", ErrUnsupported, spec)
	}
	return &Dtype{Kind: kind, Size: n}, nil
}

// setState applies numpy's dtype __setstate__ tuple:
// (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]).
func (d *Dtype) setState(st any) error {
	t, ok := st.(Tuple)
	if !ok || len(t) < 8 {
		return fmt.Errorf("%w: numpy dtype state is %s, want an 8- or 9-tuple", ErrCorrupt, Describe(st))
	}
	if bo, ok := t[1].(string); ok && bo == ">" {
		d.BigEndian = true
	}
	if t[2] != nil {
		return fmt.Errorf("%w: numpy sub-array dtypes", ErrUnsupported)
	}
	if el, ok := t[5].(int64); ok && el >= 0 && (d.Kind == 'U' || d.Kind == 'S' || d.Kind == 'V') {
		if el > 1<<30 {
			return fmt.Errorf("%w: numpy dtype item size %d", ErrCorrupt, el)
		}
		d.Size = int(el)
	}
	names, ok := t[3].(Tuple)
	if !ok {
		return nil
	}
	fields, ok := t[4].(*Dict)
	if !ok {
		return fmt.Errorf("%w: structured dtype without fields", ErrCorrupt)
	}
	for _, n := range names {
		name, ok := n.(string)
		if !ok {
			return fmt.Errorf("%w: structured dtype field name is %s", ErrCorrupt, Describe(n))
		}
		v, ok := fields.Get(name)
		ft, ok2 := v.(Tuple)
		if !ok || !ok2 || len(ft) < 2 {
			return fmt.Errorf("%w: structured dtype field %q", ErrCorrupt, name)
		}
		fd, ok := ft[0].(*Dtype)
		off, ok2 := ft[1].(int64)
		if !ok || !ok2 || off < 0 || int(off)+fd.Size > d.Size {
			return fmt.Errorf("%w: structured dtype field %q", ErrCorrupt, name)
		}
		d.Fields = append(d.Fields, Field{Name: name, Dtype: fd, Offset: int(off)})
	}
	return nil
}

// Array is a decoded numpy ndarray in C (row-major) order. Numeric data is
// kept as raw little-endian bytes; object arrays keep their elements.
type Array struct {
	Dtype   *Dtype
	Shape   []int
	Data    []byte
	Objects []any
}

// Kind is the dtype's kind character, or 0 for an array whose state was
// never set (a _reconstruct without BUILD).
func (a *Array) Kind() byte {
	if a.Dtype == nil {
		return 0
	}
	return a.Dtype.Kind
}

// Len is the number of elements.
func (a *Array) Len() int {
	n := 1
	for _, s := range a.Shape {
		n *= s
	}
	return n
}

// count multiplies a shape, refusing negative sizes and overflow.
func count(shape []int) (int, error) {
	n := 1
	for _, s := range shape {
		if s < 0 {
			return 0, fmt.Errorf("%w: negative array dimension %d", ErrCorrupt, s)
		}
		if s != 0 && n > math.MaxInt32/s {
			return 0, fmt.Errorf("%w: array shape %v too large", ErrCorrupt, shape)
		}
		n *= s
	}
	return n, nil
}

func toShape(v any) ([]int, error) {
	t, ok := v.(Tuple)
	if !ok {
		if l, ok := v.(*List); ok {
			t = l.Items
		} else if i, ok := v.(int64); ok {
			t = Tuple{i}
		} else {
			return nil, fmt.Errorf("%w: array shape is %s", ErrCorrupt, Describe(v))
		}
	}
	shape := make([]int, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 || n > math.MaxInt32 {
			return nil, fmt.Errorf("%w: array shape %v", ErrCorrupt, t)
		}
		shape[i] = int(n)
	}
	return shape, nil
}

// fill sets an array's contents from raw bytes in the given order,
// normalising byte order and layout.
func (a *Array) fill(mem *budget, raw []byte, fortran bool) error {
	n, err := count(a.Shape)
	if err != nil {
		return err
	}
	copies := int64(0) // byte-order and layout conversions copy the data
	if a.Dtype.BigEndian && a.Dtype.Size > 1 && a.Dtype.Kind != 'S' && a.Dtype.Kind != 'V' {
		copies++
	}
	if fortran && len(a.Shape) > 1 {
		copies++
	}
	if !mem.charge(copies*int64(len(raw)) + costObj) {
		return mem.exceeded("numpy array %v of %s", a.Shape, a.Dtype)
	}
	if a.Dtype.Kind == 'O' {
		return fmt.Errorf("%w: object array given raw bytes", ErrCorrupt)
	}
	if a.Dtype.Size == 0 && n > 1<<20 {
		// Zero-size elements carry no bytes to bound the shape by.
		return fmt.Errorf("%w: %d elements of zero size", ErrCorrupt, n)
	}
	if a.Dtype.Size != 0 && len(raw) != n*a.Dtype.Size {
		return fmt.Errorf("%w: array %v of %s has %d data bytes, want %d", ErrCorrupt, a.Shape, a.Dtype, len(raw), n*a.Dtype.Size)
	}
	data := raw
	if a.Dtype.BigEndian && a.Dtype.Size > 1 && a.Dtype.Kind != 'S' && a.Dtype.Kind != 'V' {
		data = make([]byte, len(raw))
		sz := a.Dtype.Size
		unit := sz
		if a.Dtype.Kind == 'U' {
			unit = 4
		}
		for i := 0; i+unit <= len(raw); i += unit {
			for j := 0; j < unit; j++ {
				data[i+j] = raw[i+unit-1-j]
			}
		}
		a.Dtype.BigEndian = false
	}
	if fortran && len(a.Shape) > 1 {
		data = fortranToC(data, a.Shape, a.Dtype.Size)
	}
	a.Data = data
	return nil
}

// fillObjects sets an object array's elements, given in the given order.
func (a *Array) fillObjects(mem *budget, items []any, fortran bool) error {
	n, err := count(a.Shape)
	if err != nil {
		return err
	}
	if fortran && len(a.Shape) > 1 && !mem.charge(costSlot*int64(n)) {
		return mem.exceeded("numpy object array %v", a.Shape)
	}
	if len(items) != n {
		return fmt.Errorf("%w: object array %v has %d elements, want %d", ErrCorrupt, a.Shape, len(items), n)
	}
	if fortran && len(a.Shape) > 1 {
		out := make([]any, n)
		forEachFortran(a.Shape, func(c, f int) { out[c] = items[f] })
		items = out
	}
	a.Objects = items
	return nil
}

func fortranToC(raw []byte, shape []int, size int) []byte {
	out := make([]byte, len(raw))
	forEachFortran(shape, func(c, f int) { copy(out[c*size:(c+1)*size], raw[f*size:(f+1)*size]) })
	return out
}

// forEachFortran calls fn with each element's C-order and Fortran-order index.
func forEachFortran(shape []int, fn func(c, f int)) {
	n := 1
	for _, s := range shape {
		n *= s
	}
	idx := make([]int, len(shape))
	for c := 0; c < n; c++ {
		f, stride := 0, 1
		for k := range shape {
			f += idx[k] * stride
			stride *= shape[k]
		}
		fn(c, f)
		for k := len(shape) - 1; k >= 0; k-- {
			idx[k]++
			if idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
	}
}

// Float64s returns the elements converted to float64. Object arrays of
// numbers convert too.
func (a *Array) Float64s() ([]float64, error) {
	if a.Dtype == nil {
		return nil, fmt.Errorf("%w: array without state", ErrCorrupt)
	}
	n := a.Len()
	out := make([]float64, n)
	if a.Dtype.Kind == 'O' {
		for i, v := range a.Objects {
			f, ok := Number(v)
			if !ok {
				return nil, fmt.Errorf("object array element %d is %s, not a number", i, Describe(v))
			}
			out[i] = f
		}
		return out, nil
	}
	sz := a.Dtype.Size
	if len(a.Data) < n*sz {
		return nil, fmt.Errorf("%w: array data too short", ErrCorrupt)
	}
	for i := range out {
		v, err := scalarAt(a.Dtype, a.Data[i*sz:(i+1)*sz])
		if err != nil {
			return nil, err
		}
		f, ok := Number(v)
		if !ok {
			return nil, fmt.Errorf("array of %s is not numeric", a.Dtype)
		}
		out[i] = f
	}
	return out, nil
}

// Strings returns the elements of a str ('U') or object-of-str array.
func (a *Array) Strings() ([]string, error) {
	if a.Dtype == nil {
		return nil, fmt.Errorf("%w: array without state", ErrCorrupt)
	}
	n := a.Len()
	out := make([]string, n)
	switch a.Dtype.Kind {
	case 'O':
		for i, v := range a.Objects {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("object array element %d is %s, not str", i, Describe(v))
			}
			out[i] = s
		}
	case 'U', 'S':
		sz := a.Dtype.Size
		for i := range out {
			v, err := scalarAt(a.Dtype, a.Data[i*sz:(i+1)*sz])
			if err != nil {
				return nil, err
			}
			out[i] = v.(string)
		}
	default:
		return nil, fmt.Errorf("array of %s holds no strings", a.Dtype)
	}
	return out, nil
}

// FieldFloat64s returns one field of a structured array as float64s.
func (a *Array) FieldFloat64s(name string) ([]float64, error) {
	if a.Dtype == nil {
		return nil, fmt.Errorf("%w: array without state", ErrCorrupt)
	}
	f, ok := a.Dtype.Field(name)
	if !ok {
		return nil, fmt.Errorf("structured array has no field %q", name)
	}
	n, sz := a.Len(), a.Dtype.Size
	if len(a.Data) < n*sz {
		return nil, fmt.Errorf("%w: array data too short", ErrCorrupt)
	}
	out := make([]float64, n)
	for i := range out {
		rec := a.Data[i*sz+f.Offset : i*sz+f.Offset+f.Dtype.Size]
		v, err := scalarAt(f.Dtype, rec)
		if err != nil {
			return nil, err
		}
		x, ok := Number(v)
		if !ok {
			return nil, fmt.Errorf("field %q is not numeric", name)
		}
		out[i] = x
	}
	return out, nil
}

// scalarAt decodes one little-endian element.
func scalarAt(d *Dtype, b []byte) (any, error) {
	if len(b) < d.Size {
		return nil, fmt.Errorf("%w: scalar of %s has %d bytes", ErrCorrupt, d, len(b))
	}
	switch d.Kind {
	case 'f':
		if d.Size == 4 {
			return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), nil
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case 'i':
		switch d.Size {
		case 1:
			return int64(int8(b[0])), nil
		case 2:
			return int64(int16(binary.LittleEndian.Uint16(b))), nil
		case 4:
			return int64(int32(binary.LittleEndian.Uint32(b))), nil
		default:
			return int64(binary.LittleEndian.Uint64(b)), nil
		}
	case 'u':
		switch d.Size {
		case 1:
			return int64(b[0]), nil
		case 2:
			return int64(binary.LittleEndian.Uint16(b)), nil
		case 4:
			return int64(binary.LittleEndian.Uint32(b)), nil
		default:
			return float64(binary.LittleEndian.Uint64(b)), nil
		}
	case 'b':
		return b[0] != 0, nil
	case 'U':
		rs := make([]rune, 0, d.Size/4)
		for i := 0; i+4 <= d.Size; i += 4 {
			r := rune(binary.LittleEndian.Uint32(b[i:]))
			if r == 0 {
				break
			}
			if !utf8.ValidRune(r) {
				return nil, fmt.Errorf("%w: invalid code point in numpy str", ErrCorrupt)
			}
			rs = append(rs, r)
		}
		return string(rs), nil
	case 'S':
		end := d.Size
		for end > 0 && b[end-1] == 0 {
			end--
		}
		return string(b[:end]), nil
	}
	return nil, fmt.Errorf("%w: scalar of numpy dtype %s", ErrUnsupported, d)
}

// Number converts a decoded numeric value (bool, int, float) to float64.
func Number(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
