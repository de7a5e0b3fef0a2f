package http1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// conn is one client connection and everything it reuses from one request
// to the next. Only its goroutine touches it, except state (Shutdown) and
// the read deadline (a handler's body reader may run on a goroutine of
// the handler's).
type conn struct {
	srv    *Server
	rwc    net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	state  atomic.Int32
	dr     deadlineReader
	br     *bufio.Reader
	bw     *bufio.Writer
	remote string

	head       head
	url        url.URL
	hdr        http.Header
	intern     interner
	keyScratch [64]byte
	vals       []string
	body       body
	resp       response
	hangup     hangupWatch

	dateSec   int64
	date      []byte
	handedOff bool
	// answered is set when an answer has just been flushed: the next
	// wait for a request yields first (waitRequest).
	answered bool
}

// deadlineReader applies the read deadline lazily, right before a read
// that reaches the socket: a request whose bytes are already buffered sets
// no timer at all.
type deadlineReader struct {
	c       net.Conn
	want    atomic.Int64 // unix nanoseconds; 0 = none
	applied int64        // what the socket has; -1: unknown
	// pending is a byte the hang-up watch read ahead of the reader.
	pending    byte
	hasPending bool
	// raw reads the socket without waiting (nil: the connection has no
	// file descriptor, or the platform no such read); try makes Read do
	// so (readNow).
	raw    syscall.RawConn
	try    bool
	readFD func(fd uintptr) bool // bound once: a closure per read would allocate
	tryP   []byte
	tryN   int
	tryErr error
}

// errWouldWait is what a read in try mode returns when it did not get
// bytes at once (nothing there, end of stream, an error): the waiting
// read that follows learns which.
var errWouldWait = errors.New("http1: no bytes without waiting")

// unread gives back a byte read from the socket past the reader.
func (d *deadlineReader) unread(b byte) { d.pending, d.hasPending = b, true }

// reapply makes the next read set the socket's deadline again (someone
// else has changed it).
func (d *deadlineReader) reapply() { d.applied = -1 }

func (d *deadlineReader) set(t time.Time) {
	if t.IsZero() {
		d.want.Store(0)
		return
	}
	d.want.Store(t.UnixNano())
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if d.hasPending && len(p) > 0 {
		p[0], d.hasPending = d.pending, false
		return 1, nil
	}
	if d.try {
		return d.readNow(p)
	}
	if w := d.want.Load(); w != d.applied {
		t := time.Time{}
		if w != 0 {
			t = time.Unix(0, w)
		}
		if err := d.c.SetReadDeadline(t); err != nil {
			return 0, err
		}
		d.applied = w
	}
	return d.c.Read(p)
}

func (c *conn) serve() {
	defer c.srv.forget(c)
	defer c.cancel()
	c.dr.c = c.rwc
	c.dr.initRaw()
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(&c.dr)
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(c.rwc)
	defer func() {
		if !c.handedOff {
			// Answers to pipelined requests may still be buffered when
			// the connection ends early (a handler panicked, the next
			// head never completed).
			_ = c.bw.Flush()
			c.rwc.Close()
		}
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
	}()
	c.remote = c.rwc.RemoteAddr().String()
	c.hdr = http.Header{}
	c.resp.hdr = http.Header{}
	c.intern = interner{}
	c.body.c = c
	c.resp.c = c
	c.hangup.init(c)
	for c.serveOne() {
	}
}

// serveOne reads and answers one request; false ends the connection.
func (c *conn) serveOne() bool {
	if c.br.Buffered() == 0 {
		if !c.waitRequest() {
			return false
		}
	}
	n, ok := c.readHead()
	if !ok {
		return false
	}
	h := &c.head
	if h.proto != 11 || h.connUpgrade || string(h.method) == "PRI" || string(h.method) == "CONNECT" {
		c.handOver()
		return false
	}
	// The head is in: body reads are bounded by the handler (the
	// body-rate bound sets deadlines), not by the head's timeouts.
	c.dr.set(time.Time{})
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	req, err := c.newRequest(ctx, h)
	if err != nil {
		c.reject(http.StatusBadRequest, "invalid request target")
		return false
	}
	c.br.Discard(n) // the head's slices are dead from here on
	c.resp.reset(req)
	c.hangup.start(cancel)
	ok = c.runHandler(req)
	c.hangup.stop()
	if !ok {
		return false
	}
	cancel() // as net/http does when the handler returns
	c.body.close()
	if err := c.resp.finish(); err != nil {
		return false
	}
	if c.resp.closeAfter {
		if c.bw.Flush() == nil {
			c.lingerClose()
		}
		return false
	}
	// Pipelined requests already buffered are answered before one flush.
	if c.br.Buffered() == 0 {
		if err := c.bw.Flush(); err != nil {
			return false
		}
		c.answered = true
	}
	return true
}

// waitRequest waits, idle, for the first byte of the next request.
func (c *conn) waitRequest() bool {
	if c.bw.Buffered() > 0 && c.bw.Flush() != nil {
		return false
	}
	now := time.Now()
	if c.answered {
		c.answered = false
		if c.yieldForRequest(now) {
			return true
		}
	}
	c.dr.set(now.Add(c.srv.IdleTimeout))
	c.state.Store(stateIdle)
	if c.srv.closing.Load() {
		return false
	}
	_, err := c.br.Peek(1)
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		return false // Shutdown closed it
	}
	if err == nil && c.dr.raw != nil {
		if d := time.Since(now); d > parkedAtLeast {
			// The read waited in the poller, so the scheduler polled the
			// network just now: every connection whose bytes had come is
			// runnable again, and yielding may go on a while.
			c.srv.polled.Store(int64(time.Since(monoBase)))
		}
	}
	return err == nil
}

// Bounds of yieldForRequest.
const (
	// maxYields is how many times a connection lets the others run before
	// it waits in the poller.
	maxYields = 4
	// aloneUnder is how short a yield is when nothing else ran.
	aloneUnder = 2 * time.Microsecond
	// yieldWindow is how long after the network was last polled
	// connections may yield instead of waiting in the poller.
	yieldWindow = 2 * time.Millisecond
	// parkedAtLeast is how long a read that waited in the poller took
	// at least.
	parkedAtLeast = 20 * time.Microsecond
)

// monoBase is the origin of Server.polled's monotonic clock.
var monoBase = time.Now()

// yieldForRequest runs right after an answer has gone out, and reports
// whether the next request's first bytes are in. A client that waits for
// each answer (keep-alive without pipelining) has rarely sent its next
// request by then, so a read would find nothing; that read, the park in
// the poller and the wake-up cost about as much as the read that gets the
// request. Instead the connection yields, so that the goroutines of other
// connections run first, then reads what has come without waiting. It
// gives up (and the caller waits in the poller) when a yield finds nothing
// else to run, so an idle server sleeps as before.
//
// Go's scheduler polls the network only when no goroutine is runnable (or
// every 10 ms): while connections keep yielding, one that waits in the
// poller is not woken even once its request is in. So connections yield
// only within yieldWindow of the last poll seen (a read that waited in the
// poller); past it they wait in the poller again, the run queue empties,
// the network is polled and every connection waiting for it resumes.
func (c *conn) yieldForRequest(now time.Time) bool {
	s := c.srv
	if c.dr.raw == nil || now.Sub(monoBase)-time.Duration(s.polled.Load()) > yieldWindow {
		return false
	}
	for range maxYields {
		t := time.Now()
		runtime.Gosched()
		if time.Since(t) < aloneUnder || s.closing.Load() {
			return false // nothing else ran: wait in the poller
		}
		c.dr.try = true
		_, err := c.br.Peek(1)
		c.dr.try = false
		if err == nil {
			return true
		}
	}
	return false
}

// readHead reads until the buffer holds a whole head and parses it; it
// answers malformed heads and hands oversized ones to the fallback.
func (c *conn) readHead() (int, bool) {
	timed := false
	scanned := 0
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		// Empty lines before a request line are ignored (RFC 9112 2.2):
		// some clients send CRLF after a POST body.
		if skip := leadingEmptyLines(buf); skip > 0 {
			c.br.Discard(skip)
			buf = buf[skip:]
		}
		if len(buf) > 0 {
			if end := headEnd(buf, scanned); end > 0 {
				n, err := parseHead(buf[:end], &c.head)
				if err == nil && n != end {
					err = errMalformed
				}
				if err != nil {
					c.rejectHead(err)
					return 0, false
				}
				return n, true
			}
		}
		scanned = len(buf)
		if c.br.Buffered() == c.br.Size() {
			c.handOver() // larger than our buffer: net/http applies MaxHeaderBytes
			return 0, false
		}
		if !timed {
			c.dr.set(time.Now().Add(c.srv.ReadHeaderTimeout))
			timed = true
		}
		// Answers to earlier pipelined requests go out before we wait.
		if c.bw.Buffered() > 0 && c.bw.Flush() != nil {
			return 0, false
		}
		if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
			return 0, false
		}
	}
}

func leadingEmptyLines(b []byte) int {
	n := 0
	for n < len(b) && (b[n] == '\r' || b[n] == '\n') {
		n++
	}
	return n
}

func (c *conn) rejectHead(err error) {
	switch {
	case errors.Is(err, errUnsupportedTE):
		c.reject(http.StatusNotImplemented, "unsupported transfer encoding")
	case errors.Is(err, errBadExpectation):
		c.reject(http.StatusExpectationFailed, "unsupported Expect")
	default:
		c.reject(http.StatusBadRequest, err.Error())
	}
}

// reject answers a request the server cannot take and closes the
// connection, as net/http does.
func (c *conn) reject(code int, msg string) {
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n%d %s: %s", code, http.StatusText(code), code, http.StatusText(code), msg)
	if c.bw.Flush() == nil {
		c.lingerClose()
	}
}

// Bounds of lingerClose.
const (
	lingerTimeout = 500 * time.Millisecond
	maxLinger     = 256 << 10
)

// lingerClose half-closes the connection and reads what the client still
// sends until it closes its side too (or lingerTimeout passes): closing a
// socket with unread input resets it, and a reset can destroy the last
// answer before the client has read it.
func (c *conn) lingerClose() {
	tc, ok := c.rwc.(*net.TCPConn)
	if !ok || tc.CloseWrite() != nil {
		return
	}
	_ = c.rwc.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.CopyN(io.Discard, c.rwc, maxLinger)
}

var chunkedTE = []string{"chunked"}

func (c *conn) newRequest(ctx context.Context, h *head) (*http.Request, error) {
	if err := c.parseTarget(h.target, &c.url); err != nil {
		return nil, err
	}
	// WithContext is the only way to give a request its own context, so
	// each request is new; its URL and Header are the connection's, reused
	// by the next request (a handler must not keep them past its return).
	req := (&http.Request{}).WithContext(ctx)
	req.Method = methodString(h.method, c.intern)
	req.URL = &c.url
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	c.fillHeader(h, c.hdr)
	req.Header = c.hdr
	req.Host = c.intern.str(h.host)
	if c.url.Host != "" {
		req.Host = c.url.Host
	}
	req.RemoteAddr = c.remote
	req.RequestURI = c.intern.str(h.target)
	req.Close = h.connClose
	c.body.reset(h)
	switch {
	case h.chunked:
		req.ContentLength = -1
		req.TransferEncoding = chunkedTE
		req.Body = &c.body
	case h.contentLength > 0:
		req.ContentLength = h.contentLength
		req.Body = &c.body
	default:
		req.ContentLength = 0
		req.Body = http.NoBody
	}
	return req, nil
}

func methodString(m []byte, in interner) string {
	switch string(m) {
	case "POST":
		return http.MethodPost
	case "GET":
		return http.MethodGet
	case "HEAD":
		return http.MethodHead
	case "PUT":
		return http.MethodPut
	case "DELETE":
		return http.MethodDelete
	case "OPTIONS":
		return http.MethodOptions
	}
	return in.str(m)
}

// runHandler calls the handler, recovering a panic as net/http does: the
// connection is closed and, unless it is http.ErrAbortHandler, logged.
func (c *conn) runHandler(req *http.Request) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler { //nolint:errorlint // net/http compares it the same way
				buf := make([]byte, 16<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.Logger.Error("http handler panicked", "remote", c.remote, "path", req.URL.Path, "panic", p, "stack", string(buf))
			}
			ok = false
		}
	}()
	c.srv.Handler.ServeHTTP(&c.resp, req)
	return true
}

// now returns the current time and the Date header value for it, which is
// formatted once a second per connection.
func (c *conn) dateHeader() []byte {
	now := time.Now()
	if s := now.Unix(); s != c.dateSec || c.date == nil {
		c.date = now.UTC().AppendFormat(c.date[:0], http.TimeFormat)
		c.dateSec = s
	}
	return c.date
}

var _ io.ReadCloser = (*body)(nil)
