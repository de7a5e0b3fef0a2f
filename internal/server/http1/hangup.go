package http1

import (
	"context"
	"sync"
	"time"
)

// hangupDelay is how long a handler runs before the connection starts
// watching for the client to hang up. net/http reads in the background
// during every request; a delay spares the short requests (nearly all of
// an inference server's) that cost, and still cancels long ones — a
// timed-out client's batch or explanation — as net/http would.
const hangupDelay = 5 * time.Millisecond

// testHookHangup, when set (by tests, before serving), is told when the
// watch starts its read ("reading") and when that read has ended ("read").
var testHookHangup func(stage string)

// aLongTimeAgo is a read deadline that ends a pending read at once.
var aLongTimeAgo = time.Unix(1, 0)

// hangupWatch cancels the running request's context when its client hangs
// up. Once the handler has run for the delay, has read its whole body and
// no further request is buffered, a goroutine reads the socket: EOF or an
// error means the client is gone; a byte (the next pipelined request) is
// kept for the connection's reader. The handler's return stops the read
// and waits for it, so only one goroutine reads the socket at a time.
type hangupWatch struct {
	c     *conn
	timer *time.Timer
	delay time.Duration

	mu       sync.Mutex
	running  bool               // a handler runs
	cancel   context.CancelFunc // its request's
	watching bool               // a read is pending or ends
	done     chan struct{}      // closed when that read has ended
}

func (w *hangupWatch) init(c *conn, delay time.Duration) {
	w.c, w.delay = c, delay
	w.timer = time.AfterFunc(time.Hour, w.fire)
	w.timer.Stop()
}

// start is called as a handler starts.
func (w *hangupWatch) start(cancel context.CancelFunc) {
	w.mu.Lock()
	w.running, w.cancel = true, cancel
	w.mu.Unlock()
	w.timer.Reset(w.delay)
}

// stop is called when the handler has returned; after it, the connection
// owns its socket's reads (and read deadline) again.
func (w *hangupWatch) stop() {
	w.timer.Stop()
	w.mu.Lock()
	w.running, w.cancel = false, nil
	watching, done := w.watching, w.done
	if watching {
		_ = w.c.rwc.SetReadDeadline(aLongTimeAgo)
	}
	w.mu.Unlock()
	if !watching {
		return
	}
	<-done
	w.mu.Lock()
	w.watching = false
	w.mu.Unlock()
	w.c.dr.reapply()
}

// fire runs on the timer's goroutine.
func (w *hangupWatch) fire() {
	w.mu.Lock()
	if !w.running || w.watching {
		w.mu.Unlock()
		return
	}
	if !w.c.body.done() {
		// The handler still reads its body (a failing read tells it of a
		// hang-up); look again later.
		w.mu.Unlock()
		w.timer.Reset(w.delay)
		return
	}
	if w.c.br.Buffered() > 0 {
		// The client has sent its next request already: the read
		// would learn nothing.
		w.mu.Unlock()
		return
	}
	// Under mu, so that stop's deadline in the past comes after this one.
	if w.c.rwc.SetReadDeadline(time.Time{}) != nil {
		w.mu.Unlock()
		return
	}
	w.watching, w.done = true, make(chan struct{})
	cancel, done := w.cancel, w.done
	w.mu.Unlock()

	defer close(done)
	if testHookHangup != nil {
		testHookHangup("reading")
	}
	var b [1]byte
	n, err := w.c.rwc.Read(b[:])
	if testHookHangup != nil {
		defer testHookHangup("read")
	}
	if n == 1 {
		w.c.dr.unread(b[0])
		return
	}
	w.mu.Lock()
	stopped := !w.running
	w.mu.Unlock()
	if err != nil && !stopped {
		cancel() // EOF, reset or closed: nobody waits for the answer
	}
}
