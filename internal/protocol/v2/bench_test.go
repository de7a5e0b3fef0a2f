package v2

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/tensor"
)

func jsonBody(rows, cols int) []byte {
	var b strings.Builder
	b.WriteString(`{"id":"b","inputs":[{"name":"input-0","shape":[` + strconv.Itoa(rows) + `,` + strconv.Itoa(cols) + `],"datatype":"FP32","data":[`)
	for i := range rows * cols {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(float64(i%97)*0.731, 'g', -1, 32))
	}
	b.WriteString(`]}]}`)
	return []byte(b.String())
}

func BenchmarkDecodeJSON(b *testing.B) {
	for _, size := range []struct{ rows, cols int }{{1, 20}, {64, 20}, {50000, 20}} {
		body := jsonBody(size.rows, size.cols)
		b.Run(strconv.Itoa(size.rows)+"x"+strconv.Itoa(size.cols), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeRequest(body, -1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeBinary(b *testing.B) {
	for _, n := range []int{20, 64 * 20, 1 << 20} {
		js := `{"inputs":[{"name":"input-0","shape":[` + strconv.Itoa(n) + `],"datatype":"FP32","parameters":{"binary_data_size":` + strconv.Itoa(4*n) + `}}]}`
		body := []byte(js)
		for i := range n {
			body = binary.LittleEndian.AppendUint32(body, math.Float32bits(float32(i)))
		}
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeRequest(body, len(js)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeJSON(b *testing.B) {
	for _, n := range []int{1, 64, 50000} {
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i) * 0.37
		}
		resp := &InferResponse{ModelName: "m", ID: "x", Outputs: []*tensor.Tensor{{Name: "predict", Datatype: tensor.FP32, Shape: []int64{int64(n)}, Data: data}}}
		buf := make([]byte, 0, 1<<20)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = EncodeResponse(buf[:0], nil, resp, nil)
			}
		})
	}
}
