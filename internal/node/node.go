// Package node runs one model server, `ferry serve`: its listeners, the
// loading of its models, and the components that live beside them, in one
// errgroup with the shutdown order a server needs. internal/cli builds the
// parts from flags; Run owns their lifetimes.
package node

import (
	"context"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/ferryserve/ferry/internal/memtrim"
)

// Runner is a long-lived component: Run blocks until ctx ends.
type Runner interface {
	Run(ctx context.Context) error
}

// RunFunc adapts a function to Runner.
type RunFunc func(ctx context.Context) error

// Run calls f.
func (f RunFunc) Run(ctx context.Context) error { return f(ctx) }

// Models is the repository as the node drives it.
type Models interface {
	LoadAll(ctx context.Context, parallel int) error
	Ready() bool
	Close()
}

// Config is a node's parts.
type Config struct {
	// Server serves HTTP and gRPC; when it returns (ctx ended and
	// in-flight requests drained, or it failed) the node stops.
	Server Runner
	Models Models
	// Pull, if set, fetches the model before the first load (a deferred
	// --model-uri pull: the listeners answer liveness meanwhile). Its
	// error ends the node, so a supervisor restarts it with backoff.
	Pull            func(ctx context.Context) error
	LoadParallelism int
	// AfterLoad, if set, checks the loaded models (an explainer that must
	// be able to explain them); its error ends the node.
	AfterLoad func(ctx context.Context) error
	// Drained run until the server has drained its in-flight requests,
	// not merely until ctx ends: the request logger and the quality
	// journal must see every drained request.
	Drained []Runner
	// Background run beside the server until ctx ends (the models-config
	// puller).
	Background []Runner
	Logger     *slog.Logger
	// Embedded: the node runs inside another process (an in-process
	// replica of ferry up), which owns the process's memory: the node
	// leaves the binary's pages alone (memtrim).
	Embedded bool
}

// Run serves until ctx ends or a part fails, then closes the models.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	defer cfg.Models.Close()
	g, gctx := errgroup.WithContext(ctx)
	// Shutdown order: the server drains in-flight requests first; only
	// then do the drained parts stop.
	drainedCtx, stopDrained := context.WithCancel(context.Background())
	defer stopDrained()
	g.Go(func() error {
		defer stopDrained()
		return cfg.Server.Run(gctx)
	})
	for _, r := range cfg.Drained {
		g.Go(func() error { return r.Run(drainedCtx) })
	}
	for _, r := range cfg.Background {
		g.Go(func() error { return r.Run(gctx) })
	}
	// The listeners are up (liveness answers) while models load;
	// readiness turns true only when every model is loaded.
	g.Go(func() error {
		if cfg.Pull != nil {
			if err := cfg.Pull(gctx); err != nil {
				return err
			}
		}
		if err := cfg.Models.LoadAll(gctx, cfg.LoadParallelism); err != nil {
			log.Error("some models failed to load; the others serve", "err", err)
		}
		log.Info("models loaded", "ready", cfg.Models.Ready())
		if cfg.AfterLoad != nil {
			if err := cfg.AfterLoad(gctx); err != nil {
				return err
			}
		}
		if cfg.Embedded {
			return nil
		}
		// Start-up is over: hand the binary's pages that only package
		// initialisation touched back to the page cache.
		if n, err := memtrim.Release(); err != nil {
			log.Debug("release start-up pages", "err", err)
		} else {
			log.Debug("released start-up pages", "mapped_bytes", n)
		}
		return nil
	})
	if !cfg.Embedded {
		g.Go(func() error { return memtrim.Run(gctx, 0) }) // and again after bursts, when idle
	}
	err := g.Wait()
	log.Info("stopped")
	return err
}
