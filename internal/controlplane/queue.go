package controlplane

import (
	"sync"
	"time"
)

// workQueue hands object keys to workers, as controller-runtime's queue
// does: a key waits at most once (adding it again while it waits is a
// no-op), a key being processed is never handed to a second worker (added
// meanwhile, it is queued again when the first finishes), and failed keys
// come back after a per-key exponential delay.
type workQueue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	queue      []string
	waiting    map[string]bool // in queue, or to be queued when processing ends
	processing map[string]bool
	failures   map[string]int
	shutdown   bool

	baseDelay, maxDelay time.Duration
}

func newWorkQueue(baseDelay, maxDelay time.Duration) *workQueue {
	q := &workQueue{waiting: map[string]bool{}, processing: map[string]bool{}, failures: map[string]int{}, baseDelay: baseDelay, maxDelay: maxDelay}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues key unless it already waits.
func (q *workQueue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown || q.waiting[key] {
		return
	}
	q.waiting[key] = true
	if q.processing[key] {
		return // Done queues it again
	}
	q.queue = append(q.queue, key)
	q.cond.Signal()
}

// AddAfter queues key after d.
func (q *workQueue) AddAfter(key string, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	time.AfterFunc(d, func() { q.Add(key) })
}

// AddRateLimited queues key again after a delay that doubles with each
// consecutive failure (from baseDelay up to maxDelay).
func (q *workQueue) AddRateLimited(key string) {
	q.mu.Lock()
	n := q.failures[key]
	q.failures[key] = n + 1
	q.mu.Unlock()
	d := q.baseDelay
	for i := 0; i < n && d < q.maxDelay; i++ {
		d *= 2
	}
	q.AddAfter(key, min(d, q.maxDelay))
}

// Forget clears key's failure count after a success.
func (q *workQueue) Forget(key string) {
	q.mu.Lock()
	delete(q.failures, key)
	q.mu.Unlock()
}

// Get blocks until a key is ready for a worker, or the queue shuts down
// (ok false). The caller must call Done(key) when finished.
func (q *workQueue) Get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.queue) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if len(q.queue) == 0 {
		return "", false
	}
	key, q.queue = q.queue[0], q.queue[1:]
	delete(q.waiting, key)
	q.processing[key] = true
	return key, true
}

// Done marks key processed, queuing it again if it was added meanwhile.
func (q *workQueue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.waiting[key] && !q.shutdown {
		q.queue = append(q.queue, key)
		q.cond.Signal()
	}
}

// Len is the number of keys waiting.
func (q *workQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// ShutDown wakes every Get; queued keys are dropped.
func (q *workQueue) ShutDown() {
	q.mu.Lock()
	q.shutdown = true
	q.queue = nil
	q.cond.Broadcast()
	q.mu.Unlock()
}
