package v2

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ferryserve/ferry/internal/tensor"
)

// EncodeResponse appends the JSON form of resp to dst. Outputs for which
// binary reports true are sent in the binary tensor data extension: their
// bytes are appended to bin in output order and their JSON carries
// binary_data_size instead of data. It returns the extended dst and bin.
func EncodeResponse(dst, bin []byte, resp *InferResponse, binary func(name string) bool) ([]byte, []byte) {
	dst = append(dst, `{"model_name":`...)
	dst = appendString(dst, resp.ModelName)
	if resp.ModelVersion != "" {
		dst = append(dst, `,"model_version":`...)
		dst = appendString(dst, resp.ModelVersion)
	}
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, resp.ID)
	if len(resp.Parameters) > 0 {
		dst = append(dst, `,"parameters":`...)
		dst = appendParameters(dst, resp.Parameters)
	}
	dst = append(dst, `,"outputs":[`...)
	for i, t := range resp.Outputs {
		if i > 0 {
			dst = append(dst, ',')
		}
		asBinary := binary != nil && binary(t.Name)
		dst = append(dst, `{"name":`...)
		dst = appendString(dst, t.Name)
		dst = append(dst, `,"datatype":"`...)
		dst = append(dst, t.Datatype.String()...)
		dst = append(dst, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, d, 10)
		}
		dst = append(dst, ']')
		params := t.Parameters
		if asBinary {
			params = make(map[string]any, len(t.Parameters)+1)
			for k, v := range t.Parameters {
				params[k] = v
			}
			params[paramBinarySize] = int64(t.BinarySize())
		}
		if len(params) > 0 {
			dst = append(dst, `,"parameters":`...)
			dst = appendParameters(dst, params)
		}
		if asBinary {
			bin = t.AppendBinary(bin)
		} else {
			dst = append(dst, `,"data":`...)
			dst = AppendData(dst, t)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, "]}"...)
	return dst, bin
}

// AppendData appends a tensor's elements as a flat JSON list. Non-finite
// floats become null (JSON has no NaN); FP16 and BF16 are written as numbers.
func AppendData(dst []byte, t *tensor.Tensor) []byte {
	dst = append(dst, '[')
	dst = AppendElems(dst, t, 0, t.Len())
	return append(dst, ']')
}

// AppendElems appends elements [lo, hi) of t, comma-separated, without
// brackets.
func AppendElems(dst []byte, t *tensor.Tensor, lo, hi int) []byte {
	switch v := t.Data.(type) {
	case []bool:
		for i, x := range v[lo:hi] {
			dst = sep(dst, i)
			dst = strconv.AppendBool(dst, x)
		}
	case []uint8:
		for i, x := range v[lo:hi] {
			dst = sep(dst, i)
			dst = strconv.AppendUint(dst, uint64(x), 10)
		}
	case []uint16:
		for i, x := range v[lo:hi] {
			dst = sep(dst, i)
			switch t.Datatype {
			case tensor.FP16:
				dst = appendFloat(dst, float64(tensor.HalfToFloat32(x)), 32)
			case tensor.BF16:
				dst = appendFloat(dst, float64(tensor.BF16ToFloat32(x)), 32)
			default:
				dst = strconv.AppendUint(dst, uint64(x), 10)
			}
		}
	case []uint32:
		for i, x := range v[lo:hi] {
			dst = sep(dst, i)
			dst = strconv.AppendUint(dst, uint64(x), 10)
		}
	case []uint64:
		for i, x := range v[lo:hi] {
			dst = sep(dst, i)
			dst = strconv.AppendUint(dst, x, 10)
		}
	case []int8:
		for i, x := range v[lo:hi] {
			dst = sep(dst, i)
			dst = strconv.AppendInt(dst, int64(x), 10)
		}
	case []int16:
		for i, x := range v[lo:hi] {
			dst = sep(dst, i)
			dst = strconv.AppendInt(dst, int64(x), 10)
		}
	case []int32:
		for i, x := range v[lo:hi] {
			dst = sep(dst, i)
			dst = strconv.AppendInt(dst, int64(x), 10)
		}
	case []int64:
		for i, x := range v[lo:hi] {
			dst = sep(dst, i)
			dst = strconv.AppendInt(dst, x, 10)
		}
	case []float32:
		for i, x := range v[lo:hi] {
			dst = sep(dst, i)
			dst = appendFloat(dst, float64(x), 32)
		}
	case []float64:
		for i, x := range v[lo:hi] {
			dst = sep(dst, i)
			dst = appendFloat(dst, x, 64)
		}
	case [][]byte:
		for i, x := range v[lo:hi] {
			dst = sep(dst, i)
			dst = appendString(dst, string(x))
		}
	}
	return dst
}

func sep(dst []byte, i int) []byte {
	if i > 0 {
		return append(dst, ',')
	}
	return dst
}

func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return jsontext.AppendFloat(dst, f, bits)
}

func appendString(dst []byte, s string) []byte {
	// On invalid UTF-8 AppendQuote still writes a valid JSON string (with
	// replacement characters) and reports an error we can ignore.
	out, _ := jsontext.AppendQuote(dst, s)
	return out
}

func appendParameters(dst []byte, p map[string]any) []byte {
	b, err := json.Marshal(p)
	if err != nil {
		return append(dst, "{}"...)
	}
	return append(dst, b...)
}
