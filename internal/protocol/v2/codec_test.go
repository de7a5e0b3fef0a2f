package v2

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/protocol"
	"github.com/ferryserve/ferry/internal/tensor"
)

func TestDecodeRequestDatatypes(t *testing.T) {
	tests := []struct {
		dt   string
		data string
		want any
	}{
		{"BOOL", `[[true,false]]`, []bool{true, false}},
		{"UINT8", `[0,255]`, []uint8{0, 255}},
		{"UINT16", `[0,65535]`, []uint16{0, 65535}},
		{"UINT32", `[0,4294967295]`, []uint32{0, 4294967295}},
		{"UINT64", `[0,18446744073709551615]`, []uint64{0, math.MaxUint64}},
		{"INT8", `[-128,127]`, []int8{-128, 127}},
		{"INT16", `[-32768,32767]`, []int16{-32768, 32767}},
		{"INT32", `[-2147483648,2147483647]`, []int32{math.MinInt32, math.MaxInt32}},
		{"INT64", `[-9223372036854775808,9223372036854775807]`, []int64{math.MinInt64, math.MaxInt64}},
		{"FP16", `[1,-2]`, []uint16{0x3c00, 0xc000}},
		{"BF16", `[1,-2]`, []uint16{0x3f80, 0xc000}},
		{"FP32", `[[0.1],[1e-3]]`, []float32{0.1, 1e-3}},
		{"FP64", `[0.1,"Infinity"]`, []float64{0.1, math.Inf(1)}},
		{"BYTES", `["a","héllo"]`, [][]byte{[]byte("a"), []byte("héllo")}},
	}
	for _, tc := range tests {
		t.Run(tc.dt, func(t *testing.T) {
			body := `{"inputs":[{"name":"x","datatype":"` + tc.dt + `","shape":[2],"data":` + tc.data + `}]}`
			req, err := DecodeRequest([]byte(body), -1)
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Inputs[0].Data; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("data = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestDecodeRequestFields(t *testing.T) {
	body := `{"id":"r1","parameters":{"a":1,"b":"s","c":true,"d":1.5},
	  "inputs":[{"data":[[1,null]],"shape":[1,2],"datatype":"FP32","name":"x","parameters":{"p":2}}],
	  "outputs":[{"name":"y","parameters":{"binary_data":true}}],"extra":{"ignored":[1]}}`
	req, err := DecodeRequest([]byte(body), -1)
	if err != nil {
		t.Fatal(err)
	}
	if req.ID != "r1" || req.Parameters["a"] != int64(1) || req.Parameters["b"] != "s" || req.Parameters["c"] != true || req.Parameters["d"] != 1.5 {
		t.Fatalf("request fields: %+v", req)
	}
	x := req.Inputs[0]
	d := x.Data.([]float32)
	if x.Name != "x" || !reflect.DeepEqual(x.Shape, []int64{1, 2}) || d[0] != 1 || !math.IsNaN(float64(d[1])) || x.Parameters["p"] != int64(2) {
		t.Fatalf("input: %+v", x)
	}
	if len(req.Outputs) != 1 || req.Outputs[0].Name != "y" || !req.wantsBinary("y") || req.wantsBinary("z") {
		t.Fatalf("outputs: %+v", req.Outputs)
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"not an object", `[1]`, "request must be an object"},
		{"truncated", `{"inputs":[{"name":"x"`, "malformed JSON"},
		{"trailing data", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]} {}`, "after the JSON request object"},
		{"trailing bracket", `{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1]}]}]`, "after the JSON request object"},
		{"trailing NUL", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT32\",\"data\":[1]}]}\x00", "after the JSON request object"},
		{"trailing form feed", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}\f", "after the JSON request object"},
		{"no inputs", `{"inputs":[]}`, `"inputs" is required`},
		{"no name", `{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}`, `"name" is required`},
		{"no datatype", `{"inputs":[{"name":"x","shape":[1],"data":[1]}]}`, `"datatype" is required`},
		{"no shape", `{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}`, `"shape" is required`},
		{"no data", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}`, `"data" is required`},
		{"negative dim", `{"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]}`, "non-negative integers"},
		{"fractional dim", `{"inputs":[{"name":"x","shape":[1.5],"datatype":"FP32","data":[1]}]}`, "non-negative integers"},
		{"huge shape", `{"inputs":[{"name":"x","shape":[4294967296,4294967296],"datatype":"FP32","data":[1]}]}`, "too large"},
		{"too few elements", `{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2]}]}`, "needs 3 elements, data has 2"},
		{"string in FP32", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["a"]}]}`, `data[0]: expected a FP32 (number or null) value, got "a"`},
		{"float in INT32", `{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1.5]}]}`, "expected an INT32"},
		{"out of range UINT8", `{"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[256]}]}`, "expected an UINT8"},
		{"negative UINT64", `{"inputs":[{"name":"x","shape":[1],"datatype":"UINT64","data":[-1]}]}`, "expected an UINT64"},
		{"number in BOOL", `{"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[1]}]}`, "expected a BOOL"},
		{"object in data", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[{}]}]}`, "got an object"},
		{"data and binary", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]}`, "both"},
		{"binary without header", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`, "no Inference-Header-Content-Length"},
		{"bad binary size", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":"4"}}]}`, "non-negative integer"},
		{"deep nesting", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":` + strings.Repeat("[", 40) + `1` + strings.Repeat("]", 40) + `}]}`, "nested deeper"},
		{"parameters not object", `{"parameters":[1],"inputs":[]}`, "parameters must be an object"},
		{"output without name", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{}]}`, `outputs[0]: field "name" is required`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tc.body), -1)
			if !errors.Is(err, protocol.ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestEncodeResponse(t *testing.T) {
	resp := &InferResponse{
		ModelName: "m", ModelVersion: "3", ID: "q",
		Parameters: map[string]any{"k": "v"},
		Outputs: []*tensor.Tensor{
			{Name: "a", Datatype: tensor.FP32, Shape: []int64{3}, Data: []float32{0.1, float32(math.NaN()), -2}},
			{Name: "b", Datatype: tensor.Bytes, Shape: []int64{1}, Data: [][]byte{[]byte("x\"y")}},
			{Name: "c", Datatype: tensor.Int64, Shape: []int64{2}, Data: []int64{1, -1}},
		},
	}
	js, bin := EncodeResponse(nil, nil, resp, func(n string) bool { return n == "c" })
	want := `{"model_name":"m","model_version":"3","id":"q","parameters":{"k":"v"},"outputs":[` +
		`{"name":"a","datatype":"FP32","shape":[3],"data":[0.1,null,-2]},` +
		`{"name":"b","datatype":"BYTES","shape":[1],"data":["x\"y"]},` +
		`{"name":"c","datatype":"INT64","shape":[2],"parameters":{"binary_data_size":16}}]}`
	if string(js) != want {
		t.Fatalf("json\n got %s\nwant %s", js, want)
	}
	if len(bin) != 16 || bin[0] != 1 || bin[8] != 0xff {
		t.Fatalf("binary part %x", bin)
	}
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatalf("not valid JSON: %v", err)
	}
}

// FuzzDecodeRequest checks the decoder never panics and that whatever it
// accepts is a valid tensor set.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,null]]}]}`,
		`{"id":"a","inputs":[{"data":["a","b"],"name":"s","shape":[2],"datatype":"BYTES"}],"outputs":[{"name":"o"}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[1]}],"parameters":{"binary_data_output":true}}`,
		`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}` + "\x00\x00\x80\x3f\x00\x00\x00\x40",
	} {
		f.Add([]byte(s), -1)
	}
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`+"\x00\x00\x80\x3f\x00\x00\x00\x40"), 87)
	f.Fuzz(func(t *testing.T, body []byte, jsonLen int) {
		if jsonLen < -1 {
			jsonLen = -1
		}
		req, err := DecodeRequest(body, jsonLen)
		if err != nil {
			if !errors.Is(err, protocol.ErrBadRequest) {
				t.Fatalf("error not classified as bad request: %v", err)
			}
			return
		}
		for _, in := range req.Inputs {
			if err := in.Validate(); err != nil {
				t.Fatalf("accepted an invalid tensor: %v", err)
			}
		}
		js, _ := EncodeResponse(nil, nil, &InferResponse{Outputs: req.Inputs}, nil)
		if !json.Valid(js) {
			t.Fatalf("re-encoding is not valid JSON: %s", js)
		}
	})
}

func TestClientCodecRoundTrip(t *testing.T) {
	req := &InferRequest{ID: "r", Parameters: map[string]any{"k": "v"}, Inputs: []*tensor.Tensor{
		{Name: "x", Datatype: tensor.FP32, Shape: []int64{2, 2}, Data: []float32{1, 2.5, -3, 4}},
		{Name: "s", Datatype: tensor.Bytes, Shape: []int64{1}, Data: [][]byte{[]byte("a\"b")}},
	}, Outputs: []RequestedOutput{{Name: "y"}}}
	got, err := DecodeRequest(EncodeRequest(nil, req), -1)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "r" || !reflect.DeepEqual(got.Inputs[0].Data, []float32{1, 2.5, -3, 4}) || string(got.Inputs[1].Data.([][]byte)[0]) != "a\"b" || got.Outputs[0].Name != "y" {
		t.Fatalf("round trip: %+v", got)
	}
	js, _ := EncodeResponse(nil, nil, &InferResponse{ModelName: "m", ID: "r", Outputs: []*tensor.Tensor{{Name: "y", Datatype: tensor.FP64, Shape: []int64{2}, Data: []float64{0.5, 7}}}}, nil)
	resp, err := DecodeResponse(js)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ModelName != "m" || !reflect.DeepEqual(resp.Outputs[0].Data, []float64{0.5, 7}) {
		t.Fatalf("response: %+v", resp)
	}
	if _, err := DecodeResponse([]byte(`{"outputs":[{"name":"y","datatype":"FP32","shape":[2],"data":[1]}]}`)); err == nil {
		t.Fatal("short output accepted")
	}
}

// FuzzScanRequest checks scanRequest against decodeJSON: whatever the fast
// path accepts, decodeJSON accepts too, with the same id, parameters and
// outputs, the same tensors bit for bit and the same charge to the budget.
func FuzzScanRequest(f *testing.F) {
	for _, s := range []string{
		`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,null]]}]}`,
		` { "id" : "r1", "inputs" : [ {"name":"a","datatype":"FP64","shape":[3],"data":[1e-400,-0,2.5E+3]},
		  {"name":"b","datatype":"FP32","shape":[1,1],"data":[[7]]} ] } `,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1e39,1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":[1e400]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1,2]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[],"data":5}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[0],"data":[]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[01]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1.]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1,]}]}`,
		`{"inputs":[{"name":"x","name":"y","datatype":"FP32","shape":[1],"data":[1]}]}`,
		`{"id":"a","id":"b","inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}{}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[100],"data":[1]}]}`,
		`{"inputs":[{"name":"x","datatype":"FP32","shape":[1,99999999999999],"data":[1]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"binary_data":false}}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"binary_data_output":true,"n":-0,"big":1234567890123456789,"f":1.5e3,"s":"a"}}`,
		`{"parameters":{},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"k":1},"data":[1]}]}`,
		`{"parameters":{"a":1,"a":2},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`,
		`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"x":null,"y":1e999}}`,
	} {
		f.Add([]byte(s), int64(64))
	}
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[2],"datatype":"FP64","data":[1,2]},{"name":"y","shape":[2],"datatype":"FP32","data":[1,2]}]}`), int64(-24))
	f.Fuzz(func(t *testing.T, body []byte, limit int64) {
		// A negative limit bounds the decoded bytes instead of the elements.
		lim := protocol.Limits{MaxElements: max(1, limit%1000)}
		if limit < 0 {
			lim = protocol.Limits{MaxDecodedBytes: max(1, -(limit % 8000))}
		}
		checkScanAgrees(t, body, lim.WithDefaults())
	})
}

// checkScanAgrees fails t when scanRequest takes body under lim but
// decodeJSON, without the fast path, refuses it or reads it differently:
// another id, parameters, outputs, tensors or charge to the budget.
func checkScanAgrees(t *testing.T, body []byte, lim protocol.Limits) {
	t.Helper()
	fast := &reqBudget{lim: lim}
	got, gotSizes, ok := scanRequest(body, fast)
	if !ok {
		if fast.elems != 0 || fast.bytes != 0 {
			t.Fatalf("%q: refused but charged %d elements", body, fast.elems)
		}
		return
	}
	slow := &reqBudget{lim: lim}
	scanRequests = false // the reference is the general decoder alone
	want, wantSizes, err := decodeJSON(body, slow)
	scanRequests = true
	if err != nil {
		t.Fatalf("%q: scanned, but decodeJSON refuses: %v", body, err)
	}
	if got.ID != want.ID || fmt.Sprint(gotSizes) != fmt.Sprint(wantSizes) || *fast != *slow || len(got.Inputs) != len(want.Inputs) ||
		!reflect.DeepEqual(got.Parameters, want.Parameters) || !reflect.DeepEqual(got.Outputs, want.Outputs) {
		t.Fatalf("%q: scanned %+v %v %+v, decodeJSON %+v %v %+v", body, got, gotSizes, fast, want, wantSizes, slow)
	}
	for i := range got.Inputs {
		g, w := got.Inputs[i], want.Inputs[i]
		if g.Name != w.Name || g.Datatype != w.Datatype || fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) ||
			floatBits(g.Data) != floatBits(w.Data) || !reflect.DeepEqual(g.Parameters, w.Parameters) {
			t.Fatalf("%q: input %d = %+v, want %+v", body, i, g, w)
		}
	}
}

// floatBits prints a float slice's bit patterns, NaNs as one pattern.
func floatBits(d any) string {
	var b strings.Builder
	switch d := d.(type) {
	case []float32:
		for _, v := range d {
			if v != v {
				v = float32(math.NaN())
			}
			fmt.Fprintf(&b, "%x,", math.Float32bits(v))
		}
	case []float64:
		for _, v := range d {
			if v != v {
				v = math.NaN()
			}
			fmt.Fprintf(&b, "%x,", math.Float64bits(v))
		}
	default:
		fmt.Fprintf(&b, "%T %v", d, d)
	}
	return b.String()
}

// TestScanRequestTakesCommonRequests: the requests of bench/payloads, as
// KServe's and Triton's clients write them, take the fast path.
func TestScanRequestTakesCommonRequests(t *testing.T) {
	for _, name := range []string{"v2-b1.json", "v2-b64.json"} {
		body, err := os.ReadFile(filepath.Join("../../../bench/payloads", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, ok := scanRequest(body, nil); !ok {
			t.Errorf("%s: not scanned", name)
		}
	}
}

// TestScanRequestTakesClientRequests: JSON requests of the shapes KServe's
// and Triton's clients write take the fast path.
func TestScanRequestTakesClientRequests(t *testing.T) {
	for _, body := range []string{
		// KServe's InferRequest.to_rest: an id and the inputs.
		`{"id": "2d6d8f4e-5c47-4a2c-9a7e-0d3c4e4f5a61", "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4]}]}`,
		// Binary outputs asked for with the request's parameters (Triton's extension).
		`{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"FP32","data":[6.8,2.8,4.8,1.4]}],"parameters":{"binary_data_output":true}}`,
		// A requested output with its parameters.
		`{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"FP32","data":[6.8,2.8,4.8,1.4]}],"outputs":[{"name":"OUTPUT0","parameters":{"binary_data":false}}]}`,
	} {
		if _, _, ok := scanRequest([]byte(body), nil); !ok {
			t.Errorf("not scanned: %s", body)
		}
	}
}
