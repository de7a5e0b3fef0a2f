package quality

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"

	v1 "github.com/ferryserve/ferry/internal/protocol/v1"
	v2 "github.com/ferryserve/ferry/internal/protocol/v2"
	"github.com/ferryserve/ferry/internal/tensor"
)

// ferryResponses are bodies as Ferry's own encoders write them.
func ferryResponses() (v1s, v2s [][]byte) {
	ts := []*tensor.Tensor{
		{Name: "predict", Datatype: tensor.FP32, Shape: []int64{2, 3}, Data: []float32{0.0055, 0.9711, 0.0232, 0.9918, 0.0054, 0.0027}},
		{Name: "predict", Datatype: tensor.FP64, Shape: []int64{3}, Data: []float64{1.5, -2, 3e-7}},
		{Name: "label", Datatype: tensor.Int64, Shape: []int64{3}, Data: []int64{0, 2, -1}},
		{Name: "label", Datatype: tensor.Int32, Shape: []int64{2, 1}, Data: []int32{1, 0}},
		{Name: "species", Datatype: tensor.Bytes, Shape: []int64{2}, Data: [][]byte{[]byte("setosa"), []byte("virgínica")}},
		{Name: "p", Datatype: tensor.FP32, Shape: []int64{1, 2}, Data: []float32{1, 0}},
	}
	for _, t := range ts {
		v1s = append(v1s, append(v1.AppendNested([]byte(`{"predictions":`), t), '}'))
		for _, resp := range []v2.InferResponse{
			{ModelName: "xgboost-iris", ID: "req-1", Outputs: []*tensor.Tensor{t}},
			{ModelName: "m", ModelVersion: "3", ID: "", Outputs: []*tensor.Tensor{t, ts[0]}},
			{ModelName: "m", ID: "x", Parameters: map[string]any{"k": "v", "n": 1.5}, Outputs: []*tensor.Tensor{t}},
		} {
			b, _ := v2.EncodeResponse(nil, nil, &resp, nil)
			v2s = append(v2s, b)
		}
	}
	return v1s, v2s
}

// The fast path must actually take what Ferry writes, and agree with
// encoding/json on it.
func TestScannerReadsFerrysOwnResponses(t *testing.T) {
	v1s, v2s := ferryResponses()
	for _, b := range v1s {
		if _, ok := scanV1(b); !ok {
			t.Errorf("scanV1 refused %s", b)
		}
		checkV1(t, b, TaskAuto)
	}
	for _, b := range v2s {
		if _, ok := scanV2(b); !ok {
			t.Errorf("scanV2 refused %s", b)
		}
		if _, _, ok := scanV2Head(b); !ok {
			t.Errorf("scanV2Head refused %s", b)
		}
		checkV2(t, b, TaskAuto)
	}
	rows, id, _, err := ParseV2(v2s[0], TaskAuto)
	if err != nil || id != "req-1" || len(rows) != 2 || rows[0].Kind != KindProbs || rows[0].Probs[1] != 0.9711 {
		t.Fatalf("ParseV2: %+v %q %v", rows, id, err)
	}
	if _, ok := flatStrings([]byte(`["setosa","virgínica"]`)); !ok {
		t.Error("flatStrings refused plain labels")
	}
	if _, ok := flatFloats([]byte(`[0.1, 0.9]`)); !ok {
		t.Error("flatFloats refused probabilities")
	}
}

// Whatever the scanner cannot vouch for goes to encoding/json, which gives
// the same answer it always did.
func TestScannerLeavesTheRestToEncodingJSON(t *testing.T) {
	for _, b := range []string{
		`{"Predictions":[1]}`,                   // case-folded key: encoding/json matches it
		`{"predictions":[1],"predictions":[2]}`, // duplicate: the last wins there
		`{"pred\u0069ctions":[1]}`,              // escaped key
		`{"predictions":null}`,
		`{"predictions":[1]} x`,
		`{"predictions":[01]}`,
		`{"predictions":[NaN]}`,
		`{"predictionſ":[1]}`, // folds to "predictions" in encoding/json
	} {
		if _, ok := scanV1([]byte(b)); ok {
			t.Errorf("scanV1 took %s", b)
		}
		checkV1(t, []byte(b), TaskAuto)
	}
	for _, b := range []string{
		`{"ID":"a","outputs":[{"name":"o","datatype":"INT64","shape":[1],"data":[1]}]}`,
		`{"id":"a","id":"b","outputs":[{"name":"o","datatype":"INT64","shape":[1],"data":[1]}]}`,
		`{"id":"\u0061","outputs":[{"name":"o","datatype":"INT64","shape":[1],"data":[1]}]}`,
		`{"id":null,"outputs":[{"name":"o","datatype":"INT64","shape":[1],"data":[1]}]}`,
		`{"id":"a","outputs":[{"name":"o","datatype":"INT64","shape":[1.0],"data":[1]}]}`,
		`{"id":"a","outputs":[{"name":"o","datatype":"INT64","shape":[9223372036854775808],"data":[1]}]}`,
		`{"id":"a","outputs":[{"name":"o","datatype":"INT64","Shape":[1],"data":[1]}]}`,
		`{"id":"a","outputs":[{"name":"o","datatype":"BYTES","shape":[1],"data":[["a"]]}]}`,
		`{"id":"a","outputs":[{"name":"o","datatype":"BYTES","shape":[2],"data":["a",["b"]]}]}`,
		`{"id":"a","outputs":[{"name":"o","datatype":"FP32","shape":[2],"data":[1,null]}]}`,
		`{"id":"a","outputs":[{"name":"o","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]}`,
		`{"id":"a","outputs":[{"name":"o","datatype":"FP32","shape":[1],"data":[1]},{"shape":"x"}]}`,
		"{\"id\":\"\xff\",\"outputs\":[]}",
	} {
		checkV2(t, []byte(b), TaskAuto)
	}
}

func checkV1(t *testing.T, b []byte, task Task) {
	t.Helper()
	if r, ok := scanV1(b); ok {
		var want v1Response
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("scanV1 took %q; encoding/json: %v", b, err)
		}
		if !reflect.DeepEqual(r, want) {
			t.Fatalf("scanV1 %q:\n %q\nencoding/json:\n %q", b, r.Predictions, want.Predictions)
		}
	}
	fr, ferr := parseV1(b, task, true)
	sr, serr := parseV1(b, task, false)
	if fmt.Sprint(ferr) != fmt.Sprint(serr) || !reflect.DeepEqual(fr, sr) {
		t.Fatalf("ParseV1 %q (task %q):\n fast %+v %v\n slow %+v %v", b, task, fr, ferr, sr, serr)
	}
}

func checkV2(t *testing.T, b []byte, task Task) {
	t.Helper()
	if r, ok := scanV2(b); ok {
		var want v2Response
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("scanV2 took %q; encoding/json: %v", b, err)
		}
		for i, o := range r.Outputs {
			if o.nums == nil {
				continue
			}
			// The numbers converted while scanning are parseNumbers'.
			slow, err := parseNumbers(o.Data, 0)
			if err != nil || !reflect.DeepEqual(o.nums, slow) || !sameSigns(o.nums, slow) {
				t.Fatalf("scanV2 %q: output %d numbers %v; parseNumbers %v %v", b, i, o.nums, slow, err)
			}
			r.Outputs[i].nums = nil
		}
		if !reflect.DeepEqual(r, want) {
			t.Fatalf("scanV2 %q:\n %+v\nencoding/json:\n %+v", b, r, want)
		}
	}
	if id, version, ok := scanV2Head(b); ok {
		// The predict path takes the id and version from the head scan
		// and journals the response raw: they must be encoding/json's.
		var want v2Response
		if err := json.Unmarshal(b, &want); err == nil && (id != want.ID || version != want.ModelVersion) {
			t.Fatalf("scanV2Head %q: %q %q; encoding/json %q %q", b, id, version, want.ID, want.ModelVersion)
		}
		if !json.Valid(b) {
			t.Fatalf("scanV2Head took invalid JSON %q", b)
		}
	}
	fr, fid, fv, ferr := parseV2(b, task, true)
	sr, sid, sv, serr := parseV2(b, task, false)
	if fmt.Sprint(ferr) != fmt.Sprint(serr) || !reflect.DeepEqual(fr, sr) || fid != sid || fv != sv {
		t.Fatalf("ParseV2 %q (task %q):\n fast %+v %q %q %v\n slow %+v %q %q %v", b, task, fr, fid, fv, ferr, sr, sid, sv, serr)
	}
}

// sameSigns reports whether a and b agree on the sign of each zero too.
func sameSigns(a, b []float64) bool {
	for i := range a {
		if math.Signbit(a[i]) != math.Signbit(b[i]) {
			return false
		}
	}
	return true
}

var fuzzTasks = []Task{TaskAuto, TaskClassification, TaskRegression}

func FuzzParseV1(f *testing.F) {
	v1s, _ := ferryResponses()
	for _, b := range v1s {
		f.Add(b, uint8(0))
	}
	for _, s := range []string{`{"predictions":["a","b"]}`, `{"predictions":[1.5, 2]}`, `{"predictions":[[0.2, 0.8]], "x": {"y": [true, null, "\n"]}}`, `{"PREDICTIONS":[1]}`, `{"predictions":[1e400]}`, `{"predictions":["a\u00e9"]}`, `{"predictions":[[1,null]]}`} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, task uint8) {
		checkV1(t, b, fuzzTasks[int(task)%len(fuzzTasks)])
	})
}

func FuzzParseV2(f *testing.F) {
	_, v2s := ferryResponses()
	for _, b := range v2s {
		f.Add(b, uint8(0))
	}
	for _, s := range []string{
		`{"id":"a","model_version":"2","outputs":[{"name":"o","datatype":"BOOL","shape":[2],"data":[true,false]}]}`,
		`{"id":"a","outputs":[{"name":"o","datatype":"BYTES","shape":[2,1],"data":[["x"],["y"]]}]}`,
		`{"id":"a","outputs":[{"name":"o","datatype":"FP32","shape":[2,2],"data":[[0.5,0.5],[1,0]]}]}`,
		`{"id":"a","outputs":[{"name":"o","datatype":"FP32","shape":[-1],"data":[1]}]}`,
		`{"Outputs":[], "id": "x"}`,
	} {
		f.Add([]byte(s), uint8(2))
	}
	f.Fuzz(func(t *testing.T, b []byte, task uint8) {
		checkV2(t, b, fuzzTasks[int(task)%len(fuzzTasks)])
	})
}
