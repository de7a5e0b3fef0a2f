package onnx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/onnx/onnxpb"
	"github.com/ferryserve/ferry/internal/tensor"
)

func loadGoldenModel(t *testing.T, name string) *Model {
	t.Helper()
	m, err := LoadFile(t.Context(), filepath.Join("testdata", "golden", name+".onnx"), Options{Engine: EngineGo})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fp32(name string, shape []int64, data ...float32) *tensor.Tensor {
	return &tensor.Tensor{Name: name, Datatype: tensor.FP32, Shape: shape, Data: data}
}

// tensorInfo declares a FLOAT tensor; a -1 dim is dynamic.
func tensorInfo(name string, elem int32, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		if d < 0 {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}
		} else {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: elem, Shape: shape}}}}
}

// handModel serialises a one-opset model around the given graph.
func handModel(t *testing.T, g *onnxpb.GraphProto) []byte {
	t.Helper()
	m := &onnxpb.ModelProto{IrVersion: 8, Graph: g, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 13}}}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addModel is y = a + b over two named [-1, 2] inputs.
func addModel(t *testing.T) []byte {
	return handModel(t, &onnxpb.GraphProto{
		Node:   []*onnxpb.NodeProto{{Name: "add", OpType: "Add", Input: []string{"a", "b"}, Output: []string{"y"}}},
		Input:  []*onnxpb.ValueInfoProto{tensorInfo("a", 1, -1, 2), tensorInfo("b", 1, -1, 2)},
		Output: []*onnxpb.ValueInfoProto{tensorInfo("y", 1, -1, 2)},
	})
}

func TestMatch(t *testing.T) {
	for name, want := range map[string]bool{"model.onnx": true, "MODEL.ONNX": true, "model.onnx.bak": false, "model.pb": false} {
		if got := Format.Match(name, nil); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestMetadata(t *testing.T) {
	tests := []struct {
		model string
		want  runtime.Metadata
	}{
		{"torch_mlp_opset13", runtime.Metadata{
			Inputs:  []runtime.TensorMeta{{Name: "input", Datatype: tensor.FP32, Shape: []int64{-1, 8}}},
			Outputs: []runtime.TensorMeta{{Name: "output", Datatype: tensor.FP32, Shape: []int64{-1, 3}}},
		}},
		{"torch_cnn", runtime.Metadata{
			Inputs:  []runtime.TensorMeta{{Name: "input", Datatype: tensor.FP32, Shape: []int64{-1, 1, 12, 12}}},
			Outputs: []runtime.TensorMeta{{Name: "output", Datatype: tensor.FP32, Shape: []int64{-1, 5}}},
		}},
		{"sklearn_rfc_zipmap", runtime.Metadata{
			Inputs: []runtime.TensorMeta{{Name: "input", Datatype: tensor.FP32, Shape: []int64{-1, 4}}},
			Outputs: []runtime.TensorMeta{
				{Name: "label", Datatype: tensor.Int64, Shape: []int64{-1}},
				{Name: "output_probability", Datatype: tensor.FP32, Shape: []int64{-1, 3}},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			md := loadGoldenModel(t, tt.model).Metadata()
			if md.Platform != "onnx" || md.Properties["engine"] != EngineGo {
				t.Errorf("platform %q engine %q", md.Platform, md.Properties["engine"])
			}
			for _, pair := range [][2][]runtime.TensorMeta{{md.Inputs, tt.want.Inputs}, {md.Outputs, tt.want.Outputs}} {
				got, want := pair[0], pair[1]
				if len(got) != len(want) {
					t.Fatalf("got %+v, want %+v", got, want)
				}
				for i := range got {
					if got[i].Name != want[i].Name || got[i].Datatype != want[i].Datatype || !slicesEqual(got[i].Shape, want[i].Shape) {
						t.Errorf("got %+v, want %+v", got[i], want[i])
					}
				}
			}
		})
	}
}

func TestPredictLayouts(t *testing.T) {
	m := loadGoldenModel(t, "sklearn_logreg_binary")
	gc := loadGolden(t, "sklearn_logreg_binary")
	x := gc.Inputs["input"].tensor(t, "input")
	rows := int(x.Shape[0])
	data := x.Data.([]float32)
	// One tensor per feature, FP64, under other names.
	cols := make([]*tensor.Tensor, 4)
	for j := range cols {
		c := make([]float64, rows)
		for i := range c {
			c[i] = float64(data[i*4+j])
		}
		cols[j] = &tensor.Tensor{Name: "f" + string(rune('a'+j)), Datatype: tensor.FP64, Shape: []int64{int64(rows)}, Data: c}
	}
	res, err := m.Predict(t.Context(), &runtime.Request{Inputs: cols, Outputs: []string{"probabilities"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Name != "probabilities" {
		t.Fatalf("outputs %+v; want only probabilities", res.Outputs)
	}
	compareTensor(t, res.Outputs[0], gc.Outputs["probabilities"].tensor(t, "probabilities"), 1e-5)

	// A single row as a rank-1 tensor.
	res, err = m.Predict(t.Context(), &runtime.Request{Inputs: []*tensor.Tensor{fp32("x", []int64{4}, data[:4]...)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Outputs[0].Shape; !slicesEqual(got, []int64{1}) {
		t.Errorf("label shape %v, want [1]", got)
	}
}

func TestPredictNamedInputs(t *testing.T) {
	m, err := Load(t.Context(), addModel(t), Options{Engine: EngineGo})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Predict(t.Context(), &runtime.Request{Inputs: []*tensor.Tensor{
		fp32("b", []int64{1, 2}, 10, 20), fp32("a", []int64{1, 2}, 1, 2),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Outputs[0].Data.([]float32); got[0] != 11 || got[1] != 22 || res.Outputs[0].Name != "y" {
		t.Errorf("got %s %v, want y [11 22]", res.Outputs[0].Name, got)
	}
}

func TestPredictErrors(t *testing.T) {
	mlp := loadGoldenModel(t, "torch_mlp_opset13")
	cnn := loadGoldenModel(t, "torch_cnn")
	add, err := Load(t.Context(), addModel(t), Options{Engine: EngineGo})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		m     *Model
		req   runtime.Request
		inMsg string
	}{
		{"feature count", mlp, runtime.Request{Inputs: []*tensor.Tensor{fp32("input", []int64{1, 3}, 1, 2, 3)}}, "the model expects 8"},
		{"bytes", mlp, runtime.Request{Inputs: []*tensor.Tensor{{Name: "input", Datatype: tensor.Bytes, Shape: []int64{1}, Data: [][]byte{[]byte("x")}}}}, "BYTES"},
		{"short data", mlp, runtime.Request{Inputs: []*tensor.Tensor{fp32("input", []int64{2, 8}, 1, 2)}}, "needs 16 elements"},
		{"unknown output", mlp, runtime.Request{Inputs: []*tensor.Tensor{fp32("input", []int64{1, 8}, make([]float32, 8)...)}, Outputs: []string{"nope"}}, `"output"`},
		{"image shape", cnn, runtime.Request{Inputs: []*tensor.Tensor{fp32("input", []int64{1, 1, 2, 2}, 1, 2, 3, 4)}}, "expects [-1 1 12 12]"},
		{"missing input", add, runtime.Request{Inputs: []*tensor.Tensor{fp32("a", []int64{1, 2}, 1, 2)}}, `missing input "b"`},
		{"unknown input", add, runtime.Request{Inputs: []*tensor.Tensor{fp32("a", []int64{1, 2}, 1, 2), fp32("c", []int64{1, 2}, 1, 2)}}, `"c" is not one`},
		{"broadcast", add, runtime.Request{Inputs: []*tensor.Tensor{fp32("a", []int64{2, 2}, 1, 2, 3, 4), fp32("b", []int64{3, 2}, 1, 2, 3, 4, 5, 6)}}, "do not broadcast"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.m.Predict(t.Context(), &tt.req)
			if !errors.Is(err, runtime.ErrInvalidInput) || !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("err = %v; want ErrInvalidInput mentioning %q", err, tt.inMsg)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	mlp, err := os.ReadFile(filepath.Join("testdata", "golden", "torch_mlp_opset13.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	unknownOp := handModel(t, &onnxpb.GraphProto{
		Node:   []*onnxpb.NodeProto{{Name: "lstm_1", OpType: "LSTM", Input: []string{"x"}, Output: []string{"y"}}},
		Input:  []*onnxpb.ValueInfoProto{tensorInfo("x", 1, -1, 2)},
		Output: []*onnxpb.ValueInfoProto{tensorInfo("y", 1, -1, 2)},
	})
	badInit := handModel(t, &onnxpb.GraphProto{
		Node:        []*onnxpb.NodeProto{{OpType: "Add", Input: []string{"x", "w"}, Output: []string{"y"}}},
		Initializer: []*onnxpb.TensorProto{{Name: "w", DataType: 1, Dims: []int64{1 << 40, 1 << 20}, FloatData: []float32{1}}},
		Input:       []*onnxpb.ValueInfoProto{tensorInfo("x", 1, -1, 2)},
		Output:      []*onnxpb.ValueInfoProto{tensorInfo("y", 1, -1, 2)},
	})
	undefined := handModel(t, &onnxpb.GraphProto{
		Node:   []*onnxpb.NodeProto{{Name: "n", OpType: "Relu", Input: []string{"ghost"}, Output: []string{"y"}}},
		Input:  []*onnxpb.ValueInfoProto{tensorInfo("x", 1, -1, 2)},
		Output: []*onnxpb.ValueInfoProto{tensorInfo("y", 1, -1, 2)},
	})
	tests := []struct {
		name    string
		data    []byte
		opts    Options
		wantErr error
		inMsg   string
	}{
		{"truncated", mlp[:len(mlp)/2], Options{}, runtime.ErrCorruptModel, "corrupt"},
		{"garbage", []byte("\xff\xff\xff\xff not protobuf"), Options{}, runtime.ErrCorruptModel, "not an ONNX protobuf"},
		{"empty", nil, Options{}, runtime.ErrCorruptModel, "no graph"},
		{"unsupported op", unknownOp, Options{Engine: EngineGo}, runtime.ErrUnsupported, "node lstm_1 uses LSTM"},
		{"huge initializer", badInit, Options{Engine: EngineGo}, runtime.ErrCorruptModel, `"w"`},
		{"undefined input", undefined, Options{Engine: EngineGo}, runtime.ErrCorruptModel, `reads "ghost"`},
	}
	if !nativeBuilt {
		tests = append(tests, struct {
			name    string
			data    []byte
			opts    Options
			wantErr error
			inMsg   string
		}{"native not built", mlp, Options{Engine: EngineNative}, runtime.ErrUnsupported, "-tags onnxruntime"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(t.Context(), tt.data, tt.opts)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("err = %v; want %v mentioning %q", err, tt.wantErr, tt.inMsg)
			}
		})
	}
	if err := (Options{Engine: "tpu"}).Validate(); err == nil {
		t.Error("Validate accepted engine tpu")
	}
}

func TestPredictConcurrent(t *testing.T) {
	m := loadGoldenModel(t, "torch_cnn")
	gc := loadGolden(t, "torch_cnn")
	x := gc.Inputs["input"].tensor(t, "input")
	want := gc.Outputs["output"].tensor(t, "output")
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 20 {
				res, err := m.Predict(t.Context(), &runtime.Request{Inputs: []*tensor.Tensor{x}})
				if err != nil {
					t.Error(err)
					return
				}
				compareTensor(t, res.Outputs[0], want, gc.Tolerance)
			}
		}()
	}
	for range 4 {
		<-done
	}
}

// TestOutputsDoNotAlias checks that a response never shares memory with
// the request or the model: an Identity graph echoes its input.
func TestOutputsDoNotAlias(t *testing.T) {
	data := handModel(t, &onnxpb.GraphProto{
		Node:   []*onnxpb.NodeProto{{OpType: "Identity", Input: []string{"x"}, Output: []string{"y"}}},
		Input:  []*onnxpb.ValueInfoProto{tensorInfo("x", 1, -1, 2)},
		Output: []*onnxpb.ValueInfoProto{tensorInfo("y", 1, -1, 2)},
	})
	m, err := Load(t.Context(), data, Options{Engine: EngineGo})
	if err != nil {
		t.Fatal(err)
	}
	in := fp32("x", []int64{1, 2}, 1, 2)
	res, err := m.Predict(t.Context(), &runtime.Request{Inputs: []*tensor.Tensor{in}})
	if err != nil {
		t.Fatal(err)
	}
	res.Outputs[0].Data.([]float32)[0] = 99
	if in.Data.([]float32)[0] != 1 {
		t.Error("writing the output changed the request's input")
	}
}
