package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/ferryserve/ferry/internal/router"
	"github.com/ferryserve/ferry/internal/server"
	"github.com/ferryserve/ferry/internal/server/http1"
	"github.com/ferryserve/ferry/internal/supervisor"
)

// PlaneConfig is everything `ferry up` runs, as values; internal/cli maps
// its flags to it.
type PlaneConfig struct {
	// Controller configures the controller. New fills its Router,
	// Autoscaler, PredictorAddr and IngressURL.
	Controller Config
	Autoscaler AutoscalerConfig
	// ActivationTimeout is how long a request waits for a revision at
	// zero to get a ready replica (then 503 with Retry-After).
	ActivationTimeout time.Duration
	// Ingress (HTTP), GRPC (V2 gRPC) and API (management) are opened by
	// the caller, so tests can listen on port 0 and read the addresses.
	Ingress, GRPC, API net.Listener
	// APIHandler builds the management API's handler (authentication,
	// console, metrics) around the plane; nil serves NewAPIServer alone.
	APIHandler func(p *Plane) http.Handler
	// OnReady is called once every listener serves.
	OnReady func()
	// InProcessServe, if set, lets predictor revisions run inside this
	// process (ferry up --in-process-predictors, AnnotationInProcess):
	// New makes Controller.InProcess an InProcessRunner over the plane's
	// router.
	InProcessServe ServeFunc
}

// Plane is `ferry up`: the ingress router, the autoscaler and the
// controller, with their listeners. New wires it; Run runs it.
type Plane struct {
	cfg    PlaneConfig
	router *router.Router
	scaler *Autoscaler
	ctl    *Controller
	predLn net.Listener
	extra  []interface{ Run(context.Context) error }
}

// New wires a plane. It opens one more listener, on 127.0.0.1, where
// transformers reach their predictor (predictor_host).
func New(cfg PlaneConfig) (*Plane, error) {
	if cfg.Ingress == nil || cfg.GRPC == nil || cfg.API == nil {
		return nil, errors.New("controlplane: the ingress, gRPC and API listeners are required")
	}
	predLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("predictor listener: %w", err)
	}
	p := &Plane{cfg: cfg, predLn: predLn}
	log := cfg.Controller.Logger
	p.router = router.New(cfg.Controller.Domain, log)
	stats := func(ns, rev string) (int64, uint64) {
		st := p.router.Stats(ns, rev)
		return st.InFlight.Load(), st.Requests.Load()
	}
	p.scaler = NewAutoscaler(cfg.Autoscaler, stats, func() { p.ctl.Trigger() })
	p.router.SetActivator(p.scaler.Activate, cfg.ActivationTimeout)
	p.router.SetHopSocket(func(addr string) string { return p.ctl.HopSocket(addr) })
	cc := cfg.Controller
	cc.Router, cc.Autoscaler = p.router, p.scaler
	if cfg.InProcessServe != nil {
		cc.InProcess = InProcessRunner{Serve: cfg.InProcessServe, Router: p.router, Logger: log}
	}
	cc.PredictorAddr = predLn.Addr().String()
	cc.IngressURL = "http://" + ReachableAddr(cfg.Ingress.Addr())
	p.ctl = NewController(cc)
	p.scaler.OnRevisionChange(p.ctl.EnqueueRevision)
	return p, nil
}

// Controller is the plane's controller (apply, get, delete, events).
func (p *Plane) Controller() *Controller { return p.ctl }

// Router is the plane's ingress router.
func (p *Plane) Router() *router.Router { return p.router }

// Stats reports a revision's in-flight and total requests at the ingress.
func (p *Plane) Stats(ns, rev string) (int64, uint64) {
	st := p.router.Stats(ns, rev)
	return st.InFlight.Load(), st.Requests.Load()
}

// Add runs r alongside the plane (a rollout runner); call before Run.
func (p *Plane) Add(r interface{ Run(context.Context) error }) { p.extra = append(p.extra, r) }

// Run stops replicas a killed earlier run left behind, reconciles every
// stored object once, then serves until ctx ends. Shutdown order: stop
// taking requests, then the controller stops every replica.
func (p *Plane) Run(ctx context.Context) error {
	log := p.ctl.cfg.Logger
	// Replicas of an earlier ferry up that was killed (kill -9 on a system
	// without a parent-death signal) would run twice: stop them first.
	if n, err := supervisor.Reap(ctx, p.ctl.PIDDir(), 10*time.Second, log); err != nil {
		p.closeListeners()
		return fmt.Errorf("reap replicas of an earlier run: %w", err)
	} else if n > 0 {
		log.Warn("stopped replicas left by an earlier run", "count", n)
	}
	// One pass before serving, so the API never shows a status from before
	// a restart as current (replicas are starting, not yet ready).
	if err := p.ctl.ReconcileAll(ctx); err != nil {
		log.Warn("initial reconcile", "err", err)
	}
	api := http.Handler(NewAPIServer(p.ctl).Handler())
	if p.cfg.APIHandler != nil {
		api = p.cfg.APIHandler(p)
	}
	// The ingress ports are served by the fast HTTP/1.1 engine (as ferry
	// serve's replicas are), which hands what it does not speak (HTTP/2,
	// upgrades, HTTP/1.0) to a net/http server with the same handler.
	ingress := func(h http.Handler) *http1.Server {
		std := &http.Server{Handler: server.BodyRate{}.Wrap(h), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		return &http1.Server{Handler: std.Handler, Fallback: std, ReadHeaderTimeout: std.ReadHeaderTimeout, IdleTimeout: std.IdleTimeout, Logger: log}
	}
	servers := []interface {
		Serve(net.Listener) error
		Shutdown(context.Context) error
	}{
		ingress(p.router),
		ingress(p.router.ComponentHandler(router.Predictor)),
		&http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute},
	}
	lns := []net.Listener{p.cfg.Ingress, p.predLn, p.cfg.API}
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range servers {
		g.Go(func() error {
			if err := s.Serve(lns[i]); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
		return nil
	})
	gproxy := router.NewGRPCProxy(p.router)
	defer gproxy.Close()
	gsrv := gproxy.Server()
	g.Go(func() error {
		// Stopped before it served (ctx ended during start-up) is a clean stop.
		if err := gsrv.Serve(p.cfg.GRPC); !errors.Is(err, grpc.ErrServerStopped) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		gsrv.GracefulStop()
		return nil
	})
	g.Go(func() error { return p.ctl.Run(gctx) })
	g.Go(func() error { return p.scaler.Run(gctx) })
	for _, r := range p.extra {
		g.Go(func() error { return r.Run(gctx) })
	}
	if p.cfg.OnReady != nil {
		p.cfg.OnReady()
	}
	return g.Wait()
}

func (p *Plane) closeListeners() {
	for _, l := range []net.Listener{p.cfg.Ingress, p.cfg.GRPC, p.cfg.API, p.predLn} {
		l.Close()
	}
}

// ReachableAddr is addr as a client on this machine dials it: a wildcard
// listener ([::]:8080, 0.0.0.0:8080) is reached on 127.0.0.1.
func ReachableAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
