package protocol

import (
	"context"
	"net/http"

	"google.golang.org/grpc"
)

// Limits bound what one inference request may decode to, whatever its wire
// format (REST JSON, the binary tensor extension, gRPC contents or raw
// contents). A request over either gets ErrTooLarge (413 /
// RESOURCE_EXHAUSTED) naming the limit and its flag.
type Limits struct {
	// MaxElements bounds the tensor elements of one request, summed over
	// its inputs (--max-request-elements).
	MaxElements int64
	// MaxDecodedBytes bounds the memory the decoded input tensors take
	// (--max-request-decoded-bytes): the element size for fixed-size
	// datatypes, and for BYTES the element's length plus its 24-byte slice
	// header, so a body of empty strings cannot expand eightfold.
	MaxDecodedBytes int64
}

// Defaults for Limits' zero fields.
const (
	DefaultMaxElements     = 1 << 25   // 33 554 432
	DefaultMaxDecodedBytes = 256 << 20 // 256 MiB
)

// WithDefaults fills zero fields with the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxElements <= 0 {
		l.MaxElements = DefaultMaxElements
	}
	if l.MaxDecodedBytes <= 0 {
		l.MaxDecodedBytes = DefaultMaxDecodedBytes
	}
	return l
}

type limitsKey struct{}

// WithLimits returns a context carrying the request limits l, which take
// precedence over a handler's configured ones.
func WithLimits(ctx context.Context, l Limits) context.Context {
	return context.WithValue(ctx, limitsKey{}, l.WithDefaults())
}

// LimitsFrom returns the limits WithLimits put in ctx, or fallback (with
// defaults filled) when there are none.
func LimitsFrom(ctx context.Context, fallback Limits) Limits {
	if l, ok := ctx.Value(limitsKey{}).(Limits); ok {
		return l
	}
	return fallback.WithDefaults()
}

// LimitsMiddleware sets l on every HTTP request's context. `ferry serve`
// installs it (with LimitsInterceptor for gRPC) so its flags reach the V1
// and V2 decoders.
func LimitsMiddleware(l Limits) func(http.Handler) http.Handler {
	l = l.WithDefaults()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(WithLimits(r.Context(), l)))
		})
	}
}

// LimitsInterceptor sets l on every unary gRPC call's context.
func LimitsInterceptor(l Limits) grpc.UnaryServerInterceptor {
	l = l.WithDefaults()
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(WithLimits(ctx, l), req)
	}
}
