package tensor

import (
	"fmt"
	"math"
)

// Float32s returns the elements of a numeric tensor as float32, converting
// when needed. FP32 data is returned without copying; callers must not
// modify it.
func (t *Tensor) Float32s() ([]float32, error) {
	if v, ok := t.Data.([]float32); ok && t.Datatype == FP32 {
		return v, nil
	}
	n := t.Len()
	out := make([]float32, n)
	if err := t.each(func(i int, f float64) { out[i] = float32(f) }); err != nil {
		return nil, err
	}
	return out, nil
}

// Float64s returns the elements of a numeric tensor as float64, converting
// when needed. FP64 data is returned without copying.
func (t *Tensor) Float64s() ([]float64, error) {
	if v, ok := t.Data.([]float64); ok && t.Datatype == FP64 {
		return v, nil
	}
	out := make([]float64, t.Len())
	if err := t.each(func(i int, f float64) { out[i] = f }); err != nil {
		return nil, err
	}
	return out, nil
}

// each calls fn with every element converted to float64.
func (t *Tensor) each(fn func(i int, f float64)) error {
	switch v := t.Data.(type) {
	case []bool:
		for i, x := range v {
			if x {
				fn(i, 1)
			} else {
				fn(i, 0)
			}
		}
	case []uint8:
		for i, x := range v {
			fn(i, float64(x))
		}
	case []uint16:
		switch t.Datatype {
		case FP16:
			for i, x := range v {
				fn(i, float64(HalfToFloat32(x)))
			}
		case BF16:
			for i, x := range v {
				fn(i, float64(BF16ToFloat32(x)))
			}
		default:
			for i, x := range v {
				fn(i, float64(x))
			}
		}
	case []uint32:
		for i, x := range v {
			fn(i, float64(x))
		}
	case []uint64:
		for i, x := range v {
			fn(i, float64(x))
		}
	case []int8:
		for i, x := range v {
			fn(i, float64(x))
		}
	case []int16:
		for i, x := range v {
			fn(i, float64(x))
		}
	case []int32:
		for i, x := range v {
			fn(i, float64(x))
		}
	case []int64:
		for i, x := range v {
			fn(i, float64(x))
		}
	case []float32:
		for i, x := range v {
			fn(i, float64(x))
		}
	case []float64:
		for i, x := range v {
			fn(i, x)
		}
	default:
		return fmt.Errorf("%w: tensor %q: datatype %s is not numeric", ErrInvalid, t.Name, t.Datatype)
	}
	return nil
}

// HalfToFloat32 converts IEEE 754 binary16 bits to a float32.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: renormalise
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Float32ToHalf converts a float32 to IEEE 754 binary16 bits, rounding to
// nearest even.
func Float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 // NaN
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	switch {
	case e >= 0x1f:
		return sign | 0x7c00
	case e <= 0:
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		half := uint16(mant >> shift)
		rem := mant & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | half
	}
	half := uint16(e)<<10 | uint16(mant>>13)
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, which is the correct rounding
	}
	return sign | half
}

// BF16ToFloat32 converts bfloat16 bits to a float32.
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBF16 converts a float32 to bfloat16 bits, rounding to nearest even.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
