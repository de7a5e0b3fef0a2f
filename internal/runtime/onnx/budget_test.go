package onnx

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/onnx/onnxpb"
	"github.com/ferryserve/ferry/internal/tensor"
)

// padBomb is issue 16's model: four chained Pads, each padding the last
// output to many times its size, a few hundred bytes on disk.
func padBomb(t *testing.T) []byte {
	g := &onnxpb.GraphProto{
		Input:  []*onnxpb.ValueInfoProto{tensorInfo("x", 1, 1, 1)},
		Output: []*onnxpb.ValueInfoProto{tensorInfo("y", 1, -1, -1)},
	}
	pads := [][]int64{{0, 0, 0, 4095}, {0, 0, 4095, 0}, {0, 0, 0, 12288}, {0, 0, 4096, 0}}
	prev := "x"
	for i, p := range pads {
		name := fmt.Sprintf("p%d", i)
		out := fmt.Sprintf("t%d", i)
		if i == len(pads)-1 {
			out = "y"
		}
		g.Initializer = append(g.Initializer, &onnxpb.TensorProto{Name: name, DataType: 7, Dims: []int64{4}, Int64Data: p})
		g.Node = append(g.Node, &onnxpb.NodeProto{OpType: "Pad", Input: []string{prev, name}, Output: []string{out}})
		prev = out
	}
	return handModel(t, g)
}

func TestPadBombBudget(t *testing.T) {
	data := padBomb(t)
	t.Logf("model is %d bytes", len(data))
	m, err := Load(t.Context(), data, Options{Engine: EngineGo, MaxInferenceBytes: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	req := &runtime.Request{Inputs: []*tensor.Tensor{fp32("x", []int64{1, 1}, 1)}}
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	_, err = m.Predict(t.Context(), req)
	goruntime.ReadMemStats(&after)
	got := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d MB allocated: %v", got>>20, err)
	if !errors.Is(err, runtime.ErrBudget) || !strings.Contains(err.Error(), "--max-inference-bytes") {
		t.Fatalf("got %v, want a budget error naming --max-inference-bytes", err)
	}
	if got > 64<<20 {
		t.Errorf("allocated %d MB under a 32 MB budget", got>>20)
	}
}

// The budget bounds what is held at once, not the sum over the graph: a
// long chain of 4 MB tensors runs within 9 MB, since each is released after
// its last reader.
func TestInferenceBudgetReleases(t *testing.T) {
	g := &onnxpb.GraphProto{
		Input:  []*onnxpb.ValueInfoProto{tensorInfo("x", 1, -1, 1000)},
		Output: []*onnxpb.ValueInfoProto{tensorInfo("y", 1, -1, 1000)},
	}
	prev := "x"
	for i := range 8 {
		out := fmt.Sprintf("r%d", i)
		if i == 7 {
			out = "y"
		}
		g.Node = append(g.Node, &onnxpb.NodeProto{OpType: "Relu", Input: []string{prev}, Output: []string{out}})
		prev = out
	}
	data := handModel(t, g)
	x := fp32("x", []int64{1000, 1000}, make([]float32, 1000*1000)...)
	for _, tc := range []struct {
		limit int64
		ok    bool
	}{{9 << 20, true}, {7 << 20, false}} {
		m, err := Load(t.Context(), data, Options{Engine: EngineGo, MaxInferenceBytes: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Predict(t.Context(), &runtime.Request{Inputs: []*tensor.Tensor{x}})
		if tc.ok && err != nil {
			t.Errorf("limit %d: %v", tc.limit, err)
		}
		if !tc.ok && !errors.Is(err, runtime.ErrBudget) {
			t.Errorf("limit %d: got %v, want ErrBudget", tc.limit, err)
		}
	}
}
