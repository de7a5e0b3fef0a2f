package tensor

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestBinaryRoundTrip(t *testing.T) {
	tests := []struct {
		dt   DataType
		data any
	}{
		{Bool, []bool{true, false, true, true}},
		{Uint8, []uint8{0, 1, 255, 7}},
		{Uint16, []uint16{0, 1, 65535, 7}},
		{Uint32, []uint32{0, 1, math.MaxUint32, 7}},
		{Uint64, []uint64{0, 1, math.MaxUint64, 7}},
		{Int8, []int8{-128, 1, 127, -7}},
		{Int16, []int16{-32768, 1, 32767, -7}},
		{Int32, []int32{math.MinInt32, 1, math.MaxInt32, -7}},
		{Int64, []int64{math.MinInt64, 1, math.MaxInt64, -7}},
		{FP16, []uint16{0x3c00, 0xc000, 0x7bff, 0x0001}},
		{BF16, []uint16{0x3f80, 0xc000, 0x7f7f, 0x0001}},
		{FP32, []float32{1.5, -2, float32(math.Inf(1)), 3.25}},
		{FP64, []float64{1.5, -2, math.MaxFloat64, 1e-300}},
		{Bytes, [][]byte{[]byte("a"), {}, []byte("héllo"), {0, 1, 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.dt.String(), func(t *testing.T) {
			in := &Tensor{Name: "x", Datatype: tc.dt, Shape: []int64{2, 2}, Data: tc.data}
			if err := in.Validate(); err != nil {
				t.Fatal(err)
			}
			raw := in.AppendBinary(nil)
			if len(raw) != in.BinarySize() {
				t.Fatalf("AppendBinary wrote %d bytes, BinarySize says %d", len(raw), in.BinarySize())
			}
			out, err := FromBinary("x", tc.dt, []int64{2, 2}, raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out.Data, tc.data) {
				t.Fatalf("round trip: got %v, want %v", out.Data, tc.data)
			}
		})
	}
}

func TestFromBinaryErrors(t *testing.T) {
	tests := []struct {
		name  string
		dt    DataType
		shape []int64
		raw   []byte
	}{
		{"short fp32", FP32, []int64{2}, make([]byte, 7)},
		{"long fp32", FP32, []int64{2}, make([]byte, 9)},
		{"negative dim", FP32, []int64{-1}, nil},
		{"bytes truncated prefix", Bytes, []int64{1}, []byte{1, 0}},
		{"bytes length past end", Bytes, []int64{1}, []byte{9, 0, 0, 0, 'a'}},
		{"bytes trailing", Bytes, []int64{1}, []byte{1, 0, 0, 0, 'a', 'b'}},
		{"bytes count too large", Bytes, []int64{1 << 40}, []byte{0, 0, 0, 0}},
		{"invalid datatype", Invalid, []int64{1}, []byte{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromBinary("x", tc.dt, tc.shape, tc.raw)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestHalf(t *testing.T) {
	tests := []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {0.5, 0x3800},
		{5.960464477539063e-08, 0x0001}, // smallest subnormal
		{float32(math.Inf(1)), 0x7c00},
		{1e6, 0x7c00}, // overflow rounds to +Inf
	}
	for _, tc := range tests {
		if got := Float32ToHalf(tc.f); got != tc.h {
			t.Errorf("Float32ToHalf(%v) = %#04x, want %#04x", tc.f, got, tc.h)
		}
		if tc.f <= 65504 {
			if got := HalfToFloat32(tc.h); got != tc.f {
				t.Errorf("HalfToFloat32(%#04x) = %v, want %v", tc.h, got, tc.f)
			}
		}
	}
	// Every finite half survives a round trip through float32.
	for h := range uint32(0x7c00) {
		if back := Float32ToHalf(HalfToFloat32(uint16(h))); back != uint16(h) {
			t.Fatalf("half %#04x -> %v -> %#04x", h, HalfToFloat32(uint16(h)), back)
		}
	}
	if !math.IsNaN(float64(HalfToFloat32(Float32ToHalf(float32(math.NaN()))))) {
		t.Error("NaN does not survive")
	}
}

func TestBF16(t *testing.T) {
	if got := Float32ToBF16(1); got != 0x3f80 {
		t.Errorf("bf16(1) = %#x", got)
	}
	if got := BF16ToFloat32(0xc000); got != -2 {
		t.Errorf("bf16 0xc000 = %v", got)
	}
	// 1 + 2^-8 is exactly halfway between two bf16 values: ties to even (1).
	if got := Float32ToBF16(1 + 1.0/256); got != 0x3f80 {
		t.Errorf("tie rounding = %#x, want 0x3f80", got)
	}
}

func TestValidateAndConvert(t *testing.T) {
	bad := &Tensor{Name: "x", Datatype: FP32, Shape: []int64{2, 2}, Data: []float64{1, 2, 3, 4}}
	if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("type mismatch not caught: %v", err)
	}
	short := &Tensor{Name: "x", Datatype: FP32, Shape: []int64{2, 2}, Data: []float32{1, 2, 3}}
	if err := short.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("count mismatch not caught: %v", err)
	}
	i := &Tensor{Name: "x", Datatype: Int16, Shape: []int64{3}, Data: []int16{-1, 0, 7}}
	f, err := i.Float32s()
	if err != nil || !reflect.DeepEqual(f, []float32{-1, 0, 7}) {
		t.Fatalf("Float32s = %v, %v", f, err)
	}
	h := &Tensor{Name: "x", Datatype: FP16, Shape: []int64{1}, Data: []uint16{0x3c00}}
	d, err := h.Float64s()
	if err != nil || d[0] != 1 {
		t.Fatalf("FP16 Float64s = %v, %v", d, err)
	}
	s := &Tensor{Name: "x", Datatype: Bytes, Shape: []int64{1}, Data: [][]byte{[]byte("a")}}
	if _, err := s.Float64s(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("BYTES converted to numbers: %v", err)
	}
	if NumElements([]int64{1 << 62, 4}) != -1 {
		t.Fatal("overflow not detected")
	}
}

func FuzzFromBinary(f *testing.F) {
	f.Add(uint8(Bytes), int64(2), []byte{1, 0, 0, 0, 'a', 0, 0, 0, 0})
	f.Add(uint8(FP32), int64(1), []byte{0, 0, 128, 63})
	f.Add(uint8(Bool), int64(3), []byte{1, 0, 1})
	f.Fuzz(func(t *testing.T, dt uint8, n int64, raw []byte) {
		x, err := FromBinary("f", DataType(dt%15), []int64{n}, raw)
		if err != nil {
			return
		}
		if err := x.Validate(); err != nil {
			t.Fatalf("FromBinary returned an invalid tensor: %v", err)
		}
		if got := x.AppendBinary(nil); string(got) != string(raw) && x.Datatype != Bool {
			t.Fatalf("re-encoding differs: %x vs %x", got, raw)
		}
	})
}
