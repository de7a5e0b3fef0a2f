package http1

import (
	"context"
	"sync"
	"sync/atomic"
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

// hangupIdleTicks is how many ticks without a running handler stop the
// ticker (about a second).
const hangupIdleTicks = 200

// hangupTicker is the server's one clock for the hang-up watches: no
// request sets a timer of its own. While any handler runs, it ticks every
// hangupDelay, counting ticks in epoch, and looks at each connection; a
// handler that started before the previous tick has run at least the
// delay (and at most twice it) and gets watched. After about a second
// with no handler running it stops, so an idle server does not wake up.
type hangupTicker struct {
	s     *Server
	on    atomic.Bool
	epoch atomic.Int64
}

// ensure starts the ticker unless it runs. A handler calls it after it
// is marked running: the ticker, before it stops, clears on and looks
// once more, so either it sees the handler or the handler sees on false.
func (t *hangupTicker) ensure() {
	if t.on.Load() || !t.on.CompareAndSwap(false, true) {
		return
	}
	go t.run()
}

func (t *hangupTicker) run() {
	tk := time.NewTicker(t.s.hangupDelay)
	defer tk.Stop()
	idle := 0
	for range tk.C {
		epoch := t.epoch.Add(1)
		if t.scan(epoch) {
			idle = 0
			continue
		}
		// Between two requests of a busy connection no handler may run:
		// stopping then would cost the next request a new goroutine.
		if idle++; idle < hangupIdleTicks {
			continue
		}
		idle = 0
		t.on.Store(false)
		if !t.scan(epoch) || !t.on.CompareAndSwap(false, true) {
			return
		}
	}
}

// scan polls every connection's watch; it reports whether any handler
// runs.
func (t *hangupTicker) scan(epoch int64) bool {
	s := t.s
	busy := false
	s.mu.Lock()
	for c := range s.conns {
		if c.hangup.poll(epoch) {
			busy = true
		}
	}
	s.mu.Unlock()
	return busy
}

// hangupWatch cancels the running request's context when its client hangs
// up. Once the handler has run for the delay, has read its whole body and
// no further request is buffered, a goroutine reads the socket: EOF or an
// error means the client is gone; a byte (the next pipelined request) is
// kept for the connection's reader. The handler's return stops the read
// and waits for it, so only one goroutine reads the socket at a time.
type hangupWatch struct {
	c *conn

	mu       sync.Mutex
	running  bool               // a handler runs
	settled  bool               // this request needs no more looks
	since    int64              // the ticker's epoch when it started
	cancel   context.CancelFunc // its request's
	watching bool               // a read is pending or ends
	done     chan struct{}      // closed when that read has ended
}

func (w *hangupWatch) init(c *conn) { w.c = c }

// start is called as a handler starts.
func (w *hangupWatch) start(cancel context.CancelFunc) {
	t := &w.c.srv.ticker
	w.mu.Lock()
	w.running, w.settled, w.cancel = true, false, cancel
	w.since = t.epoch.Load()
	w.mu.Unlock()
	t.ensure()
}

// stop is called when the handler has returned; after it, the connection
// owns its socket's reads (and read deadline) again.
func (w *hangupWatch) stop() {
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

// poll runs on the ticker's goroutine at each tick; it starts the watch
// of a handler that has run long enough and reports whether one runs.
func (w *hangupWatch) poll(epoch int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.running {
		return false
	}
	if w.watching || w.settled || epoch < w.since+2 {
		return true
	}
	if !w.c.body.done() {
		// The handler still reads its body (a failing read tells it of a
		// hang-up); look again at the next tick.
		return true
	}
	w.settled = true
	if w.c.br.Buffered() > 0 {
		// The client has sent its next request already: the read
		// would learn nothing.
		return true
	}
	// Under mu, so that stop's deadline in the past comes after this one.
	if w.c.rwc.SetReadDeadline(time.Time{}) != nil {
		return true
	}
	w.watching, w.done = true, make(chan struct{})
	go w.watch(w.cancel, w.done)
	return true
}

// watch reads the socket until the client sends or hangs up, or stop
// ends the read.
func (w *hangupWatch) watch(cancel context.CancelFunc, done chan struct{}) {
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
