//go:build onnxruntime && cgo

package onnx

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

var recordORT = flag.Bool("record-ort", false, "rewrite testdata/ortgolden/*.json outputs with ONNX Runtime's")

// nativeOptions selects the native engine with the library named by
// $ONNXRUNTIME_LIB (fetch-ort.sh prints a path to use); tests skip
// without it.
func nativeOptions(t *testing.T) Options {
	t.Helper()
	lib := os.Getenv("ONNXRUNTIME_LIB")
	if lib == "" {
		t.Skip("ONNXRUNTIME_LIB is not set; run fetch-ort.sh and export its output")
	}
	return Options{Engine: EngineNative, LibraryPath: lib, IntraOpThreads: 1}
}

func TestGoldenNativeEngine(t *testing.T) { runGolden(t, "golden", nativeOptions(t)) }

func TestORTGoldenNativeEngine(t *testing.T) {
	if *recordORT {
		t.Skip("recording")
	}
	runGolden(t, "ortgolden", nativeOptions(t))
}

func TestNodeCasesNativeEngine(t *testing.T) { runNodeCases(t, nativeOptions(t)) }

// TestRecordORTGolden fills in testdata/ortgolden's reference outputs from
// ONNX Runtime when run with -record-ort.
func TestRecordORTGolden(t *testing.T) {
	if !*recordORT {
		t.Skip("run with -record-ort to rewrite testdata/ortgolden")
	}
	opts := nativeOptions(t)
	for _, name := range goldenNames(t, "ortgolden") {
		path := filepath.Join("testdata", "ortgolden", name+".json")
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		gc := loadGoldenFrom(t, "ortgolden", name)
		m, err := LoadFile(t.Context(), filepath.Join("testdata", "ortgolden", name+".onnx"), opts)
		if err != nil {
			t.Fatal(err)
		}
		req := &runtime.Request{}
		for in, v := range gc.Inputs {
			req.Inputs = append(req.Inputs, v.tensor(t, in))
		}
		res, err := m.Predict(t.Context(), req)
		m.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		outs := map[string]any{}
		for _, o := range res.Outputs {
			// With weights on both of two classes, ONNX Runtime labels
			// rows 1 or 0 instead of with a class label; the Go engine
			// picks the larger score, so those labels are not recorded.
			if o.Name == "label" && strings.HasPrefix(name, "tree_classifier_two_columns") {
				continue
			}
			outs[o.Name] = recordTensor(o)
		}
		doc["outputs"] = outs
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func recordTensor(o *tensor.Tensor) map[string]any {
	rec := map[string]any{"shape": o.Shape}
	switch d := o.Data.(type) {
	case []float32:
		data := make([]any, len(d))
		for i, x := range d {
			if math.IsNaN(float64(x)) {
				data[i] = "NaN"
			} else {
				data[i] = float64(x)
			}
		}
		rec["dtype"], rec["data"] = "float32", data
	case []int64:
		rec["dtype"], rec["data"] = "int64", d
	case [][]byte:
		s := make([]string, len(d))
		for i, b := range d {
			s[i] = string(b)
		}
		rec["dtype"], rec["data"] = "string", s
	}
	return rec
}
