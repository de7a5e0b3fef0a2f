// Package protocol holds what the V1 and V2 protocol packages share: the
// request-level errors they raise and the one function that maps every
// domain error to an HTTP status and a gRPC code.
package protocol

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/grpc/codes"

	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// Errors raised by protocol code itself.
var (
	// ErrBadRequest: the request cannot be decoded or breaks the protocol.
	ErrBadRequest = errors.New("bad request")
	// ErrTooLarge: the request body, or what it decodes to, exceeds the
	// server's limits (see Limits).
	ErrTooLarge = errors.New("request too large")
	// ErrNotImplemented: the endpoint or feature exists in the protocol but
	// not (yet) in Ferry.
	ErrNotImplemented = errors.New("not implemented")
	// ErrServerNotReady: the server is not ready to take requests.
	ErrServerNotReady = errors.New("server not ready")
)

// Status maps an error to the HTTP status and gRPC code the client sees.
// It is the only place in Ferry that does so.
func Status(err error) (int, codes.Code) {
	switch {
	case err == nil:
		return http.StatusOK, codes.OK
	case errors.Is(err, ErrTooLarge),
		errors.Is(err, runtime.ErrBudget):
		return http.StatusRequestEntityTooLarge, codes.ResourceExhausted
	case errors.Is(err, ErrBadRequest),
		errors.Is(err, runtime.ErrInvalidInput),
		errors.Is(err, tensor.ErrInvalid):
		return http.StatusBadRequest, codes.InvalidArgument
	case errors.Is(err, repository.ErrModelNotFound),
		errors.Is(err, repository.ErrVersionNotFound):
		return http.StatusNotFound, codes.NotFound
	case errors.Is(err, repository.ErrModelNotReady),
		errors.Is(err, ErrServerNotReady):
		return http.StatusServiceUnavailable, codes.Unavailable
	case errors.Is(err, ErrNotImplemented),
		errors.Is(err, runtime.ErrUnsupported):
		return http.StatusNotImplemented, codes.Unimplemented
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		// 499 is the de-facto "client closed request" code.
		return 499, codes.Canceled
	}
	return http.StatusInternalServerError, codes.Internal
}
