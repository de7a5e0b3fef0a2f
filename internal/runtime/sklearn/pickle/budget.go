package pickle

import (
	"errors"
	"fmt"
)

// DefaultBudget is the decode budget when Options.Budget is zero.
const DefaultBudget = 1 << 30

// ErrBudget: decoding the file would commit more memory than its budget.
var ErrBudget = errors.New("pickle decode budget exceeded")

// BudgetError reports the part of a file that went over the decode budget.
// It matches ErrBudget with errors.Is.
type BudgetError struct {
	// Limit is the budget in bytes.
	Limit int64
	// Detail says what went over it.
	Detail string
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("pickle decode budget of %d bytes exceeded: %s", e.Limit, e.Detail)
}

// Is makes errors.Is(err, ErrBudget) true.
func (e *BudgetError) Is(target error) bool { return target == ErrBudget }

// Approximate costs, in bytes on a 64-bit platform, of what the decoder
// allocates per item. They need not be exact: the budget exists to stop
// files whose few bytes expand into gigabytes (a zlib stream of 100 M MARKs,
// a run of MEMOIZE, DUP fed to APPENDS), and real models cost within a
// small factor of their decompressed size.
const (
	costSlot = 16 // an interface value: a stack slot or a container element
	costMark = 8  // one open MARK
	costMemo = 80 // one memo entry: key, value, the map's overhead and growth
	costObj  = 64 // a container or object header
)

// budget is the memory one decode may still commit. It is shared by the
// nested pickles of a joblib file and never refunded: what is decoded stays
// reachable from the result or was transient garbage that cost as much.
type budget struct {
	limit, used int64
}

func newBudget(limit int64) *budget {
	if limit <= 0 {
		limit = DefaultBudget
	}
	return &budget{limit: limit}
}

// charge commits n bytes and reports whether the budget still holds. The
// caller builds the error with exceeded only on failure, so the hot path
// formats nothing.
func (b *budget) charge(n int64) bool {
	b.used += n
	return b.used <= b.limit
}

// exceeded builds the error for a failed charge.
func (b *budget) exceeded(format string, args ...any) error {
	return &BudgetError{Limit: b.limit, Detail: fmt.Sprintf(format, args...)}
}
