// Package batcher merges concurrent inference requests to one model into
// batched calls. It wraps a runtime.Model, so it batches whatever reaches
// the model — V1 instances, V2 REST tensors and V2 gRPC alike — at the
// tensor level: compatible requests (same input names, datatypes and
// trailing dimensions, same requested outputs and parameters) are
// concatenated along the first dimension up to MaxBatchSize rows or
// MaxLatency, evaluated once, and each caller gets exactly its rows back, or
// the merged call's error.
package batcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// Config tunes a batcher. KServe's defaults are 32 rows and 5000 ms; Ferry
// defaults to 32 rows and 5 ms, since the latency bound is paid by every
// request that arrives alone.
type Config struct {
	MaxBatchSize int           // rows per merged call
	MaxLatency   time.Duration // longest a request waits for company
	// Timeout bounds the merged call (0 = the callers' own deadlines).
	Timeout time.Duration
	// MaxConcurrent is how many merged calls per model may run at once
	// before requests wait to be batched: while fewer run, a request is sent
	// at once (with whatever else is waiting), so a lightly loaded model pays
	// no batching delay and a busy one batches what queues up behind it.
	// 0 means GOMAXPROCS; negative means never send early — always wait for
	// MaxBatchSize rows or MaxLatency, as KServe's batcher does.
	MaxConcurrent int
	Logger        *slog.Logger
	// OnBatch, if set, observes every merged call (rows, callers).
	OnBatch func(rows, callers int)
}

// Batcher is a runtime.Model that batches calls to the model it wraps.
type Batcher struct {
	m   runtime.Model
	cfg Config

	mu      sync.Mutex
	pending map[string]*batch // by compatibility key
	running map[string]int    // merged calls in flight, by key
	wg      sync.WaitGroup    // merged calls in flight
	closed  bool
}

var _ runtime.Model = (*Batcher)(nil)

// New wraps m.
func New(m runtime.Model, cfg Config) *Batcher {
	if cfg.MaxBatchSize <= 0 {
		cfg.MaxBatchSize = 32
	}
	if cfg.MaxLatency <= 0 {
		cfg.MaxLatency = 5 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = goruntime.GOMAXPROCS(0)
	}
	return &Batcher{m: m, cfg: cfg, pending: map[string]*batch{}, running: map[string]int{}}
}

// call is one caller waiting in a batch.
type call struct {
	req  *runtime.Request
	rows int
	ctx  context.Context
	done chan result
}

type result struct {
	res *runtime.Response
	err error
}

type batch struct {
	key   string
	calls []*call
	rows  int
	timer *time.Timer
}

// Metadata implements runtime.Model.
func (b *Batcher) Metadata() runtime.Metadata { return b.m.Metadata() }

// Close waits for merged calls in flight, then closes the wrapped model.
func (b *Batcher) Close() error {
	b.mu.Lock()
	b.closed = true
	for _, bt := range b.pending {
		bt.timer.Stop()
		b.flushLocked(bt)
	}
	b.mu.Unlock()
	b.wg.Wait()
	return b.m.Close()
}

// Predict implements runtime.Model. Requests that cannot be merged (no
// leading batch dimension, BYTES data, or more rows than MaxBatchSize) are
// passed through alone.
func (b *Batcher) Predict(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	key, rows, ok := batchKey(req)
	if !ok || rows >= b.cfg.MaxBatchSize {
		return b.m.Predict(ctx, req)
	}
	c := &call{req: req, rows: rows, ctx: ctx, done: make(chan result, 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errors.New("model is closing")
	}
	bt := b.pending[key]
	if bt != nil && bt.rows+rows > b.cfg.MaxBatchSize {
		bt.timer.Stop()
		b.flushLocked(bt)
		bt = nil
	}
	if bt == nil {
		bt = &batch{key: key}
		b.pending[key] = bt
		bt.timer = time.AfterFunc(b.cfg.MaxLatency, func() { b.flushKey(bt) })
	}
	bt.calls = append(bt.calls, c)
	bt.rows += rows
	if bt.rows >= b.cfg.MaxBatchSize || b.idle(key) {
		bt.timer.Stop()
		b.flushLocked(bt)
	}
	b.mu.Unlock()

	select {
	case r := <-c.done:
		return r.res, r.err
	case <-ctx.Done():
		// Free the slot if the batch has not left yet; otherwise the
		// merged call goes on for the others and our rows are dropped.
		b.mu.Lock()
		if cur := b.pending[key]; cur != nil {
			if i := slices.Index(cur.calls, c); i >= 0 {
				cur.calls = slices.Delete(cur.calls, i, i+1)
				cur.rows -= rows
			}
		}
		b.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (b *Batcher) flushKey(bt *batch) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending[bt.key] == bt {
		b.flushLocked(bt)
	}
}

// idle reports whether a batch for key may leave at once because fewer
// than MaxConcurrent merged calls are running. The caller holds b.mu.
func (b *Batcher) idle(key string) bool {
	return b.cfg.MaxConcurrent > 0 && b.running[key] < b.cfg.MaxConcurrent
}

// flushLocked sends bt as one merged call. The caller holds b.mu.
func (b *Batcher) flushLocked(bt *batch) {
	delete(b.pending, bt.key)
	calls := bt.calls
	if len(calls) == 0 {
		return
	}
	b.running[bt.key]++
	b.wg.Add(1)
	go func() { // owned by the batcher: Close waits on b.wg
		defer b.wg.Done()
		b.run(calls)
		b.finished(bt.key)
	}()
}

// finished accounts for a completed merged call and sends what queued up
// behind it.
func (b *Batcher) finished(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running[key]--; b.running[key] <= 0 {
		delete(b.running, key)
	}
	if bt := b.pending[key]; bt != nil && len(bt.calls) > 0 && b.idle(key) {
		bt.timer.Stop()
		b.flushLocked(bt)
	}
}

func (b *Batcher) run(calls []*call) {
	if b.cfg.OnBatch != nil {
		b.cfg.OnBatch(rowsOf(calls), len(calls))
	}
	if len(calls) == 1 {
		c := calls[0]
		res, err := b.m.Predict(c.ctx, c.req)
		c.done <- result{res, err}
		return
	}
	// The merged call lives as long as any caller still waits.
	ctx, cancel := mergedContext(calls, b.cfg.Timeout)
	defer cancel()
	merged, err := merge(calls)
	if err != nil {
		for _, c := range calls {
			c.done <- result{nil, err}
		}
		return
	}
	res, err := b.m.Predict(ctx, merged)
	if err == nil {
		var parts []*runtime.Response
		if parts, err = split(res, calls); err == nil {
			for i, c := range calls {
				c.done <- result{parts[i], nil}
			}
			return
		}
		b.cfg.Logger.Error("batched call returned outputs that cannot be split", "err", err)
	}
	for _, c := range calls {
		c.done <- result{nil, err}
	}
}

// mergedContext is cancelled when every caller's context is done (or the
// timeout passes), so a merged call stops only when nobody waits for it.
func mergedContext(calls []*call, timeout time.Duration) (context.Context, context.CancelFunc) {
	base, cancel := context.WithCancel(context.Background())
	ctx, cancelTimeout := base, context.CancelFunc(func() {})
	if timeout > 0 {
		ctx, cancelTimeout = context.WithTimeout(base, timeout)
	}
	var left atomic.Int32
	left.Store(int32(len(calls)))
	stops := make([]func() bool, 0, len(calls))
	for _, c := range calls {
		stops = append(stops, context.AfterFunc(c.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancelTimeout()
		cancel()
	}
}

// batchKey returns a key shared exactly by requests that can be merged,
// and the request's row count.
func batchKey(req *runtime.Request) (string, int, bool) {
	if len(req.Inputs) == 0 {
		return "", 0, false
	}
	var sb strings.Builder
	rows := -1
	for _, in := range req.Inputs {
		// A malformed tensor (data that does not fit its datatype or
		// shape) goes alone, to be refused by the model: merged, it would
		// fail its batch's other callers, or panic in merge on the
		// batcher's goroutine, which no server recovers.
		if len(in.Shape) == 0 || in.Validate() != nil {
			return "", 0, false
		}
		if rows >= 0 && int(in.Shape[0]) != rows {
			return "", 0, false
		}
		rows = int(in.Shape[0])
		fmt.Fprintf(&sb, "%s|%s|%v;", in.Name, in.Datatype, in.Shape[1:])
	}
	fmt.Fprintf(&sb, "out=%v;", req.Outputs)
	keys := make([]string, 0, len(req.Parameters))
	for k := range req.Parameters {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%v;", k, req.Parameters[k])
	}
	return sb.String(), rows, rows > 0
}

func rowsOf(calls []*call) int {
	n := 0
	for _, c := range calls {
		n += c.rows
	}
	return n
}

// merge concatenates the callers' inputs along the first dimension.
func merge(calls []*call) (*runtime.Request, error) {
	first := calls[0].req
	out := &runtime.Request{Outputs: first.Outputs, Parameters: first.Parameters}
	total := rowsOf(calls)
	for i, in := range first.Inputs {
		shape := append([]int64{int64(total)}, in.Shape[1:]...)
		data, err := tensor.MakeData(in.Datatype, 0)
		if err != nil {
			return nil, err
		}
		for _, c := range calls {
			data = appendData(data, c.req.Inputs[i].Data)
		}
		out.Inputs = append(out.Inputs, &tensor.Tensor{Name: in.Name, Datatype: in.Datatype, Shape: shape, Data: data})
	}
	return out, nil
}

// appendData appends src to dst; both hold the same slice type.
func appendData(dst, src any) any {
	switch d := dst.(type) {
	case []bool:
		return append(d, src.([]bool)...)
	case []uint8:
		return append(d, src.([]uint8)...)
	case []uint16:
		return append(d, src.([]uint16)...)
	case []uint32:
		return append(d, src.([]uint32)...)
	case []uint64:
		return append(d, src.([]uint64)...)
	case []int8:
		return append(d, src.([]int8)...)
	case []int16:
		return append(d, src.([]int16)...)
	case []int32:
		return append(d, src.([]int32)...)
	case []int64:
		return append(d, src.([]int64)...)
	case []float32:
		return append(d, src.([]float32)...)
	case []float64:
		return append(d, src.([]float64)...)
	case [][]byte:
		return append(d, src.([][]byte)...)
	}
	return dst
}

// split cuts every output along its first dimension into the callers' rows.
func split(res *runtime.Response, calls []*call) ([]*runtime.Response, error) {
	total := rowsOf(calls)
	parts := make([]*runtime.Response, len(calls))
	for i := range parts {
		parts[i] = &runtime.Response{Parameters: res.Parameters}
	}
	for _, out := range res.Outputs {
		if len(out.Shape) == 0 || int(out.Shape[0]) != total {
			return nil, fmt.Errorf("output %q has shape %v; a batched call of %d rows needs it to lead with %d", out.Name, out.Shape, total, total)
		}
		// Cutting data shorter than its shape would panic on the
		// batcher's goroutine and end the process.
		if err := out.Validate(); err != nil {
			return nil, fmt.Errorf("the model produced a malformed output: %w", err)
		}
		per := 1
		for _, d := range out.Shape[1:] {
			per *= int(d)
		}
		off := 0
		for i, c := range calls {
			shape := append([]int64{int64(c.rows)}, out.Shape[1:]...)
			parts[i].Outputs = append(parts[i].Outputs, &tensor.Tensor{
				Name: out.Name, Datatype: out.Datatype, Shape: shape, Parameters: out.Parameters,
				Data: sliceData(out.Data, off*per, (off+c.rows)*per),
			})
			off += c.rows
		}
	}
	return parts, nil
}

func sliceData(data any, lo, hi int) any {
	switch d := data.(type) {
	case []bool:
		return d[lo:hi:hi]
	case []uint8:
		return d[lo:hi:hi]
	case []uint16:
		return d[lo:hi:hi]
	case []uint32:
		return d[lo:hi:hi]
	case []uint64:
		return d[lo:hi:hi]
	case []int8:
		return d[lo:hi:hi]
	case []int16:
		return d[lo:hi:hi]
	case []int32:
		return d[lo:hi:hi]
	case []int64:
		return d[lo:hi:hi]
	case []float32:
		return d[lo:hi:hi]
	case []float64:
		return d[lo:hi:hi]
	case [][]byte:
		return d[lo:hi:hi]
	}
	return nil
}

// Unwrap returns the wrapped model.
func (b *Batcher) Unwrap() runtime.Model { return b.m }
