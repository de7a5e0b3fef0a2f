package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
)

// PanicError is a panic in a model's code (its loader, its Predict, or a
// goroutine it evaluates rows on), recovered so that it fails the one load
// or request instead of ending the process and every model it serves. It
// maps to 500 / INTERNAL.
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the panicking goroutine's stack.
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("model code panicked: %v", e.Value) }

// Contain calls f and returns its error, or a *PanicError if f panics.
func Contain(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return f()
}

// Parallel runs f(0) … f(n-1) on n goroutines and waits for all of them.
// It returns the first error by index; a panic in any f comes back as a
// *PanicError rather than ending the process, which a panic on a goroutine
// other than the request's would do.
func Parallel(n int, f func(worker int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() { errs[w] = Contain(func() error { return f(w) }) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// contained is a loaded model whose Predict turns a panic into a
// *PanicError. Registry.Load wraps every model it loads in one.
type contained struct {
	Model
	log  *slog.Logger // nil: no log
	file string
}

// Unwrap exposes the model for its optional interfaces (see Unwrap).
func (c contained) Unwrap() Model { return c.Model }

func (c contained) Predict(ctx context.Context, req *Request) (res *Response, err error) {
	err = Contain(func() (err error) {
		res, err = c.Model.Predict(ctx, req)
		return err
	})
	// A panic here, or on a worker (Parallel, which returns it as an
	// error), is logged with its stack.
	if pe, ok := errors.AsType[*PanicError](err); ok {
		logPanic(ctx, c.log, "model code panicked; the request fails, the server goes on", c.file, pe)
		return nil, err
	}
	return res, err
}

// logPanic logs a recovered panic with its stack; log nil logs nothing.
func logPanic(ctx context.Context, log *slog.Logger, msg, file string, pe *PanicError) {
	if log != nil {
		log.ErrorContext(ctx, msg, "file", file, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	}
}
