package http1

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// handoffListener is the listener the fallback net/http server accepts
// from: it yields the connections the fast server hands over.
type handoffListener struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// give hands c over; false when the listener is closed (c is then closed).
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		c.Close()
		return false
	}
}

// replayConn is a connection whose first reads return bytes the fast
// server had already read from it.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// handOver passes the connection, with what its reader holds unread, to
// the fallback server. The deadline is cleared: net/http sets its own.
func (c *conn) handOver() {
	// Answers to earlier pipelined requests go first.
	if c.bw.Flush() != nil {
		return
	}
	var pending []byte
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		pending = append([]byte(nil), b...)
	}
	_ = c.rwc.SetDeadline(time.Time{})
	var nc net.Conn = c.rwc
	if len(pending) > 0 {
		nc = &replayConn{Conn: c.rwc, r: io.MultiReader(bytes.NewReader(pending), c.rwc)}
	}
	c.handedOff = true
	c.srv.handoff.give(nc)
}
