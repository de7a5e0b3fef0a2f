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

// Format detects model.sum files. Their content is "features=N", optionally
// followed by a line "ballast=B": the loaded model then holds B bytes of
// memory, so memory accounting can be tested.
var Format = runtime.Format{
	Name:  "sum",
	Match: func(name string, _ []byte) bool { return strings.HasSuffix(name, ".sum") },
	Load:  load,
}

// Model sums each row of its input.
type Model struct {
	Features int
	ballast  []byte
}

var _ runtime.Model = (*Model)(nil)

func load(_ context.Context, path string) (runtime.Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := &Model{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n < 0:
			return nil, fmt.Errorf("%w: want \"features=N\", got %q", runtime.ErrCorruptModel, string(b))
		case k == "features":
			m.Features = n
		case k == "ballast":
			m.ballast = make([]byte, n)
			for i := range m.ballast {
				m.ballast[i] = byte(i)
			}
		}
	}
	if m.Features <= 0 {
		return nil, fmt.Errorf("%w: want \"features=N\" with N > 0, got %q", runtime.ErrCorruptModel, string(b))
	}
	return m, nil
}

// WriteModel writes a model.sum file taking n features into dir.
func WriteModel(dir string, n int) error {
	return os.WriteFile(dir+"/model.sum", []byte(fmt.Sprintf("features=%d\n", n)), 0o644)
}

// WriteBallastModel writes a model.sum whose loaded model holds ballast bytes.
func WriteBallastModel(dir string, n, ballast int) error {
	return os.WriteFile(dir+"/model.sum", []byte(fmt.Sprintf("features=%d\nballast=%d\n", n, ballast)), 0o644)
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
// A "panic" parameter makes it panic, as a model with a bug would: "predict"
// on the caller's goroutine, "worker" on one of runtime.Parallel's.
func (m *Model) Predict(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	switch req.Parameters["panic"] {
	case "predict":
		panic("runtimetest: asked to panic")
	case "worker":
		return nil, runtime.Parallel(2, func(w int) error {
			if w == 1 {
				panic("runtimetest: asked to panic on a worker")
			}
			return nil
		})
	}
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
func (m *Model) Close() error {
	m.ballast = nil
	return nil
}
