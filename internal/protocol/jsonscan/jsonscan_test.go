package jsonscan

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"
)

// FuzzFloat checks that a number the scanner reads is valid JSON with the
// same value, and that null reads as NaN.
func FuzzFloat(f *testing.F) {
	for _, s := range []string{"0", "-0", "1.5e3", " 2 ", "01", "1.", ".5", "-", "1e", "1e+", "null", "nul", "1E-400", "1e400", "+1", "0x1p3", "Infinity", "1_0"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := New(b)
		got, ok := s.Float()
		if !ok || !s.End() {
			return
		}
		var want *float64
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("%q: scanned %v, but encoding/json refuses: %v", b, got, err)
		}
		if want == nil {
			if !math.IsNaN(got) {
				t.Fatalf("%q: null read as %v", b, got)
			}
			return
		}
		if math.Float64bits(got) != math.Float64bits(*want) {
			t.Fatalf("%q: %v, want %v", b, got, *want)
		}
	})
}

// FuzzFloats checks that a list the scanner reads is valid JSON.
func FuzzFloats(f *testing.F) {
	for _, s := range []string{"[]", "[[1,2],[3,null]]", "[1,]", "[,1]", "[[]", "[1 2]", "[[[[1]]]]", "[1],", "[-0.0e-0]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := New(b)
		got, ok := Floats(&s, []float64(nil), 3, 100)
		if !ok || !s.End() {
			return
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%q: scanned %v, but encoding/json refuses: %v", b, got, err)
		}
		if len(got) > 100 {
			t.Fatalf("%q: %d values over the bound", b, len(got))
		}
	})
}

func TestStrKeyNext(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`{"a": 1}`, true},
		{`{"a\"": 1}`, false},    // escapes go to the general decoder
		{`{"é": 1}`, true},       // valid UTF-8 is its own value
		{"{\"\xff\": 1}", false}, // invalid UTF-8 a decoder would replace
		{"{\"a\x01\": 1}", false},
		{`{"a" 1}`, false},
		{`{"a`, false},
	}
	for _, tc := range tests {
		s := New([]byte(tc.in))
		ok := s.Byte('{')
		_, kok := s.Key()
		if ok && kok != tc.want {
			t.Errorf("%s: key ok=%v, want %v", tc.in, kok, tc.want)
		}
	}
	s := New([]byte(`[1 , ]`))
	s.Byte('[')
	s.Float()
	if _, ok := s.Next(']'); ok {
		t.Error("a trailing comma was taken")
	}
}

func TestNumberBool(t *testing.T) {
	tests := []struct {
		in   string
		want any // nil: refused
	}{
		{"12", int64(12)},
		{" -0", int64(0)},
		{"-123456789012345", int64(-123456789012345)},
		{"1234567890123456", int64(1234567890123456)},
		{"-9223372036854775808", int64(-9223372036854775808)},
		{"9223372036854775808", nil}, // past int64: left to the general decoder
		{"1.5", 1.5},
		{"2e3", 2000.0},
		{"1e999", nil},
		{"01", int64(0)}, // "0", then a stray "1" the caller's Next refuses
		{"true", nil},
	}
	for _, tc := range tests {
		s := New([]byte(tc.in))
		got, ok := s.Number()
		if (tc.want == nil) != !ok || ok && got != tc.want {
			t.Errorf("Number(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
	}
	for in, want := range map[string]bool{" true": true, "false": false} {
		s := New([]byte(in))
		if got, ok := s.Bool(); !ok || got != want || !s.End() {
			t.Errorf("Bool(%q) = %v, %v", in, got, ok)
		}
	}
	s := New([]byte("tru"))
	if _, ok := s.Bool(); ok {
		t.Error(`Bool("tru") accepted`)
	}
}

// exactFloat and ParseFloat agree bit for bit wherever exactFloat answers.
func FuzzExactFloat(f *testing.F) {
	for _, s := range []string{"0.0055", "-0", "0", "1e22", "9007199254740992", "9007199254740993", "0.97116977", "1.5e-7", "123456789.123", "-2.5E+3", "1e-22", "0e999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc := New([]byte(s))
		num, _, ok := sc.Num()
		if !ok || string(num) != s {
			return
		}
		got, ok := exactFloat(num)
		if !ok {
			return
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("exactFloat(%q) = %v; ParseFloat %v %v", s, got, want, err)
		}
	})
}
