package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/onnx/onnxpb"
	"github.com/ferryserve/ferry/internal/tensor"
)

// TestNodeCases runs the per-operator cases copied from Debian's
// libonnx-testdata (ONNX 1.12's backend test data, testdata/node): each
// directory holds a one-node model and the inputs and outputs of the
// ONNX reference implementation as serialised TensorProtos.
func TestNodeCases(t *testing.T) { runNodeCases(t, Options{Engine: EngineGo}) }

func runNodeCases(t *testing.T, opts Options) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "node", "test_*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no node cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, err := LoadFile(t.Context(), filepath.Join(dir, "model.onnx"), opts)
			if opts.Engine == EngineNative && errors.Is(err, runtime.ErrUnsupported) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			set := filepath.Join(dir, "test_data_set_0")
			req := &runtime.Request{}
			for i, in := range m.inputs {
				v := readPB(t, filepath.Join(set, fmt.Sprintf("input_%d.pb", i)))
				v.Name = in.name
				req.Inputs = append(req.Inputs, v)
			}
			res, err := m.Predict(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			for i, got := range res.Outputs {
				want := readPB(t, filepath.Join(set, fmt.Sprintf("output_%d.pb", i)))
				want.Name = got.Name
				if got.Datatype != want.Datatype {
					t.Errorf("output %s: datatype %s, want %s", got.Name, got.Datatype, want.Datatype)
					continue
				}
				compareTensor(t, got, want, 1e-5)
			}
		})
	}
}

func readPB(t *testing.T, path string) *tensor.Tensor {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tp onnxpb.TensorProto
	if err := proto.Unmarshal(raw, &tp); err != nil {
		t.Fatal(err)
	}
	v, err := decodeTensor(&tp)
	if err != nil {
		t.Fatal(err)
	}
	return toTensor(tp.GetName(), v)
}
