// Package http1 is a purpose-built HTTP/1.1 server for Ferry's data plane.
// It serves the same http.Handler as net/http would, but parses request
// heads in place from a pooled read buffer, reuses each connection's
// http.Request, header maps and response buffer, writes responses straight
// into a pooled writer, and keeps no background reader per request, so the
// smallest inference request costs less than net/http's own overhead.
//
// It speaks HTTP/1.1 with keep-alive and pipelining, chunked request
// bodies and Expect: 100-continue. A connection whose next request it does
// not speak natively — HTTP/1.0, the HTTP/2 preface (h2c), an Upgrade, or
// a head larger than its read buffer — is handed, with the bytes already
// read, to the fallback *http.Server, which serves it from then on: what
// net/http answers today is still what such clients get.
//
// A request's context ends when its handler returns, when Shutdown gives
// up, or when the client hangs up: that is watched for once the handler
// has run for a few milliseconds and has read its body (net/http watches
// from the start of every request, at a cost the short ones would pay).
//
// What it does not do, by design: trailers in responses and Hijack. A
// request's URL and Header are reused by the connection's next request,
// so a handler must not keep them past its return.
package http1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Server's zero fields (those of ferry serve's net/http server).
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	// ReadBufferSize is the read buffer of a connection; a request head
	// that does not fit is handed to the fallback server, which applies
	// its MaxHeaderBytes (431 beyond it).
	ReadBufferSize  = 16 << 10
	writeBufferSize = 8 << 10
	// maxDrain is how much of a body the handler left unread is read and
	// dropped to keep the connection; more closes it (net/http's bound).
	maxDrain = 256 << 10
	// maxBuffered is how much of a response is held to send it with a
	// Content-Length; a larger one streams with chunked encoding.
	maxBuffered = 64 << 10
)

// Server serves HTTP/1.1 on a listener. Set its fields before Serve.
type Server struct {
	// Handler serves every request (the data plane's whole handler chain).
	Handler http.Handler
	// Fallback serves connections handed to it (see the package comment).
	// Its Handler should be Handler. Serve runs it and Shutdown stops it.
	Fallback *http.Server
	// ReadHeaderTimeout bounds the arrival of a request head once its first
	// byte is in; IdleTimeout bounds the wait for the next request.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	Logger            *slog.Logger

	hangupDelay time.Duration // tests shorten it
	ticker      hangupTicker

	mu      sync.Mutex
	ln      net.Listener
	conns   map[*conn]struct{}
	closing atomic.Bool
	// polled is when a connection last saw the network polled (since
	// monoBase, in nanoseconds): conn.yieldForRequest.
	polled   atomic.Int64
	conndone sync.WaitGroup
	handoff  *handoffListener
}

// Serve accepts connections on ln until Shutdown, then returns
// http.ErrServerClosed (as http.Server.Serve does).
func (s *Server) Serve(ln net.Listener) error {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.ReadHeaderTimeout <= 0 {
		s.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = DefaultIdleTimeout
	}
	if s.hangupDelay <= 0 {
		s.hangupDelay = hangupDelay
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.conns = map[*conn]struct{}{}
	s.ticker.s = s
	s.handoff = newHandoffListener(ln.Addr())
	s.mu.Unlock()

	if s.Fallback == nil {
		s.Fallback = &http.Server{Handler: s.Handler, ReadHeaderTimeout: s.ReadHeaderTimeout, IdleTimeout: s.IdleTimeout}
	}
	fallbackDone := make(chan error, 1)
	go func() {
		err := s.Fallback.Serve(s.handoff)
		s.handoff.Close() // no connection waits on a fallback that has stopped
		fallbackDone <- err
	}()
	defer func() {
		s.handoff.Close()
		<-fallbackDone
	}()

	// Requests' contexts outlive Serve, which returns at Shutdown while
	// they drain; each ends with its connection.
	ctx := context.WithValue(context.Background(), http.ServerContextKey, s.Fallback)
	var delay time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			// EMFILE and the like pass (net/http retries the same errors).
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.Logger.Warn("http accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		delay = 0
		c := s.newConn(ctx, rwc)
		if c == nil {
			rwc.Close()
			continue
		}
		go c.serve()
	}
}

func (s *Server) newConn(ctx context.Context, rwc net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return nil
	}
	c := &conn{srv: s, rwc: rwc}
	c.ctx, c.cancel = context.WithCancel(context.WithValue(ctx, http.LocalAddrContextKey, rwc.LocalAddr()))
	s.conns[c] = struct{}{}
	s.conndone.Add(1)
	return c
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.conndone.Done()
}

// Shutdown stops accepting, closes idle connections, lets those serving a
// request finish it (their answer says Connection: close), shuts the
// fallback server down, and waits for all of it until ctx ends. Then, as
// net/http does, it closes what is left, cancels the contexts of the
// requests still running and returns ctx's error without waiting for
// their handlers.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	fbErr := make(chan error, 1)
	go func() { fbErr <- s.Fallback.Shutdown(ctx) }()

	done := make(chan struct{})
	go func() {
		s.conndone.Wait()
		close(done)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		select {
		case <-done:
			return <-fbErr
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				c.rwc.Close() // first: no answer goes out after this
				c.cancel()
			}
			s.mu.Unlock()
			<-fbErr
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.rwc.Close()
		}
	}
}

// Connection states: idle while waiting for a request's first byte.
const (
	stateActive int32 = iota
	stateIdle
	stateClosed
)

// bufio readers and writers are pooled across connections.
var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, ReadBufferSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) }}
)
