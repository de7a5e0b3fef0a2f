package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/reqlog"
)

// componentLogger is a request logger the ingress runs for a component
// that does not log itself (custom containers, transformers, explainers,
// external servers); built-in predictors log inside their ferry serve
// replicas instead.
type componentLogger struct {
	spec   string // the LoggerSpec it was built from, as JSON
	l      *reqlog.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

// ingressLogger returns the middleware logging a component's traffic and
// an id that changes only when the logger is replaced, starting (or
// replacing) the logger as the spec requires.
func (c *Controller) ingressLogger(ns, name, comp string, spec *api.LoggerSpec) (func(http.Handler) http.Handler, string, error) {
	key := ns + "/" + name + "/" + comp
	b, _ := json.Marshal(spec)
	c.mu.Lock()
	cur := c.loggers[key]
	c.mu.Unlock()
	if cur != nil && cur.spec == string(b) {
		c.markLogger(key)
		return cur.l.Middleware, fmt.Sprintf("%p", cur.l), nil
	}
	sink, err := reqlog.NewSink(spec.URL)
	if err != nil {
		return nil, "", fmt.Errorf("logger: %w", err)
	}
	if cur != nil {
		// The new logger opens the same spool: the old one stops first
		// (spooling what it still holds), never both at once.
		c.mu.Lock()
		delete(c.loggers, key)
		c.mu.Unlock()
		cur.cancel()
		<-cur.done
	}
	l, err := reqlog.New(reqlog.Config{
		Sink: sink, Mode: spec.Mode, Source: "ferry-ingress",
		InferenceService: name, Namespace: ns, Component: comp, Endpoint: "default",
		MetadataHeaders: spec.MetadataHeaders,
		SpoolDir:        filepath.Join(c.cfg.DataDir, "spool", ns+"-"+name+"-"+comp),
		Logger:          c.cfg.Logger,
	})
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cl := &componentLogger{spec: string(b), l: l, cancel: cancel, done: make(chan struct{})}
	go func() { // owned by the controller: stopLogger/stopAll cancel and wait
		defer close(cl.done)
		if err := l.Run(ctx); err != nil {
			c.cfg.Logger.Error("ingress request logger", "component", key, "err", err)
		}
	}()
	c.mu.Lock()
	old := c.loggers[key]
	c.loggers[key] = cl
	c.mu.Unlock()
	if old != nil {
		old.cancel()
		<-old.done
	}
	c.markLogger(key)
	return l.Middleware, fmt.Sprintf("%p", l), nil
}

// markLogger notes a logger still in use by this reconcile pass.
func (c *Controller) markLogger(key string) {
	c.mu.Lock()
	c.liveLoggers[key] = true
	c.mu.Unlock()
}

// stopUnusedLoggers stops the loggers of service key ("ns/name"; "" for
// every service) that its last reconcile did not ask for.
func (c *Controller) stopUnusedLoggers(key string) {
	prefix := ""
	if key != "" {
		prefix = key + "/"
	}
	c.mu.Lock()
	var stop []*componentLogger
	for k, l := range c.loggers {
		if strings.HasPrefix(k, prefix) && !c.liveLoggers[k] {
			stop = append(stop, l)
			delete(c.loggers, k)
		}
	}
	for k := range c.liveLoggers {
		if strings.HasPrefix(k, prefix) {
			delete(c.liveLoggers, k)
		}
	}
	c.mu.Unlock()
	for _, l := range stop {
		l.cancel()
		<-l.done
	}
}
