package router

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The hop: the ingress's own HTTP/1.1 client for the plain exchange that
// almost every proxied request is (a predict whose body the ingress read
// whole, answered with a Content-Length or chunked body). It keeps
// keep-alive connections to each replica in a pool, writes the request
// head and body in one write, parses the answer's head from the
// connection's read buffer straight into the ResponseWriter's header, and
// copies the body from that buffer. httputil.ReverseProxy and
// http.Transport do the same exchange with a clone of the request and of
// its header, two goroutines per connection and channels between them; on
// loopback, where the replica answers in tens of microseconds, that
// machinery was most of what the ingress cost.
//
// Anything else — a streamed (large or chunked) request body, an Upgrade,
// CONNECT — still goes through the ReverseProxy (router.go).

// Bounds of the hop.
const (
	hopIdleTimeout    = 60 * time.Second // an idle connection older than this is closed, not reused (replicas keep them 2 min)
	hopMaxIdle        = 256              // idle connections kept per replica
	hopReadBuffer     = 8 << 10
	hopMaxHeaderBytes = 1 << 20 // an answer head larger than this is a bad gateway
	hopDialTimeout    = 5 * time.Second
)

// hopConn is one keep-alive connection to a replica.
type hopConn struct {
	addr string
	nc   net.Conn
	br   *bufio.Reader
	out  []byte            // the request being written
	hdr  []hopField        // the answer's end-to-end fields
	vals map[string]string // header values seen on this connection, reused as strings
	used time.Time         // when it went idle
}

// hopField is a field of an answer head.
type hopField struct{ k, v string }

// hopPool holds the idle connections to each replica, most recent last.
type hopPool struct {
	mu     sync.Mutex
	idle   map[string][]*hopConn
	dialer net.Dialer
	// socket, if set, names the Unix socket where the replica at a TCP
	// address also listens ("": none); the hop dials it first.
	socket func(addr string) string
}

func newHopPool() *hopPool {
	return &hopPool{idle: map[string][]*hopConn{}, dialer: net.Dialer{Timeout: hopDialTimeout, KeepAlive: 30 * time.Second}}
}

// get returns an idle connection to addr, or nil.
func (p *hopPool) get(addr string) *hopConn {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.idle[addr]
	for len(l) > 0 {
		c := l[len(l)-1]
		l[len(l)-1] = nil
		l = l[:len(l)-1]
		if now.Sub(c.used) < hopIdleTimeout {
			p.idle[addr] = l
			return c
		}
		// The newest is stale: so are the rest.
		c.nc.Close()
		for _, o := range l {
			o.nc.Close()
		}
		clear(l)
		l = l[:0]
	}
	p.idle[addr] = l
	return nil
}

// put returns c to the pool, or closes it when the pool of its replica is
// full.
func (p *hopPool) put(c *hopConn) {
	c.used = time.Now()
	p.mu.Lock()
	l := p.idle[c.addr]
	if len(l) < hopMaxIdle {
		p.idle[c.addr] = append(l, c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

// keep closes the idle connections to replicas not in backends (a routing
// update removed them).
func (p *hopPool) keep(backends map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, l := range p.idle {
		if backends[addr] {
			continue
		}
		for _, c := range l {
			c.nc.Close()
		}
		delete(p.idle, addr)
	}
}

func (p *hopPool) dial(ctx context.Context, addr string) (*hopConn, error) {
	var nc net.Conn
	if p.socket != nil {
		if path := p.socket(addr); path != "" {
			nc, _ = p.dialer.DialContext(ctx, "unix", path) // failed: TCP below
		}
	}
	if nc == nil {
		var err error
		if nc, err = p.dialer.DialContext(ctx, "tcp", addr); err != nil {
			return nil, err
		}
	}
	return &hopConn{addr: addr, nc: nc, br: bufio.NewReaderSize(nc, hopReadBuffer), vals: map[string]string{}}, nil
}

// hopBody reports whether req can take the hop, and its body: the
// request must be plain HTTP (no Upgrade, not CONNECT) with no body or
// one the ingress read whole (bufferBody).
func hopBody(req *http.Request) ([]byte, bool) {
	if req.Method == http.MethodConnect || req.Header["Upgrade"] != nil {
		return nil, false
	}
	switch b := req.Body.(type) {
	case nil:
		return nil, true
	case *memBody:
		return b.rest(), true
	}
	if req.Body == http.NoBody {
		return nil, true
	}
	return nil, false
}

// errHopAnswer is a replica's answer the hop could not parse.
var errHopAnswer = errors.New("malformed answer from replica")

// hopTransient marks an error on a reused connection before any answer
// byte: the replica had closed it (idle), and the request may be sent
// again on a new one.
type hopTransient struct{ err error }

func (e hopTransient) Error() string { return e.err.Error() }
func (e hopTransient) Unwrap() error { return e.err }

// forward sends req, whose body is body, to the replica at addr and
// copies the answer to w. It reports whether it could (false: req cannot
// take the hop and nothing was done).
func (r *Router) forward(w http.ResponseWriter, req *http.Request, addr string) bool {
	body, ok := hopBody(req)
	if !ok {
		return false
	}
	ctx := req.Context()
	var err error
	for try := 0; ; try++ {
		c := r.hops.get(addr)
		reused := c != nil
		if c == nil {
			if c, err = r.hops.dial(ctx, addr); err != nil {
				break
			}
		}
		err = r.exchange(ctx, w, req, body, c, reused)
		var tr hopTransient
		if err == nil || try > 0 || !errors.As(err, &tr) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		if errors.Is(err, errHeadersSent) {
			if req.Context().Value(http.ServerContextKey) != nil {
				// The client has part of the answer: cut its connection,
				// as ReverseProxy does.
				panic(http.ErrAbortHandler)
			}
			// An in-process caller (Call): it sees the error its writer
			// returned, or a short answer.
			r.log.Warn("proxy error", "host", req.Host, "path", req.URL.Path, "err", err)
			return true
		}
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("%w (%w)", cerr, err)
		} else if _, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) {
			// The connection's deadline is the context's, and fired first.
			err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		}
		r.proxyError(w, req, err)
	}
	return true
}

// errHeadersSent marks a failure after the answer's head went to the
// client.
var errHeadersSent = errors.New("answer cut off")

// exchange is one request and answer on c. It returns c to the pool when
// the connection is fit for another request, and closes it otherwise.
func (r *Router) exchange(ctx context.Context, w http.ResponseWriter, req *http.Request, body []byte, c *hopConn, reused bool) (err error) {
	reusable := false
	defer func() {
		if reusable {
			r.hops.put(c)
		} else {
			c.nc.Close()
		}
	}()
	dl, hasDL := ctx.Deadline()
	if hasDL {
		_ = c.nc.SetDeadline(dl)
	}
	// A client that hangs up (or a timeout) ends the exchange at once.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() {
			reusable = false // the deadline was moved under the exchange
		}
	}()

	c.out = appendRequest(c.out[:0], req, len(body))
	if len(c.out)+len(body) <= cap(c.out) || len(body) <= 4<<10 {
		c.out = append(c.out, body...)
		_, err = c.nc.Write(c.out)
	} else {
		bufs := net.Buffers{c.out, body}
		_, err = bufs.WriteTo(c.nc)
	}
	if err != nil {
		if reused {
			return hopTransient{fmt.Errorf("write to replica: %w", err)}
		}
		return fmt.Errorf("write to replica: %w", err)
	}
	if cap(c.out) > 64<<10 {
		c.out = nil // do not keep a large request's buffer
	}

	var a answer
	for {
		if err = c.readHead(&a); err != nil {
			if reused && a.nothing {
				return hopTransient{fmt.Errorf("read from replica: %w", err)}
			}
			return fmt.Errorf("read from replica: %w", err)
		}
		if a.code >= 200 || a.code == http.StatusSwitchingProtocols {
			break
		}
		a = answer{} // an informational answer (100, 103): the final one follows
	}
	// The head is whole: its fields join the ones the router set.
	hdr := w.Header()
	for i, f := range c.hdr {
		hdr[f.k] = append(hdr[f.k], f.v)
		c.hdr[i] = hopField{}
	}
	noBody := req.Method == http.MethodHead || a.code == http.StatusNoContent || a.code == http.StatusNotModified || a.code == http.StatusSwitchingProtocols
	w.WriteHeader(a.code)
	if noBody {
		reusable = !a.close && a.code != http.StatusSwitchingProtocols
		if hasDL {
			_ = c.nc.SetDeadline(time.Time{})
		}
		return nil
	}
	switch {
	case a.chunked:
		err = c.copyChunked(w)
	case a.length >= 0:
		err = c.copyN(w, a.length)
	default: // the body ends when the replica closes the connection
		a.close = true
		err = c.copyN(w, -1)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errHeadersSent, err)
	}
	if hasDL {
		_ = c.nc.SetDeadline(time.Time{})
	}
	reusable = !a.close
	return nil
}

// hopByHop are the header fields that belong to one connection, which a
// proxy does not forward (RFC 9110 7.6.1), and those the hop writes itself.
var hopByHop = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// appendRequest writes req's head for the replica: the same request line
// and Host, its end-to-end fields, X-Forwarded-For/-Host/-Proto as
// httputil.ProxyRequest.SetXForwarded sets them, and the body's length.
func appendRequest(b []byte, req *http.Request, n int) []byte {
	b = append(b, req.Method...)
	b = append(b, ' ')
	u := req.URL
	if u.Opaque != "" {
		b = append(b, u.Opaque...)
	} else {
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		b = append(b, p...)
	}
	if u.ForceQuery || u.RawQuery != "" {
		b = append(b, '?')
		b = append(b, u.RawQuery...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	host := req.Host
	if host == "" {
		host = u.Host
	}
	b = appendValue(b, host)
	b = append(b, "\r\n"...)
	connFields := req.Header["Connection"]
	for k, vs := range req.Header {
		switch k {
		case "Host", "Content-Length", "Expect", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
			continue // written below, or not at all (the body is already here)
		}
		if hopByHop[k] || (connFields != nil && namedIn(connFields, k)) || !validName(k) {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	if te := req.Header["Te"]; te != nil && namedIn(te, "trailers") {
		b = append(b, "Te: trailers\r\n"...)
	}
	if ip, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		prior, ok := req.Header["X-Forwarded-For"]
		if !ok || prior != nil { // a nil value: the handler chain asked for none
			b = append(b, "X-Forwarded-For: "...)
			for _, p := range prior {
				b = appendValue(b, p)
				b = append(b, ", "...)
			}
			b = append(b, ip...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "X-Forwarded-Host: "...)
	b = appendValue(b, req.Host)
	if req.TLS != nil {
		b = append(b, "\r\nX-Forwarded-Proto: https\r\n"...)
	} else {
		b = append(b, "\r\nX-Forwarded-Proto: http\r\n"...)
	}
	switch {
	case n > 0 || req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, "\r\n\r\n"...)
	default:
		b = append(b, "\r\n"...)
	}
	return b
}

// namedIn reports whether a comma-separated list in vs names tok
// (case-insensitively).
func namedIn(vs []string, tok string) bool {
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), tok) {
				return true
			}
		}
	}
	return false
}

func validName(k string) bool {
	if k == "" {
		return false
	}
	for i := range len(k) {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// appendValue appends v with CR, LF and NUL replaced by spaces, so that a
// value cannot end its field.
func appendValue(b []byte, v string) []byte {
	for i := range len(v) {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			for j := range len(v) {
				c := v[j]
				if c == '\r' || c == '\n' || c == 0 {
					c = ' '
				}
				b = append(b, c)
			}
			return b
		}
	}
	return append(b, v...)
}

// answer is what the hop needs of a replica's answer head.
type answer struct {
	code    int
	length  int64 // -1: none
	chunked bool
	close   bool
	nothing bool // no byte of the answer arrived
}

// readHead reads an answer head, its end-to-end fields into c.hdr.
func (c *hopConn) readHead(a *answer) error {
	c.hdr = c.hdr[:0]
	a.length = -1
	a.nothing = true
	line, err := c.line(nil)
	if err != nil {
		return err
	}
	a.nothing = false
	// HTTP/1.x NNN reason
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return fmt.Errorf("%w: status line %q", errHopAnswer, truncate(line))
	}
	code := 0
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return fmt.Errorf("%w: status line %q", errHopAnswer, truncate(line))
		}
		code = code*10 + int(d-'0')
	}
	if len(line) > 12 && line[12] != ' ' || code < 100 {
		return fmt.Errorf("%w: status line %q", errHopAnswer, truncate(line))
	}
	a.code = code
	a.close = line[7] == '0' // HTTP/1.0 without keep-alive
	var scratch []byte
	total := len(line)
	for {
		line, err = c.line(scratch[:0])
		if err != nil {
			return err
		}
		if total += len(line); total > hopMaxHeaderBytes {
			return fmt.Errorf("%w: head over %d bytes", errHopAnswer, hopMaxHeaderBytes)
		}
		if len(line) == 0 {
			return nil
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 || line[0] == ' ' || line[0] == '\t' {
			return fmt.Errorf("%w: field %q", errHopAnswer, truncate(line))
		}
		k := canonical(line[:i])
		v := bytes.TrimSpace(line[i+1:])
		switch k {
		case "Content-Length":
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 || (a.length >= 0 && a.length != n) {
				return fmt.Errorf("%w: Content-Length %q", errHopAnswer, truncate(v))
			}
			a.length = n
		case "Transfer-Encoding":
			if !bytes.EqualFold(v, []byte("chunked")) {
				return fmt.Errorf("%w: Transfer-Encoding %q", errHopAnswer, truncate(v))
			}
			a.chunked = true
			continue
		case "Connection":
			if bytes.EqualFold(v, []byte("close")) {
				a.close = true
			} else if bytes.EqualFold(v, []byte("keep-alive")) {
				a.close = false
			}
			continue
		}
		if hopByHop[k] {
			continue
		}
		c.hdr = append(c.hdr, hopField{k, c.str(v)})
	}
}

// line returns the next line without its CRLF, from the read buffer when
// it fits there (valid until the next read) or appended to scratch.
func (c *hopConn) line(scratch []byte) ([]byte, error) {
	for {
		l, err := c.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if len(scratch)+len(l) > hopMaxHeaderBytes {
				return nil, fmt.Errorf("%w: head over %d bytes", errHopAnswer, hopMaxHeaderBytes)
			}
			scratch = append(scratch, l...)
			continue
		}
		if err != nil {
			if err == io.EOF && len(l)+len(scratch) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if scratch != nil {
			l = append(scratch, l...)
		}
		l = l[:len(l)-1]
		if n := len(l); n > 0 && l[n-1] == '\r' {
			l = l[:n-1]
		}
		return l, nil
	}
}

// str returns v as a string, the same string for a value this connection
// saw before (Content-Type, the replica id): most answers repeat them.
func (c *hopConn) str(v []byte) string {
	if s, ok := c.vals[string(v)]; ok {
		return s
	}
	s := string(v)
	if len(v) <= 128 && len(c.vals) < 32 {
		c.vals[s] = s
	}
	return s
}

// copyN copies n bytes of body (-1: up to EOF) from c to w, from the read
// buffer without another copy.
func (c *hopConn) copyN(w http.ResponseWriter, n int64) error {
	for n != 0 {
		want := c.br.Size()
		if n > 0 && n < int64(want) {
			want = int(n)
		}
		b, err := c.br.Peek(want)
		if len(b) == 0 {
			if err == io.EOF && n < 0 {
				return nil
			}
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		// Peek waits to fill the buffer; with fewer bytes in, take them.
		if _, werr := w.Write(b); werr != nil {
			return werr
		}
		_, _ = c.br.Discard(len(b))
		if n > 0 {
			n -= int64(len(b))
		}
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			if n == 0 {
				return nil
			}
			return err
		}
	}
	return nil
}

// copyChunked copies a chunked body, flushing each chunk to the client as
// it arrives (an answer without a length may be a stream); trailers go
// out as http.TrailerPrefix fields.
func (c *hopConn) copyChunked(w http.ResponseWriter) error {
	fl, _ := w.(http.Flusher)
	for {
		line, err := c.line(nil)
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %q", errHopAnswer, truncate(line))
		}
		if n == 0 {
			break
		}
		if err := c.copyN(w, n); err != nil {
			return err
		}
		if crlf, err := c.line(nil); err != nil || len(crlf) != 0 {
			return fmt.Errorf("%w: chunk not ended by CRLF", errHopAnswer)
		}
		if fl != nil && c.br.Buffered() == 0 {
			fl.Flush()
		}
	}
	for {
		line, err := c.line(nil)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if i := bytes.IndexByte(line, ':'); i > 0 {
			k := canonical(line[:i])
			w.Header()[http.TrailerPrefix+k] = append(w.Header()[http.TrailerPrefix+k], string(bytes.TrimSpace(line[i+1:])))
		}
	}
}

// commonKeys interns the canonical names of the fields replicas answer
// with, so that parsing them allocates nothing.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Content-Type", "Content-Length", "Content-Encoding", "Date", "Connection", "Keep-Alive",
		"Transfer-Encoding", "Trailer", "Vary", "Cache-Control", "Server", "Set-Cookie", "Location",
		"Retry-After", "Ferry-Replica-Id", "X-Request-Id", "Ce-Id", "Ce-Type", "Ce-Source", "Ce-Specversion",
		"Ce-Time", "Inference-Header-Content-Length", "Grpc-Status", "Grpc-Message", "X-Content-Type-Options",
	} {
		m[k] = k
	}
	return m
}()

// canonical returns name in canonical form (Content-Type).
func canonical(name []byte) string {
	var buf [64]byte
	if len(name) > len(buf) {
		return http.CanonicalHeaderKey(string(name))
	}
	b := buf[:len(name)]
	upper := true
	for i, ch := range name {
		if upper && 'a' <= ch && ch <= 'z' {
			ch -= 'a' - 'A'
		} else if !upper && 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		b[i] = ch
		upper = ch == '-'
	}
	if k, ok := commonKeys[string(b)]; ok {
		return k
	}
	return string(b)
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}
