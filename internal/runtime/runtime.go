// Package runtime owns the seam between protocols and model evaluators: the
// Model interface every runtime implements, the request and response types
// it takes, and the detection of a model's format from the files in its
// directory. Runtimes live in sub-packages and know nothing of protocols.
package runtime

import (
	"context"
	"errors"

	"github.com/ferryserve/ferry/internal/tensor"
)

// Model is a loaded model ready to evaluate.
//
// Predict must be safe for concurrent use, must not retain req after it
// returns, and should return promptly once ctx is done. Errors that blame the
// input wrap ErrInvalidInput; errors that wrap nothing are internal.
// Close releases the model's resources; Predict is not called after Close.
type Model interface {
	Metadata() Metadata
	Predict(ctx context.Context, req *Request) (*Response, error)
	Close() error
}

// Request is one inference call on typed tensors.
type Request struct {
	Inputs []*tensor.Tensor
	// Outputs names the outputs the caller wants; empty means the model's
	// default outputs. A runtime may compute extra outputs (such as
	// predict_proba) only when they are named here.
	Outputs    []string
	Parameters map[string]any
}

// Response carries the model's outputs, each with its name, datatype and
// shape set.
type Response struct {
	Outputs    []*tensor.Tensor
	Parameters map[string]any
}

// Metadata describes a model's inputs and outputs. A -1 in a shape marks a
// variable dimension (usually the batch).
type Metadata struct {
	Platform   string
	Inputs     []TensorMeta
	Outputs    []TensorMeta
	Properties map[string]string
}

// TensorMeta describes one input or output tensor.
type TensorMeta struct {
	Name     string
	Datatype tensor.DataType
	Shape    []int64
}

// Errors runtimes return; protocol code maps them to status codes.
var (
	// ErrInvalidInput: the request does not fit the model (feature count,
	// datatype, shape). Maps to 400 / INVALID_ARGUMENT.
	ErrInvalidInput = errors.New("invalid input")
	// ErrUnsupported: the model or request uses a feature Ferry does not
	// implement. Maps to 501 / UNIMPLEMENTED at request time.
	ErrUnsupported = errors.New("unsupported")
	// ErrCorruptModel: the model file cannot be parsed.
	ErrCorruptModel = errors.New("corrupt model file")
)

// Unwrap returns the innermost model of a chain of wrappers (such as the
// batcher) that expose it with an Unwrap method, so callers can look for
// optional interfaces of the real model.
func Unwrap(m Model) Model {
	for {
		w, ok := m.(interface{ Unwrap() Model })
		if !ok {
			return m
		}
		m = w.Unwrap()
	}
}
