package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrOverloaded means a revision's replicas and its queue are full.
var ErrOverloaded = errors.New("overloaded")

// limiter enforces containerConcurrency for one revision: at most capacity
// requests run; up to queue more wait in arrival order; beyond that requests
// are refused at once rather than piling up memory.
type limiter struct {
	mu       sync.Mutex
	inflight int
	waiters  []chan struct{}
}

func (r *Router) limiter(ns, rev string) *limiter {
	k := ns + "/" + rev
	if v, ok := r.limits.Load(k); ok {
		return v.(*limiter)
	}
	v, _ := r.limits.LoadOrStore(k, &limiter{})
	return v.(*limiter)
}

// acquire takes a slot, waiting in the queue if needed.
func (l *limiter) acquire(ctx context.Context, capacity, queue int) error {
	l.mu.Lock()
	if l.inflight < capacity && len(l.waiters) == 0 {
		l.inflight++
		l.mu.Unlock()
		return nil
	}
	if len(l.waiters) >= queue {
		n, q := l.inflight, len(l.waiters)
		l.mu.Unlock()
		return fmt.Errorf("%w: %d requests in flight (the limit) and %d queued", ErrOverloaded, n, q)
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil // a finishing request handed us its slot
	case <-ctx.Done():
		l.mu.Lock()
		if i := slices.Index(l.waiters, ch); i >= 0 {
			l.waiters = slices.Delete(l.waiters, i, i+1)
			l.mu.Unlock()
			return ctx.Err()
		}
		l.mu.Unlock()
		l.release() // the slot arrived as we gave up: pass it on
		return ctx.Err()
	}
}

// release frees a slot, handing it to the first waiter if any.
func (l *limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.waiters) > 0 {
		ch := l.waiters[0]
		l.waiters = l.waiters[1:]
		close(ch)
		return
	}
	l.inflight--
}
