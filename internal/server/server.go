// Package server owns the data plane's listeners: one HTTP server (V1 and
// V2 REST, /metrics) and one gRPC server (V2, reflection, grpc.health.v1),
// and their graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/protocol"
	v1 "github.com/ferryserve/ferry/internal/protocol/v1"
	v2 "github.com/ferryserve/ferry/internal/protocol/v2"
	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/server/h2grpc"
	"github.com/ferryserve/ferry/internal/server/http1"
)

// Config configures a data-plane server.
type Config struct {
	HTTPAddr string // e.g. ":8080"; "127.0.0.1:0" picks a free port
	GRPCAddr string
	// Repository holds the models served.
	Repository *repository.Repository
	// Metrics, if nil, is created.
	Metrics       *Metrics
	ServerVersion string
	MaxBodyBytes  int64
	// RequestTimeout bounds each inference request; 0 = no bound.
	RequestTimeout time.Duration
	// ShutdownTimeout bounds the drain of in-flight requests on shutdown.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// HTTPMiddleware and GRPCInterceptors wrap the inference handlers
	// (the request logger uses them); outermost first.
	HTTPMiddleware   []func(http.Handler) http.Handler
	GRPCInterceptors []grpc.UnaryServerInterceptor
	// RepositoryAPI governs index/load/unload (default: open).
	RepositoryAPI RepositoryAPI
	// BodyRate bounds how slowly request bodies may arrive.
	BodyRate BodyRate
	// ReplicaID, if set, is sent in every HTTP answer's HeaderReplicaID:
	// the control plane's probes tell this replica from another process
	// that got the same port.
	ReplicaID string
	// HTTPEngine picks the HTTP server: EngineStd (net/http) or EngineFast
	// (package http1, which hands what it does not speak to net/http).
	// Empty means DefaultHTTPEngine.
	HTTPEngine string
	// RequestLimits bound what a gRPC inference request may decode to,
	// checked by the gRPC codec while it decodes (zero fields take the
	// defaults); ferry serve sets its budget flags here as well as in the
	// interceptor that hands them to the handlers.
	RequestLimits protocol.Limits
	// HTTPSocket, if set, is a Unix socket path served like HTTPAddr (the
	// same handler and engine): ferry up's ingress reaches its replicas
	// there, which costs both sides less than loopback TCP.
	HTTPSocket string
	// GRPCTransport picks the gRPC server: TransportGRPCGo (grpc-go's
	// server) or TransportFerry (package h2grpc). Empty means
	// DefaultGRPCTransport.
	GRPCTransport string
}

// gRPC transports of Config.GRPCTransport.
const (
	TransportGRPCGo = "grpc-go"
	TransportFerry  = "ferry"
	// DefaultGRPCTransport is the transport of an empty Config.GRPCTransport.
	DefaultGRPCTransport = TransportFerry
)

// grpcServer is what Server needs of a gRPC server: *grpc.Server and
// *h2grpc.Server both are one.
type grpcServer interface {
	grpc.ServiceRegistrar
	GetServiceInfo() map[string]grpc.ServiceInfo
	Serve(net.Listener) error
	GracefulStop()
	Stop()
}

// HTTP engines of Config.HTTPEngine.
const (
	EngineStd  = "std"
	EngineFast = "fast"
	// DefaultHTTPEngine is the engine of an empty Config.HTTPEngine.
	DefaultHTTPEngine = EngineFast
)

// HeaderReplicaID carries Config.ReplicaID.
const HeaderReplicaID = "Ferry-Replica-Id"

// Server is the data plane: build it with New, then Run it.
type Server struct {
	cfg     Config
	httpLn  net.Listener
	grpcLn  net.Listener
	httpSrv *http.Server
	fastSrv *http1.Server // nil with EngineStd
	grpcSrv grpcServer
	// handler is the HTTP handler chain without the listener's body-rate
	// bound (Handler).
	handler http.Handler
	// sockLn and sockSrv serve Config.HTTPSocket (nil without one).
	sockLn  net.Listener
	sockSrv interface {
		Serve(net.Listener) error
		Shutdown(context.Context) error
	}
}

// New opens the listeners (so a port conflict fails fast and tests can
// learn the chosen ports) and builds the handlers.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 100 << 20
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(cfg.Repository)
	}
	switch cfg.HTTPEngine {
	case "":
		cfg.HTTPEngine = DefaultHTTPEngine
	case EngineStd, EngineFast:
	default:
		return nil, fmt.Errorf("http engine %q: want %q or %q", cfg.HTTPEngine, EngineFast, EngineStd)
	}
	switch cfg.GRPCTransport {
	case "":
		cfg.GRPCTransport = DefaultGRPCTransport
	case TransportGRPCGo, TransportFerry:
	default:
		return nil, fmt.Errorf("grpc transport %q: want %q or %q", cfg.GRPCTransport, TransportGRPCGo, TransportFerry)
	}
	s := &Server{cfg: cfg}
	var err error
	if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	if s.grpcLn, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		s.httpLn.Close()
		return nil, fmt.Errorf("grpc listener: %w", err)
	}
	if cfg.HTTPSocket != "" {
		// A socket left by an earlier process on this path is stale.
		if fi, err := os.Lstat(cfg.HTTPSocket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(cfg.HTTPSocket)
		}
		if s.sockLn, err = net.Listen("unix", cfg.HTTPSocket); err != nil {
			s.httpLn.Close()
			s.grpcLn.Close()
			return nil, fmt.Errorf("http socket listener: %w", err)
		}
	}

	svc := v2.NewService(v2.Config{
		Repository: cfg.Repository, ServerVersion: cfg.ServerVersion,
		MaxBodyBytes: cfg.MaxBodyBytes, Timeout: cfg.RequestTimeout,
		Observer: cfg.Metrics, Logger: cfg.Logger,
	})
	mux := http.NewServeMux()
	svc.Register(mux)
	v1.New(v1.Config{
		Repository: cfg.Repository, MaxBodyBytes: cfg.MaxBodyBytes,
		Timeout: cfg.RequestTimeout, Observer: cfg.Metrics, Logger: cfg.Logger,
	}).Register(mux)
	mux.Handle("GET /metrics", cfg.Metrics.Handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		v2.WriteJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	var handler http.Handler = cfg.RepositoryAPI.wrapHTTP(mux)
	for i := len(cfg.HTTPMiddleware) - 1; i >= 0; i-- {
		handler = cfg.HTTPMiddleware[i](handler)
	}
	if id := cfg.ReplicaID; id != "" {
		next := handler
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(HeaderReplicaID, id)
			next.ServeHTTP(w, r)
		})
	}
	s.handler = cfg.Metrics.InFlight(handler)
	s.httpSrv = &http.Server{
		// The body-rate bound is outermost: it needs the connection's own
		// ResponseWriter to set read deadlines.
		Handler:           cfg.BodyRate.Wrap(s.handler),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	if cfg.HTTPEngine == EngineFast {
		// The same handler chain; net/http serves what http1 hands over.
		s.fastSrv = &http1.Server{
			Handler:           s.httpSrv.Handler,
			Fallback:          s.httpSrv,
			ReadHeaderTimeout: s.httpSrv.ReadHeaderTimeout,
			IdleTimeout:       s.httpSrv.IdleTimeout,
			Logger:            cfg.Logger,
		}
	}
	if s.sockLn != nil {
		std := &http.Server{Handler: s.httpSrv.Handler, ReadHeaderTimeout: s.httpSrv.ReadHeaderTimeout,
			IdleTimeout: s.httpSrv.IdleTimeout, ErrorLog: s.httpSrv.ErrorLog}
		s.sockSrv = std
		if s.fastSrv != nil {
			s.sockSrv = &http1.Server{Handler: std.Handler, Fallback: std, ReadHeaderTimeout: std.ReadHeaderTimeout,
				IdleTimeout: std.IdleTimeout, Logger: cfg.Logger}
		}
	}

	s.grpcSrv = newGRPCServer(cfg, append([]grpc.UnaryServerInterceptor{s.inflightInterceptor}, cfg.GRPCInterceptors...))
	// The gRPC service records its requests through a cache of metric
	// series (grpcmetrics.go); the REST one keeps Metrics itself.
	gsvc := v2.NewService(v2.Config{
		Repository: cfg.Repository, ServerVersion: cfg.ServerVersion,
		MaxBodyBytes: cfg.MaxBodyBytes, Timeout: cfg.RequestTimeout,
		Observer: newSeriesCache(cfg.Metrics), Logger: cfg.Logger,
	})
	v2.RegisterGRPC(s.grpcSrv, v2.NewGRPCServer(gsvc))
	healthpb.RegisterHealthServer(s.grpcSrv, &health{repo: cfg.Repository})
	reflection.Register(s.grpcSrv)
	return s, nil
}

// newGRPCServer builds the gRPC server of cfg.GRPCTransport with the
// interceptors ints, outermost first.
func newGRPCServer(cfg Config, ints []grpc.UnaryServerInterceptor) grpcServer {
	// ModelInfer's request and response are decoded and encoded by hand,
	// everything else by grpc's proto codec (issue 15).
	codec := v2.NewCodec(cfg.RequestLimits)
	maxRecv := int(min(cfg.MaxBodyBytes, 1<<31-1))
	if cfg.GRPCTransport == TransportFerry {
		return h2grpc.NewServer(h2grpc.Config{
			MaxRecvMsgSize: maxRecv, MaxSendMsgSize: 1<<31 - 1,
			Codec: codec, UnaryInterceptors: ints,
			Workers: int(grpcStreamWorkers()), Logger: cfg.Logger,
		})
	}
	return grpc.NewServer(
		grpc.MaxRecvMsgSize(maxRecv),
		grpc.MaxSendMsgSize(1<<31-1),
		grpc.ForceServerCodecV2(codec),
		// Workers serve streams on goroutines whose stacks have already
		// grown; a goroutine per stream (grpc's default) copies its stack
		// while it grows on every call, 5-10 % of a batch-1 call's CPU.
		// More workers than cores, because under load there are as many
		// calls in flight as clients send (bench.sh: 32); a stream that
		// finds every worker busy gets its own goroutine, as before.
		grpc.NumStreamWorkers(grpcStreamWorkers()),
		grpc.ChainUnaryInterceptor(ints...),
	)
}

// grpcStreamWorkers is the number of gRPC stream workers (issue 15: the
// measurements are in docs/benchmarks.md, "gRPC (issue 15)").
func grpcStreamWorkers() uint32 { return uint32(max(32, 4*runtime.GOMAXPROCS(0))) }

// inflightInterceptor counts the call in flight, then applies the
// repository API's guard: one interceptor rather than two saves a level of
// grpc's chain (a closure) on every call. It also turns a panic in the call
// into INTERNAL, as the HTTP servers do for theirs: neither gRPC transport
// recovers one, so it would end the process.
func (s *Server) inflightInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (res any, err error) {
	s.cfg.Metrics.inflight.Inc()
	defer func() {
		s.cfg.Metrics.inflight.Dec()
		if p := recover(); p != nil {
			s.cfg.Logger.ErrorContext(ctx, "gRPC handler panicked", "method", info.FullMethod, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res, err = nil, status.Error(codes.Internal, "internal error: the handler panicked")
		}
	}()
	return s.cfg.RepositoryAPI.interceptor(ctx, req, info, h)
}

// Handler is what the HTTP listener serves (V1, V2, /metrics, the
// middleware), for a caller in the same process that has its own listener
// and connection-level bounds: ferry up's ingress calls an in-process
// replica's Handler instead of proxying to its port. Requests served this
// way are not drained by Run's shutdown; the caller drains its own.
func (s *Server) Handler() http.Handler { return s.handler }

// HTTPAddr is the address the HTTP listener is bound to.
func (s *Server) HTTPAddr() string { return s.httpLn.Addr().String() }

// GRPCAddr is the address the gRPC listener is bound to.
func (s *Server) GRPCAddr() string { return s.grpcLn.Addr().String() }

// Run serves until ctx ends, then stops accepting connections, waits up to
// ShutdownTimeout for in-flight requests to finish, and returns. HTTP and
// gRPC drain in parallel.
func (s *Server) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		serve := s.httpSrv.Serve
		if s.fastSrv != nil {
			serve = s.fastSrv.Serve
		}
		if err := serve(s.httpLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	if s.sockSrv != nil {
		g.Go(func() error {
			if err := s.sockSrv.Serve(s.sockLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http socket server: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		if err := s.grpcSrv.Serve(s.grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, h2grpc.ErrServerStopped) {
			return fmt.Errorf("grpc server: %w", err)
		}
		return nil
	})
	s.cfg.Logger.Info("serving", "http", s.HTTPAddr(), "grpc", s.GRPCAddr())
	g.Go(func() error {
		<-gctx.Done()
		s.cfg.Logger.Info("shutting down; draining in-flight requests", "timeout", s.cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		done := make(chan struct{})
		go func() {
			s.grpcSrv.GracefulStop()
			close(done)
		}()
		shutdown := s.httpSrv.Shutdown
		if s.fastSrv != nil {
			shutdown = s.fastSrv.Shutdown // it shuts its fallback down too
		}
		var sockErr error
		sockDone := make(chan struct{})
		go func() {
			defer close(sockDone)
			if s.sockSrv != nil {
				sockErr = s.sockSrv.Shutdown(sctx)
			}
		}()
		err := shutdown(sctx)
		<-sockDone
		err = errors.Join(err, sockErr)
		select {
		case <-done:
		case <-sctx.Done():
			s.grpcSrv.Stop()
			<-done
		}
		if err != nil {
			return fmt.Errorf("http shutdown: %w", err)
		}
		return nil
	})
	return g.Wait()
}

// health implements grpc.health.v1 from the repository's readiness: the
// server (service "") and the inference service are SERVING once every
// model is ready.
type health struct {
	healthpb.UnimplementedHealthServer
	repo *repository.Repository
}

func (h *health) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	switch req.GetService() {
	case "", pb.GRPCInferenceService_ServiceDesc.ServiceName:
	default:
		return nil, status.Errorf(codes.NotFound, "unknown service %q", req.GetService())
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if h.repo.Ready() {
		st = healthpb.HealthCheckResponse_SERVING
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}
