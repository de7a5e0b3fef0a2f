package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// FromBinary decodes raw little-endian, row-major bytes into a tensor of the
// given datatype and shape. BYTES elements are each a 4-byte little-endian
// length followed by that many bytes. The returned tensor does not alias raw
// except for BYTES elements, which are sub-slices of raw.
func FromBinary(name string, d DataType, shape []int64, raw []byte) (*Tensor, error) {
	n := NumElements(shape)
	if n < 0 {
		return nil, fmt.Errorf("%w: tensor %q: shape %v has a negative dimension", ErrInvalid, name, shape)
	}
	t := &Tensor{Name: name, Datatype: d, Shape: shape}
	if d == Bytes {
		elems, err := splitBytes(name, raw, n)
		if err != nil {
			return nil, err
		}
		t.Data = elems
		return t, nil
	}
	size := d.Size()
	if size == 0 {
		return nil, fmt.Errorf("%w: tensor %q: unsupported datatype %s", ErrInvalid, name, d)
	}
	if int64(len(raw)) != n*int64(size) {
		return nil, fmt.Errorf("%w: tensor %q: %s shape %v needs %d bytes of binary data, got %d", ErrInvalid, name, d, shape, n*int64(size), len(raw))
	}
	data, err := MakeData(d, int(n))
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	switch v := data.(type) {
	case []bool:
		for i := range v {
			v[i] = raw[i] != 0
		}
	case []uint8:
		copy(v, raw)
	case []int8:
		for i := range v {
			v[i] = int8(raw[i])
		}
	case []uint16:
		for i := range v {
			v[i] = le.Uint16(raw[2*i:])
		}
	case []int16:
		for i := range v {
			v[i] = int16(le.Uint16(raw[2*i:]))
		}
	case []uint32:
		for i := range v {
			v[i] = le.Uint32(raw[4*i:])
		}
	case []int32:
		for i := range v {
			v[i] = int32(le.Uint32(raw[4*i:]))
		}
	case []float32:
		for i := range v {
			v[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case []uint64:
		for i := range v {
			v[i] = le.Uint64(raw[8*i:])
		}
	case []int64:
		for i := range v {
			v[i] = int64(le.Uint64(raw[8*i:]))
		}
	case []float64:
		for i := range v {
			v[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
	}
	t.Data = data
	return t, nil
}

func splitBytes(name string, raw []byte, n int64) ([][]byte, error) {
	if n > int64(len(raw))/4 {
		return nil, fmt.Errorf("%w: tensor %q: BYTES data too short for %d elements", ErrInvalid, name, n)
	}
	out := make([][]byte, 0, n)
	for i := int64(0); i < n; i++ {
		if len(raw) < 4 {
			return nil, fmt.Errorf("%w: tensor %q: BYTES element %d: truncated length prefix", ErrInvalid, name, i)
		}
		l := binary.LittleEndian.Uint32(raw)
		raw = raw[4:]
		if uint64(l) > uint64(len(raw)) {
			return nil, fmt.Errorf("%w: tensor %q: BYTES element %d: length %d exceeds the %d bytes left", ErrInvalid, name, i, l, len(raw))
		}
		out = append(out, raw[:l:l])
		raw = raw[l:]
	}
	if len(raw) != 0 {
		return nil, fmt.Errorf("%w: tensor %q: %d trailing bytes after %d BYTES elements", ErrInvalid, name, len(raw), n)
	}
	return out, nil
}

// BinarySize is the number of bytes AppendBinary writes for t.
func (t *Tensor) BinarySize() int {
	if v, ok := t.Data.([][]byte); ok {
		n := 0
		for _, b := range v {
			n += 4 + len(b)
		}
		return n
	}
	return t.Len() * t.Datatype.Size()
}

// AppendBinary appends t's elements in the little-endian binary layout.
func (t *Tensor) AppendBinary(dst []byte) []byte {
	le := binary.LittleEndian
	switch v := t.Data.(type) {
	case []bool:
		for _, x := range v {
			if x {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
			}
		}
	case []uint8:
		dst = append(dst, v...)
	case []int8:
		for _, x := range v {
			dst = append(dst, byte(x))
		}
	case []uint16:
		for _, x := range v {
			dst = le.AppendUint16(dst, x)
		}
	case []int16:
		for _, x := range v {
			dst = le.AppendUint16(dst, uint16(x))
		}
	case []uint32:
		for _, x := range v {
			dst = le.AppendUint32(dst, x)
		}
	case []int32:
		for _, x := range v {
			dst = le.AppendUint32(dst, uint32(x))
		}
	case []float32:
		for _, x := range v {
			dst = le.AppendUint32(dst, math.Float32bits(x))
		}
	case []uint64:
		for _, x := range v {
			dst = le.AppendUint64(dst, x)
		}
	case []int64:
		for _, x := range v {
			dst = le.AppendUint64(dst, uint64(x))
		}
	case []float64:
		for _, x := range v {
			dst = le.AppendUint64(dst, math.Float64bits(x))
		}
	case [][]byte:
		for _, b := range v {
			dst = le.AppendUint32(dst, uint32(len(b)))
			dst = append(dst, b...)
		}
	}
	return dst
}
