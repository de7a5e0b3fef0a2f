package v1

import (
	"errors"
	"fmt"
	"math"
	"testing"

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
	for _, bad := range []string{`[]`, `{}`, `{"instances":5}`, `{"instances":[1],"inputs":[1]}`, `{"instances":[1`, `{"instances":[]}`} {
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
