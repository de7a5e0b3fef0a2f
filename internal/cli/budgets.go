package cli

import (
	"net/http"

	"google.golang.org/grpc"

	"github.com/ferryserve/ferry/internal/protocol"
)

// budgetOptions are ferry serve's memory budgets (docs/serving.md, "Memory
// budgets"): per request, per ONNX inference and per model decode.
type budgetOptions struct {
	requestElements int64 // --max-request-elements
	requestBytes    int64 // --max-request-decoded-bytes
	inferenceBytes  int64 // --max-inference-bytes
	decodeBytes     int64 // --max-model-decode-bytes
}

// install adds the request limits to the server's HTTP middleware and gRPC
// interceptors, first, so they reach the V1 and V2 decoders of every
// request.
func (o budgetOptions) install(mw []func(http.Handler) http.Handler, ic []grpc.UnaryServerInterceptor) ([]func(http.Handler) http.Handler, []grpc.UnaryServerInterceptor) {
	lim := o.requestLimits()
	return append(mw, protocol.LimitsMiddleware(lim)), append(ic, protocol.LimitsInterceptor(lim))
}

// requestLimits are the per-request budgets.
func (o budgetOptions) requestLimits() protocol.Limits {
	return protocol.Limits{MaxElements: o.requestElements, MaxDecodedBytes: o.requestBytes}
}
