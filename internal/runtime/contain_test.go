package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/runtimetest"
	"github.com/ferryserve/ferry/internal/tensor"
)

func TestParallel(t *testing.T) {
	var ran atomic.Int64
	if err := runtime.Parallel(4, func(int) error { ran.Add(1); return nil }); err != nil || ran.Load() != 4 {
		t.Fatalf("Parallel = %v after %d of 4 workers", err, ran.Load())
	}
	boom := errors.New("boom")
	err := runtime.Parallel(3, func(w int) error {
		if w == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Parallel = %v, want the worker's error", err)
	}
	// A panic on a worker goroutine would end the process; it comes back
	// as the call's error, after every worker has returned.
	ran.Store(0)
	err = runtime.Parallel(3, func(w int) error {
		defer ran.Add(1)
		if w == 1 {
			panic("worker fault")
		}
		return nil
	})
	var pe *runtime.PanicError
	if !errors.As(err, &pe) || pe.Value != "worker fault" || !strings.Contains(string(pe.Stack), "contain_test.go") || ran.Load() != 3 {
		t.Fatalf("Parallel = %v (%d workers returned), want a PanicError with the worker's value and stack", err, ran.Load())
	}
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns what was logged since the last call.
func (l *lockedBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

// TestRegistryContainsPanics: a format whose loader panics fails the load,
// and a model whose Predict panics (on the request's goroutine or on a
// worker) fails the request; each panic's stack is in the registry's log.
func TestRegistryContainsPanics(t *testing.T) {
	dir := t.TempDir()
	if err := runtimetest.WriteModel(dir, 2); err != nil {
		t.Fatal(err)
	}
	var logged lockedBuffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	bad := runtime.Format{Name: "bad", Match: runtimetest.Format.Match,
		Load: func(context.Context, string) (runtime.Model, error) { panic("loader fault") }}
	badReg := runtime.NewRegistry(bad)
	badReg.Logger = log
	_, _, err := badReg.Load(t.Context(), dir, "")
	var pe *runtime.PanicError
	if !errors.As(err, &pe) || pe.Value != "loader fault" || !strings.Contains(err.Error(), "model.sum") {
		t.Fatalf("load = %v, want a PanicError naming the file", err)
	}
	if l := logged.take(); !strings.Contains(l, "loader fault") || !strings.Contains(l, "contain_test.go") {
		t.Errorf("the loader's panic is not logged with its stack: %q", l)
	}

	reg := runtime.NewRegistry(runtimetest.Format)
	reg.Logger = log
	m, _, err := reg.Load(t.Context(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := runtime.Unwrap(m).(*runtimetest.Model); !ok {
		t.Fatalf("Unwrap gives %T, want the format's model", runtime.Unwrap(m))
	}
	in := runtime.NewFP64("input-0", []int64{1, 2}, []float64{1, 2})
	for _, where := range []string{"predict", "worker"} {
		_, err := m.Predict(t.Context(), &runtime.Request{Inputs: []*tensor.Tensor{in}, Parameters: map[string]any{"panic": where}})
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "asked to panic") {
			t.Errorf("%s: Predict = %v, want a PanicError", where, err)
		}
		// The stack is the panicking goroutine's: a worker's panic comes
		// back as an error, not a panic, and is logged all the same.
		if l := logged.take(); strings.Count(l, "asked to panic") != 1 || !strings.Contains(l, "runtimetest/sum.go") {
			t.Errorf("%s: the panic is not logged once with its stack: %q", where, l)
		}
	}
	res, err := m.Predict(t.Context(), &runtime.Request{Inputs: []*tensor.Tensor{in}})
	if err != nil || res.Outputs[0].Data.([]float64)[0] != 3 {
		t.Fatalf("the model after its panics: %v %+v", err, res)
	}
}
