// Package runtimetest provides a tiny, real runtime for testing protocol and
// server code without a machine-learning format: a "sum" model whose file
// (model.sum) says how many features it takes, and which returns each row's
// sum. It is used only by tests.
package runtimetest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// Format detects model.sum files whose content is "features=N".
var Format = runtime.Format{
	Name:  "sum",
	Match: func(name string, _ []byte) bool { return strings.HasSuffix(name, ".sum") },
	Load:  load,
}

// Model sums each row of its input.
type Model struct {
	Features int
}

var _ runtime.Model = (*Model)(nil)

func load(_ context.Context, path string) (runtime.Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "features=")
	n, err := strconv.Atoi(v)
	if !ok || err != nil || n <= 0 {
		return nil, fmt.Errorf("%w: want \"features=N\", got %q", runtime.ErrCorruptModel, string(b))
	}
	return &Model{Features: n}, nil
}

// WriteModel writes a model.sum file taking n features into dir.
func WriteModel(dir string, n int) error {
	return os.WriteFile(dir+"/model.sum", []byte(fmt.Sprintf("features=%d\n", n)), 0o644)
}

// Metadata implements runtime.Model.
func (m *Model) Metadata() runtime.Metadata {
	return runtime.Metadata{
		Platform: "ferry_sum",
		Inputs:   []runtime.TensorMeta{{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{-1, int64(m.Features)}}},
		Outputs: []runtime.TensorMeta{
			{Name: "predict", Datatype: tensor.FP64, Shape: []int64{-1}},
			{Name: "echo", Datatype: tensor.FP64, Shape: []int64{-1, int64(m.Features)}},
		},
	}
}

// Predict returns "predict" (row sums) and, when asked for, "echo" (the
// input as FP64). A "sleep_ms" parameter delays the answer, honouring ctx.
func (m *Model) Predict(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	if ms, ok := req.Parameters["sleep_ms"].(int64); ok {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	x, err := runtime.FeatureMatrix64(req, m.Features)
	if err != nil {
		return nil, err
	}
	sums := make([]float64, x.Rows)
	for i := range x.Rows {
		for _, v := range x.Row(i) {
			sums[i] += v
		}
	}
	res := &runtime.Response{Outputs: []*tensor.Tensor{runtime.NewFP64("predict", []int64{int64(x.Rows)}, sums)}}
	if req.Wants("echo", false) {
		res.Outputs = append(res.Outputs, runtime.NewFP64("echo", []int64{int64(x.Rows), int64(m.Features)}, append([]float64(nil), x.Data...)))
	}
	return res, nil
}

// Close implements runtime.Model.
func (m *Model) Close() error { return nil }
