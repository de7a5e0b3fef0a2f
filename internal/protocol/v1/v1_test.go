package v1

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ferryserve/ferry/internal/protocol"
	"github.com/ferryserve/ferry/internal/tensor"
)

func TestDecodeInstances(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantShape []int64
		wantData  []float64
		records   int
	}{
		{"rows", `{"instances":[[1,2],[3,4]]}`, []int64{2, 2}, []float64{1, 2, 3, 4}, 0},
		{"inputs key", `{"inputs":[[1.5]]}`, []int64{1, 1}, []float64{1.5}, 0},
		{"scalars", `{"instances":[1,2,3]}`, []int64{3, 1}, []float64{1, 2, 3}, 0},
		{"null missing", `{"instances":[[null,2]]}`, []int64{1, 2}, []float64{math.NaN(), 2}, 0},
		{"objects", `{"instances":[{"a":1,"b":"x"}]}`, nil, nil, 1},
		{"strings", `{"instances":[[1,"red"],[2,"blue"]]}`, nil, nil, 2},
		{"ragged", `{"instances":[[1,2],[3]]}`, nil, nil, 2},
		{"empty row then number", `{"instances":[[],1]}`, nil, nil, 2},
		{"empty rows then number", `{"inputs":[[],[],5]}`, nil, nil, 3},
		{"number then row of one", `{"instances":[1,[2]]}`, []int64{2, 1}, []float64{1, 2}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := decodeInstances([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantShape == nil {
				if in.tensor != nil || len(in.records) != tc.records {
					t.Fatalf("got tensor %v records %v", in.tensor, in.records)
				}
				return
			}
			got := in.tensor.Data.([]float64)
			if len(in.tensor.Shape) != 2 || in.tensor.Shape[0] != tc.wantShape[0] || in.tensor.Shape[1] != tc.wantShape[1] {
				t.Fatalf("shape %v, want %v", in.tensor.Shape, tc.wantShape)
			}
			for i := range got {
				if got[i] != tc.wantData[i] && !(math.IsNaN(got[i]) && math.IsNaN(tc.wantData[i])) {
					t.Fatalf("data %v, want %v", got, tc.wantData)
				}
			}
		})
	}
	for _, bad := range []string{`[]`, `{}`, `{"instances":5}`, `{"instances":[1],"inputs":[1]}`, `{"instances":[1`, `{"instances":[]}`,
		`{"instances":[[1]]}]`, "{\"instances\":[[1]]}\x00", `{"instances":[["a"]]}x`, `{"instances":[{"a":1}]} {}`} {
		if _, err := decodeInstances([]byte(bad)); !errors.Is(err, protocol.ErrBadRequest) {
			t.Errorf("%s: err = %v, want ErrBadRequest", bad, err)
		}
	}
}

func TestAppendNested(t *testing.T) {
	tests := []struct {
		t    *tensor.Tensor
		want string
	}{
		{&tensor.Tensor{Datatype: tensor.FP32, Shape: []int64{2}, Data: []float32{1, 2}}, `[1,2]`},
		{&tensor.Tensor{Datatype: tensor.FP64, Shape: []int64{2, 3}, Data: []float64{1, 2, 3, 4, 5, 6}}, `[[1,2,3],[4,5,6]]`},
		{&tensor.Tensor{Datatype: tensor.Int64, Shape: []int64{2, 1, 2}, Data: []int64{1, 2, 3, 4}}, `[[[1,2]],[[3,4]]]`},
		{&tensor.Tensor{Datatype: tensor.Bytes, Shape: []int64{1, 2}, Data: [][]byte{[]byte("a"), []byte("b")}}, `[["a","b"]]`},
	}
	for _, tc := range tests {
		if got := string(AppendNested(nil, tc.t)); got != tc.want {
			t.Errorf("AppendNested = %s, want %s", got, tc.want)
		}
	}
}

func FuzzDecodeInstances(f *testing.F) {
	for _, s := range []string{`{"instances":[[1,2],[3,4]]}`, `{"inputs":[{"a":1}]}`, `{"instances":[1,null,"x"]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := decodeInstances(body)
		if err != nil {
			if !errors.Is(err, protocol.ErrBadRequest) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if in.tensor != nil {
			if err := in.tensor.Validate(); err != nil {
				t.Fatalf("invalid tensor: %v", err)
			}
		}
	})
}

func BenchmarkDecodeInstances(b *testing.B) {
	for _, rows := range []int{1, 64} {
		var sb []byte
		sb = append(sb, `{"instances":[`...)
		for r := range rows {
			if r > 0 {
				sb = append(sb, ',')
			}
			sb = append(sb, `[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2,1.3,1.4,1.5,1.6,1.7,1.8,1.9,2.0]`...)
		}
		sb = append(sb, "]}"...)
		b.Run(fmt.Sprint(rows), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeInstances(sb); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestStringInstances: documents for text models come as a BYTES tensor
// [rows] (or [rows, 1] for one-string rows), with the records kept for
// models that take named fields.
func TestStringInstances(t *testing.T) {
	for body, shape := range map[string][]int64{
		`{"instances":["a good film","dull"]}`:     {2},
		`{"instances":[["a good film"],["dull"]]}`: {2, 1},
		`{"instances":["a", ["b"]]}`:               nil,
		`{"instances":["a", 1]}`:                   nil,
		`{"instances":[["a", "b"]]}`:               nil,
	} {
		in, err := decodeInstances([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if len(in.records) == 0 {
			t.Errorf("%s: records dropped", body)
		}
		if shape == nil {
			if in.tensor != nil {
				t.Errorf("%s: tensor %v", body, in.tensor)
			}
			continue
		}
		if in.tensor == nil || in.tensor.Datatype != tensor.Bytes || fmt.Sprint(in.tensor.Shape) != fmt.Sprint(shape) || string(in.tensor.Data.([][]byte)[0]) != "a good film" {
			t.Errorf("%s: %+v", body, in.tensor)
		}
	}
}

// FuzzNumericRows checks numericRows's scanner against a reading of the
// same value token by token (numericRowsTokens, what it replaced): for any
// valid JSON value both accept the same values, and give the same shape
// and bit-identical numbers.
func FuzzNumericRows(f *testing.F) {
	for _, s := range []string{`[[1,2],[3,4]]`, `[1, null ,2e3]`, ` [ [ -0.5 , 1E-400 ] ] `, `[[],[]]`, `[[1],2]`, `[2,[1,3]]`,
		`[1e400]`, `["a"]`, `[[1,"2"]]`, `[[[1]]]`, `[]`, `[{"a":1}]`, `[true]`, `[[1,2],[3]]`, "[\t1\r\n]", `[[],1]`, `[[],[],2]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !jsontext.Value(raw).IsValid() {
			return
		}
		got, gotOK := numericRows(raw)
		want, wantOK := numericRowsTokens(raw)
		if gotOK != wantOK {
			t.Fatalf("%q: scanner ok=%v, tokens ok=%v", raw, gotOK, wantOK)
		}
		if !gotOK {
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
			t.Fatalf("%q: shape %v, want %v", raw, got.Shape, want.Shape)
		}
		g, w := got.Data.([]float64), want.Data.([]float64)
		if len(g) != len(w) {
			t.Fatalf("%q: %d values, want %d", raw, len(g), len(w))
		}
		for i := range g {
			if math.Float64bits(g[i]) != math.Float64bits(w[i]) && !(math.IsNaN(g[i]) && math.IsNaN(w[i])) {
				t.Fatalf("%q: value %d = %v, want %v", raw, i, g[i], w[i])
			}
		}
	})
}

// numericRowsTokens is the token-by-token reading numericRows replaced,
// kept as FuzzNumericRows's reference.
func numericRowsTokens(raw []byte) (*tensor.Tensor, bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return nil, false
	}
	number := func() (float64, bool) {
		tok, err := dec.ReadToken()
		if err != nil {
			return 0, false
		}
		switch tok.Kind() {
		case '0':
			f, err := tok.Float()
			return f, err == nil
		case 'n':
			return math.NaN(), true
		}
		return 0, false
	}
	var data []float64
	rows, cols := 0, -1
	for dec.PeekKind() != ']' {
		if dec.PeekKind() == '[' {
			_, _ = dec.ReadToken()
			n := 0
			for dec.PeekKind() != ']' {
				f, ok := number()
				if !ok {
					return nil, false
				}
				data = append(data, f)
				n++
			}
			if _, err := dec.ReadToken(); err != nil {
				return nil, false
			}
			if cols >= 0 && n != cols {
				return nil, false
			}
			cols = n
		} else {
			f, ok := number()
			if !ok || cols >= 0 && cols != 1 {
				return nil, false
			}
			data = append(data, f)
			cols = 1
		}
		rows++
	}
	if rows == 0 {
		return nil, false
	}
	return &tensor.Tensor{Datatype: tensor.FP64, Shape: []int64{int64(rows), int64(cols)}, Data: data}, true
}

// FuzzScanInstances checks scanInstances against decodeInstances's general
// reading: whatever the fast path accepts, the general one accepts as the
// same tensor, bit for bit.
func FuzzScanInstances(f *testing.F) {
	for _, s := range []string{`{"instances":[[1,2],[3,4]]}`, ` { "inputs" : [ 1 , null , -2.5e-3 ] } `, `{"instances":[[1],2]}`,
		`{"instances":[[1,2],[3]]}`, `{"instances":[1e400]}`, `{"instances":[[01]]}`, `{"instances":[[1,]]}`, `{"instances":[[1]]}x`,
		`{"instances":[[1]],"instances":[[2]]}`, `{"instances":[]}`, `{"instances":[[]]}`, `{"instances":["a"]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkScanInstances)
}

// checkScanInstances fails t when scanInstances takes body but the general
// reading refuses it, reads it as records or as another tensor, or when the
// tensor does not hold what its shape says.
func checkScanInstances(t *testing.T, body []byte) {
	t.Helper()
	got, ok := scanInstances(body)
	if !ok {
		return
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	scanBodies = false
	want, err := decodeInstances(body)
	scanBodies = true
	if err != nil || want.tensor == nil || want.records != nil {
		t.Fatalf("%q: scanned, but the general reading gives %+v, %v", body, want, err)
	}
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.tensor.Shape) || got.Name != want.tensor.Name || got.Datatype != want.tensor.Datatype {
		t.Fatalf("%q: %v %v, want %v %v", body, got.Datatype, got.Shape, want.tensor.Datatype, want.tensor.Shape)
	}
	g, w := got.Data.([]float64), want.tensor.Data.([]float64)
	if len(g) != len(w) {
		t.Fatalf("%q: %d values, want %d", body, len(g), len(w))
	}
	for i := range g {
		if math.Float64bits(g[i]) != math.Float64bits(w[i]) && !(math.IsNaN(g[i]) && math.IsNaN(w[i])) {
			t.Fatalf("%q: value %d = %v, want %v", body, i, g[i], w[i])
		}
	}
}

// TestScanInstancesEdits truncates, cuts and overwrites bodies the fast
// path takes at every byte: it must not panic, and whatever it still takes
// must read as the general reading reads it. Every edited body must also
// decode without panicking.
func TestScanInstancesEdits(t *testing.T) {
	subst := []byte{' ', '\f', '\v', 0, 0x7f, 0xff, '"', '\\', ',', ':', '[', ']', '{', '}', '-', '+', '.', 'e', '0', 'n', 'x'}
	bodies := []string{
		`{"instances":[[1,2],[3,null]]}`,
		` { "inputs" : [ 1 , null , -2.5e-3 , 1E5 , -0 ] } ` + "\r\n\t",
		`{"instances":[[],[]]}`,
	}
	b1, err := os.ReadFile(filepath.Join("../../../bench/payloads", "v1-b1.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range append(bodies, string(b1)) {
		if _, ok := scanInstances([]byte(body)); !ok {
			t.Fatalf("not scanned: %s", body)
		}
		check := func(b []byte) {
			checkScanInstances(t, b)
			if in, err := decodeInstances(b); err == nil && in.tensor != nil {
				if err := in.tensor.Validate(); err != nil {
					t.Fatalf("%q: %v", b, err)
				}
			}
		}
		for i := range len(body) + 1 {
			check([]byte(body[:i]))
			if i == len(body) {
				break
			}
			check([]byte(body[:i] + body[i+1:]))
			for _, c := range subst {
				b := []byte(body)
				b[i] = c
				check(b)
				check([]byte(body[:i] + string(c) + body[i:]))
			}
		}
	}
}

// TestScanInstancesTakesCommonRequests: the requests of bench/payloads take
// the fast path.
func TestScanInstancesTakesCommonRequests(t *testing.T) {
	for _, name := range []string{"v1-b1.json", "v1-b64.json"} {
		body, err := os.ReadFile(filepath.Join("../../../bench/payloads", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := scanInstances(body); !ok {
			t.Errorf("%s: not scanned", name)
		}
	}
}
