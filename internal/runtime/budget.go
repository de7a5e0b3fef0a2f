package runtime

import (
	"context"
	"errors"
)

// ErrBudget: a model load or an inference needs more memory than its
// budget allows (a decode budget at load, an intermediate-tensor budget at
// request time). Maps to 413 / RESOURCE_EXHAUSTED at request time. Errors
// wrapping it name the budget and the flag that raises it.
var ErrBudget = errors.New("memory budget exceeded")

type decodeBudgetKey struct{}

// WithDecodeBudget returns a context that bounds the memory a model load
// may commit while decoding its file to n bytes. Loaders that decode
// formats able to expand (pickle, compressed streams) read it with
// DecodeBudget; n <= 0 leaves ctx as it is.
func WithDecodeBudget(ctx context.Context, n int64) context.Context {
	if n <= 0 {
		return ctx
	}
	if cur := DecodeBudget(ctx); cur > 0 && cur < n {
		return ctx // a tighter budget is already set
	}
	return context.WithValue(ctx, decodeBudgetKey{}, n)
}

// DecodeBudget is the decode budget set by WithDecodeBudget, or 0 for none
// (the loader's own default applies).
func DecodeBudget(ctx context.Context) int64 {
	n, _ := ctx.Value(decodeBudgetKey{}).(int64)
	return n
}
