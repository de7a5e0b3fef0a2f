// Package h2grpc is ferry serve's own gRPC server transport: HTTP/2
// (RFC 9113) over cleartext TCP, written for unary calls such as
// ModelInfer, where grpc-go's general-purpose transport (a frame-writer
// goroutine per connection, a control buffer, a goroutine hand-off per
// frame written) costs more than the rest of the call (issue 15).
//
// It serves services registered as on a grpc.Server (grpc.ServiceDesc,
// the generated Register functions, reflection, health), dispatching
// unary methods through MethodDesc.Handler with the configured interceptor
// chain and streams through StreamDesc.Handler over its own
// grpc.ServerStream. A call's response headers, message and trailers are
// written with one system call; frames from calls finishing together are
// coalesced (the first writer writes what the others appended meanwhile).
//
// What it enforces: flow control in both directions, SETTINGS, PING and
// keepalive enforcement (grpc-go's policy: a client may ping every
// KeepaliveMinTime while it has calls, three strikes), MAX_CONCURRENT_STREAMS
// (counted until a handler returns, so reset streams still count),
// a header-list size limit, a bound on CONTINUATION frames, rapid-reset
// detection, grpc-timeout deadlines, message size limits, and graceful
// shutdown (GOAWAY, then drain).
package h2grpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
)

// Config configures a Server. Zero fields take the defaults named.
type Config struct {
	// MaxRecvMsgSize and MaxSendMsgSize bound a message (default 4 MiB,
	// and 2 GiB-1).
	MaxRecvMsgSize, MaxSendMsgSize int
	// MaxConcurrentStreams bounds a connection's calls whose handlers have
	// not returned (default 1000).
	MaxConcurrentStreams uint32
	// MaxHeaderListSize bounds a request's decoded header list, counted as
	// RFC 9113 does (default 64 KiB).
	MaxHeaderListSize uint32
	// InitialWindowSize and ConnWindowSize are the receive windows
	// advertised per stream and per connection (default 1 MiB and 4 MiB).
	InitialWindowSize, ConnWindowSize uint32
	// KeepaliveMinTime is how often a client may ping while it has calls
	// (default 5 minutes, as grpc-go's server); with no calls, every
	// 2 hours.
	KeepaliveMinTime time.Duration
	// Codec encodes and decodes messages (default grpc's proto codec).
	Codec encoding.CodecV2
	// UnaryInterceptors wrap every unary call, first outermost.
	UnaryInterceptors []grpc.UnaryServerInterceptor
	// Workers is how many goroutines serve calls, their stacks already
	// grown (default 32); a call that finds none idle gets a goroutine.
	Workers int
	// Logger gets connection errors (default: discarded).
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxRecvMsgSize <= 0 {
		c.MaxRecvMsgSize = 4 << 20
	}
	if c.MaxSendMsgSize <= 0 {
		c.MaxSendMsgSize = 1<<31 - 1
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = 1000
	}
	if c.MaxHeaderListSize == 0 {
		c.MaxHeaderListSize = 64 << 10
	}
	if c.InitialWindowSize == 0 {
		c.InitialWindowSize = 1 << 20
	}
	c.InitialWindowSize = min(max(c.InitialWindowSize, defaultInitialWindow), maxWindow)
	if c.ConnWindowSize == 0 {
		c.ConnWindowSize = 4 << 20
	}
	c.ConnWindowSize = min(max(c.ConnWindowSize, defaultInitialWindow), maxWindow)
	if c.KeepaliveMinTime <= 0 {
		c.KeepaliveMinTime = 5 * time.Minute
	}
	if c.Codec == nil {
		c.Codec = encoding.GetCodecV2(proto.Name)
	}
	if c.Workers <= 0 {
		c.Workers = 32
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ErrServerStopped is returned by Serve once the server has stopped.
var ErrServerStopped = errors.New("h2grpc: the server has been stopped")

// method is a registered method: a unary one has unary set, a streaming
// one stream.
type method struct {
	srv    any
	unary  *grpc.MethodDesc
	stream *grpc.StreamDesc
	name   string // "/service/method"
}

// Server is a gRPC server. Register services, then Serve; it implements
// grpc.ServiceRegistrar and reflection's GetServiceInfo.
type Server struct {
	cfg       Config
	unaryInt  grpc.UnaryServerInterceptor
	methods   map[string]*method // by path
	services  map[string]grpc.ServiceInfo
	serving   bool
	mu        sync.Mutex
	lns       map[net.Listener]struct{}
	conns     map[*conn]struct{}
	stopped   bool
	draining  bool
	connsDone sync.WaitGroup
	workers   workerPool
}

var _ grpc.ServiceRegistrar = (*Server)(nil)

// NewServer returns a Server under cfg.
func NewServer(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		unaryInt: chainUnary(cfg.UnaryInterceptors),
		methods:  make(map[string]*method),
		services: make(map[string]grpc.ServiceInfo),
		lns:      make(map[net.Listener]struct{}),
		conns:    make(map[*conn]struct{}),
	}
	s.workers.max = cfg.Workers
	return s
}

// RegisterService implements grpc.ServiceRegistrar. Like grpc.Server's,
// it panics on a duplicate service, an implementation of the wrong type,
// or a registration after Serve.
func (s *Server) RegisterService(sd *grpc.ServiceDesc, ss any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving {
		panic("h2grpc: RegisterService after Serve")
	}
	if _, dup := s.services[sd.ServiceName]; dup {
		panic(fmt.Sprintf("h2grpc: service %s registered twice", sd.ServiceName))
	}
	info := grpc.ServiceInfo{Metadata: sd.Metadata}
	for i := range sd.Methods {
		m := &sd.Methods[i]
		path := "/" + sd.ServiceName + "/" + m.MethodName
		s.methods[path] = &method{srv: ss, unary: m, name: path}
		info.Methods = append(info.Methods, grpc.MethodInfo{Name: m.MethodName})
	}
	for i := range sd.Streams {
		d := &sd.Streams[i]
		path := "/" + sd.ServiceName + "/" + d.StreamName
		s.methods[path] = &method{srv: ss, stream: d, name: path}
		info.Methods = append(info.Methods, grpc.MethodInfo{Name: d.StreamName,
			IsClientStream: d.ClientStreams, IsServerStream: d.ServerStreams})
	}
	s.services[sd.ServiceName] = info
}

// GetServiceInfo returns the registered services, as grpc.Server's does
// (reflection lists them from it).
func (s *Server) GetServiceInfo() map[string]grpc.ServiceInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]grpc.ServiceInfo, len(s.services))
	for k, v := range s.services {
		out[k] = v
	}
	return out
}

// Serve accepts connections on ln until Stop or GracefulStop, and then
// returns nil; ln is closed on return.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		ln.Close()
		return ErrServerStopped
	}
	s.serving = true
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			stopped := s.stopped
			s.mu.Unlock()
			if stopped {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		c := newConn(s, nc)
		s.conns[c] = struct{}{}
		s.connsDone.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.connsDone.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// isTemporary reports accept errors worth retrying (too many open files
// and the like).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// GracefulStop stops accepting connections, sends every connection a
// GOAWAY, waits for their calls to finish, and closes them.
func (s *Server) GracefulStop() {
	s.mu.Lock()
	s.stopped = true
	s.draining = true
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.goAway()
	}
	s.mu.Unlock()
	s.connsDone.Wait()
	s.workers.stop()
}

// Stop closes the listeners and every connection at once: calls in
// flight see their contexts cancelled and clients see the connection
// closed. It waits for the connections' readers, not for handlers.
func (s *Server) Stop() {
	s.mu.Lock()
	s.stopped = true
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.close(errors.New("server stopped"))
	}
	s.mu.Unlock()
	s.connsDone.Wait()
	s.workers.stop()
}

// chainUnary chains interceptors as grpc.ChainUnaryInterceptor does,
// first outermost.
func chainUnary(ints []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	switch len(ints) {
	case 0:
		return nil
	case 1:
		return ints[0]
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return ints[0](ctx, req, info, chainedHandler(ints, 0, info, h))
	}
}

func chainedHandler(ints []grpc.UnaryServerInterceptor, i int, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) grpc.UnaryHandler {
	if i == len(ints)-1 {
		return h
	}
	return func(ctx context.Context, req any) (any, error) {
		return ints[i+1](ctx, req, info, chainedHandler(ints, i+1, info, h))
	}
}

// workerPool runs calls on goroutines kept between calls, so that a call
// starts on a stack that has already grown. Idle workers are handed work
// most-recently-idle first, which keeps one client's calls on the same
// few goroutines.
type workerPool struct {
	mu      sync.Mutex
	idle    []*worker
	n       int
	max     int
	stopped bool
}

type worker struct{ work chan *stream }

func (p *workerPool) run(f *stream) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.work <- f
		return
	}
	if p.n >= p.max || p.stopped {
		p.mu.Unlock()
		go f.run()
		return
	}
	p.n++
	p.mu.Unlock()
	w := &worker{work: make(chan *stream, 1)}
	go p.loop(w, f)
}

func (p *workerPool) loop(w *worker, f *stream) {
	for {
		f.run()
		p.mu.Lock()
		if p.stopped {
			p.n--
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		if f = <-w.work; f == nil {
			return
		}
	}
}

func (p *workerPool) stop() {
	p.mu.Lock()
	p.stopped = true
	idle := p.idle
	p.idle = nil
	p.n -= len(idle)
	p.mu.Unlock()
	for _, w := range idle {
		w.work <- nil
	}
}

// splitMethod splits "/service/method".
func splitMethod(path string) (service, method string, ok bool) {
	if !strings.HasPrefix(path, "/") {
		return "", "", false
	}
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return "", "", false
	}
	return path[1:i], path[i+1:], true
}
