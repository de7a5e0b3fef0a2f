// Package v2 implements the Open Inference Protocol (KServe V2): the JSON
// codec with the binary tensor data extension, the REST handlers, the gRPC
// service, and the model-repository extension. It is the only package that
// knows the V2 wire formats.
package v2

import (
	"github.com/ferryserve/ferry/internal/tensor"
)

// InferRequest is a decoded V2 inference request.
type InferRequest struct {
	ID         string
	Parameters map[string]any
	Inputs     []*tensor.Tensor
	Outputs    []RequestedOutput
}

// RequestedOutput names an output the client wants, with its parameters
// (binary_data among them).
type RequestedOutput struct {
	Name       string
	Parameters map[string]any
}

// InferResponse is a V2 inference response before encoding.
type InferResponse struct {
	ModelName    string
	ModelVersion string
	ID           string
	Parameters   map[string]any
	Outputs      []*tensor.Tensor
}

// Parameter names of the binary tensor data extension.
const (
	paramBinarySize   = "binary_data_size"
	paramBinaryData   = "binary_data"
	paramBinaryOutput = "binary_data_output"
	// HeaderInferenceLength carries the length of the JSON part of a body
	// that has binary tensor data after it.
	HeaderInferenceLength = "Inference-Header-Content-Length"
)

// wantsBinary reports whether output name should be sent as binary data: a
// per-output binary_data parameter wins over the request-level
// binary_data_output.
func (r *InferRequest) wantsBinary(name string) bool {
	for _, o := range r.Outputs {
		if o.Name == name {
			if b, ok := o.Parameters[paramBinaryData].(bool); ok {
				return b
			}
		}
	}
	b, _ := r.Parameters[paramBinaryOutput].(bool)
	return b
}
