package batcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/runtimetest"
	"github.com/ferryserve/ferry/internal/tensor"
)

type recorder struct {
	mu      sync.Mutex
	batches [][2]int // rows, callers
}

func (r *recorder) on(rows, callers int) {
	r.mu.Lock()
	r.batches = append(r.batches, [2]int{rows, callers})
	r.mu.Unlock()
}

func rowReq(vals ...float64) *runtime.Request {
	return &runtime.Request{Inputs: []*tensor.Tensor{{Name: "x", Datatype: tensor.FP64, Shape: []int64{int64(len(vals) / 2), 2}, Data: vals}}}
}

func sumOf(t *testing.T, res *runtime.Response) []float64 {
	t.Helper()
	return res.Outputs[0].Data.([]float64)
}

func TestMergesUpToMaxBatchSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b := New(&runtimetest.Model{Features: 2}, Config{MaxBatchSize: 8, MaxLatency: time.Second, MaxConcurrent: -1, OnBatch: rec.on})
		defer b.Close()
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := b.Predict(t.Context(), rowReq(float64(i), 100))
				if err != nil {
					t.Errorf("caller %d: %v", i, err)
					return
				}
				if got := sumOf(t, res); len(got) != 1 || got[0] != float64(i)+100 || res.Outputs[0].Shape[0] != 1 {
					t.Errorf("caller %d got %v (shape %v), want its own row sum %v", i, got, res.Outputs[0].Shape, float64(i)+100)
				}
			}()
		}
		wg.Wait()
		if fmt.Sprint(rec.batches) != "[[8 8]]" {
			t.Fatalf("batches %v, want one of 8 rows from 8 callers (flushed by size, not latency)", rec.batches)
		}
	})
}

func TestFlushesAfterMaxLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b := New(&runtimetest.Model{Features: 2}, Config{MaxBatchSize: 100, MaxLatency: 20 * time.Millisecond, MaxConcurrent: -1, OnBatch: rec.on})
		defer b.Close()
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Two rows per caller: rows (i, 1) and (i, 2).
				res, err := b.Predict(t.Context(), rowReq(float64(i), 1, float64(i), 2))
				if err != nil {
					t.Error(err)
					return
				}
				if got := sumOf(t, res); fmt.Sprint(got) != fmt.Sprint([]float64{float64(i) + 1, float64(i) + 2}) {
					t.Errorf("caller %d got %v", i, got)
				}
			}()
		}
		wg.Wait()
		if waited := time.Since(start); waited != 20*time.Millisecond {
			t.Fatalf("waited %v, want exactly MaxLatency (fake clock)", waited)
		}
		if fmt.Sprint(rec.batches) != "[[6 3]]" {
			t.Fatalf("batches %v, want [[6 3]]", rec.batches)
		}
	})
}

func TestIncompatibleAndLargeRequestsGoAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b := New(&runtimetest.Model{Features: 2}, Config{MaxBatchSize: 4, MaxLatency: 10 * time.Millisecond, MaxConcurrent: -1, OnBatch: rec.on})
		defer b.Close()
		var wg sync.WaitGroup
		reqs := []*runtime.Request{
			rowReq(1, 2),
			{Inputs: []*tensor.Tensor{{Name: "x", Datatype: tensor.FP32, Shape: []int64{1, 2}, Data: []float32{1, 2}}}}, // other datatype
			{Inputs: []*tensor.Tensor{{Name: "x", Datatype: tensor.FP64, Shape: []int64{1, 2}, Data: []float64{1, 2}}}, Outputs: []string{"echo"}},
			rowReq(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), // 5 rows > MaxBatchSize: passes through
		}
		for _, r := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := b.Predict(t.Context(), r); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		// Three single-caller batches flushed by latency (the big one bypasses
		// the batcher and is not recorded).
		if len(rec.batches) != 3 {
			t.Fatalf("batches %v, want 3 separate ones", rec.batches)
		}
	})
}

// failing returns an invalid-input error for every call.
type failing struct{ runtimetest.Model }

func (f *failing) Predict(context.Context, *runtime.Request) (*runtime.Response, error) {
	return nil, fmt.Errorf("%w: feature 1 is out of range", runtime.ErrInvalidInput)
}

func TestErrorReachesEveryCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(&failing{}, Config{MaxBatchSize: 3, MaxLatency: time.Second, MaxConcurrent: -1})
		defer b.Close()
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := b.Predict(t.Context(), rowReq(1, 2)); !errors.Is(err, runtime.ErrInvalidInput) {
					t.Errorf("err = %v, want the model's invalid-input error", err)
				}
			}()
		}
		wg.Wait()
	})
}

func TestCancelledCallerFreesItsSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b := New(&runtimetest.Model{Features: 2}, Config{MaxBatchSize: 10, MaxLatency: 50 * time.Millisecond, MaxConcurrent: -1, OnBatch: rec.on})
		defer b.Close()
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := b.Predict(ctx, rowReq(9, 9)); !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled caller: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			res, err := b.Predict(t.Context(), rowReq(1, 2))
			if err != nil || sumOf(t, res)[0] != 3 {
				t.Errorf("remaining caller: %v %v", res, err)
			}
		}()
		time.Sleep(10 * time.Millisecond)
		cancel()
		wg.Wait()
		if fmt.Sprint(rec.batches) != "[]" && fmt.Sprint(rec.batches) != "[[1 1]]" {
			t.Fatalf("batches %v: the cancelled caller's row was still sent", rec.batches)
		}
	})
}

// gated blocks every Predict until the test releases it, so the test
// controls when merged calls finish.
type gated struct {
	runtimetest.Model
	gate chan struct{}
}

func (g *gated) Predict(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	<-g.gate
	return g.Model.Predict(ctx, req)
}

// TestEagerWhileIdleBatchesWhileBusy: with MaxConcurrent 1, a request to an
// idle model leaves at once (no latency wait); requests arriving while it
// runs are merged and leave when it finishes.
func TestEagerWhileIdleBatchesWhileBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		m := &gated{Model: runtimetest.Model{Features: 2}, gate: make(chan struct{})}
		b := New(m, Config{MaxBatchSize: 64, MaxLatency: time.Hour, MaxConcurrent: 1, OnBatch: rec.on})
		defer b.Close()
		var wg sync.WaitGroup
		call := func(v float64) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := b.Predict(t.Context(), rowReq(v, 1))
				if err != nil || sumOf(t, res)[0] != v+1 {
					t.Errorf("caller %v: %v %v", v, res, err)
				}
			}()
		}
		call(0)
		synctest.Wait() // the first request is running, alone
		if fmt.Sprint(rec.batches) != "[[1 1]]" {
			t.Fatalf("first request did not leave at once: %v", rec.batches)
		}
		for i := 1; i <= 5; i++ {
			call(float64(i))
		}
		synctest.Wait()      // five more queue behind it
		m.gate <- struct{}{} // the first finishes; the five leave as one batch
		synctest.Wait()
		m.gate <- struct{}{}
		wg.Wait()
		if fmt.Sprint(rec.batches) != "[[1 1] [5 5]]" {
			t.Fatalf("batches %v, want the first alone then the five merged", rec.batches)
		}
	})
}

// malformed answers each call with an output whose data is one value
// short of its shape.
type malformed struct{ runtimetest.Model }

func (m *malformed) Predict(_ context.Context, req *runtime.Request) (*runtime.Response, error) {
	rows := req.Inputs[0].Shape[0]
	return &runtime.Response{Outputs: []*tensor.Tensor{{Name: "predict", Datatype: tensor.FP64, Shape: []int64{rows, 1}, Data: make([]float64, rows-1)}}}, nil
}

// TestMalformedTensorsFailTheirCallers: a model's output whose data does
// not fill its shape, and a request tensor whose data does not fit its
// datatype or shape, fail their callers with an error; cut or merged on
// the batcher's goroutine they would panic there and end the process.
func TestMalformedTensorsFailTheirCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(&malformed{}, Config{MaxBatchSize: 3, MaxLatency: time.Second, MaxConcurrent: -1})
		defer b.Close()
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if _, err := b.Predict(t.Context(), rowReq(1, 2)); err == nil || !strings.Contains(err.Error(), "malformed output") {
					t.Errorf("err = %v, want the malformed output refused", err)
				}
			})
		}
		wg.Wait()
	})
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		b := New(&runtimetest.Model{Features: 2}, Config{MaxBatchSize: 3, MaxLatency: time.Second, MaxConcurrent: -1, OnBatch: rec.on})
		defer b.Close()
		bad := []*runtime.Request{
			{Inputs: []*tensor.Tensor{{Name: "x", Datatype: tensor.FP64, Shape: []int64{1, 2}, Data: []float32{1, 2}}}},
			{Inputs: []*tensor.Tensor{{Name: "x", Datatype: tensor.FP64, Shape: []int64{1, 2}, Data: []float64{1, 2, 3}}}},
		}
		var wg sync.WaitGroup
		for _, req := range bad {
			wg.Go(func() {
				if _, err := b.Predict(t.Context(), req); !errors.Is(err, runtime.ErrInvalidInput) {
					t.Errorf("malformed input: err = %v, want the model's invalid-input error", err)
				}
			})
		}
		wg.Go(func() {
			if res, err := b.Predict(t.Context(), rowReq(1, 2)); err != nil || sumOf(t, res)[0] != 3 {
				t.Errorf("a well-formed caller beside them: %v", err)
			}
		})
		wg.Wait()
	})
}
