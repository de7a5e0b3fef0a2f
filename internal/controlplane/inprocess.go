package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/router"
	"github.com/ferryserve/ferry/internal/runtime/builtin"
	"github.com/ferryserve/ferry/internal/supervisor"
)

// AnnotationInProcess ("true" or "false") overrides ferry up's
// --in-process-predictors for one InferenceService: whether its predictor
// revisions are served inside ferry up's process, where they can be.
const AnnotationInProcess = "serving.ferryserve.io/in-process"

// checkInProcessAnnotation refuses an AnnotationInProcess that is not a
// boolean.
func checkInProcessAnnotation(md api.ObjectMeta) error {
	v, ok := md.Annotations[AnnotationInProcess]
	if !ok {
		return nil
	}
	if _, err := strconv.ParseBool(v); err != nil {
		return fmt.Errorf("annotation %s: %q is not true or false", AnnotationInProcess, v)
	}
	return nil
}

// inProcess decides whether a revision is served inside this process (the
// InProcess runner) rather than as `ferry serve` children. why, when not
// empty, says why a revision that asked for it cannot be: only a predictor
// of a built-in format with one model, and none of the features that live
// in a replica process of their own, runs in-process.
func (c *Controller) inProcess(isvc *api.InferenceService, comp string, rev Revision) (ok bool, why string) {
	if c.cfg.InProcess == nil || comp != api.ComponentPredictor {
		return false, ""
	}
	want := c.cfg.InProcessPredictors
	if v, set := isvc.Metadata.Annotations[AnnotationInProcess]; set {
		want, _ = strconv.ParseBool(v) // Apply refuses anything else
	}
	if !want {
		return false, ""
	}
	var p api.PredictorSpec
	if err := json.Unmarshal(rev.Spec, &p); err != nil {
		return false, err.Error()
	}
	tmp := api.InferenceService{Spec: api.InferenceServiceSpec{Predictor: p}}
	format, uri, _, custom := tmp.PredictorFormat()
	ext := p.Extensions()
	quality, _ := strconv.ParseBool(isvc.Metadata.Annotations[AnnotationQuality])
	switch {
	case custom != nil:
		return false, "a container runs its own server"
	case !builtin.Has(format):
		return false, fmt.Sprintf("format %q has no built-in runtime", format)
	case len(tmp.StorageSpecs()) > 0:
		return false, "storage: {key, path} credentials are given to a process's environment"
	case uri == "":
		return false, "a multi-model server (TrainedModels) runs as a process"
	case ext.Logger != nil && ext.Logger.URL != "":
		return false, "the request logger runs in the replica process"
	case ext.Batcher != nil:
		return false, "the batcher runs in the replica process"
	case quality:
		return false, "the quality journal runs in the replica process"
	case ext.MinReplicas != nil && *ext.MinReplicas > 1, ext.MaxReplicas > 1:
		return false, "more than one replica needs processes"
	case ext.MaxReplicas == 0 && scalesOut(isvc, ext):
		return false, "containerConcurrency or autoscaling settings (scaleMetric/scaleTarget) with no maxReplicas scale out to more replicas, which needs processes (maxReplicas: 1 serves it in-process)"
	}
	return true, ""
}

// scalesOut reports whether a component asks for what only more replicas
// give: a per-replica containerConcurrency limit (one process already uses
// every core, so only such a limit makes more replicas serve more), or
// autoscaling settings of its own (scaleMetric or scaleTarget, or Knative's
// metric or target annotation), whose scale-out the user tuned for.
func scalesOut(isvc *api.InferenceService, ext *api.ComponentExtensionSpec) bool {
	ann := isvc.Metadata.Annotations
	_, metric := ann["autoscaling.knative.dev/metric"]
	_, target := ann["autoscaling.knative.dev/target"]
	limited := ext.ContainerConcurrency != nil && *ext.ContainerConcurrency > 0
	return limited || ext.ScaleTarget != nil || ext.ScaleMetric != "" || metric || target
}

// EmbeddedServer is what an in-process replica's server hands the ingress
// once it is built.
type EmbeddedServer struct {
	// Handler serves the replica's HTTP API (server.Server.Handler).
	Handler http.Handler
	// Ready reports whether every model is loaded (readiness).
	Ready func() bool
}

// ServeFunc runs `ferry serve` inside this process with args, the flags a
// process replica is given (without the "serve" command), until ctx ends;
// then it drains the requests its listeners took, closes its models and
// returns. It writes its log to log, and calls started once its server is
// built (before the models load). internal/cli provides it.
type ServeFunc func(ctx context.Context, args []string, log io.Writer, started func(EmbeddedServer)) error

// InProcessRunner runs a revision as one replica inside this process: the
// model is loaded by `ferry serve`'s own code (Serve), which also listens
// on the replica's ports (gRPC, direct clients), and the router calls the
// replica's handler for HTTP requests routed to it instead of proxying.
type InProcessRunner struct {
	Serve  ServeFunc
	Router *router.Router
	Logger *slog.Logger
	// StopGrace bounds how long a stopping replica waits for the requests
	// the ingress handed it (default 30s, as ferry serve's drain).
	StopGrace time.Duration
}

var _ Runner = InProcessRunner{}
var _ Replicas = (*inProcessSet)(nil)

// Replicas implements Runner. The set runs at most one replica: more of
// them in one process would only share its CPUs.
func (p InProcessRunner) Replicas(spec ReplicaSpec, onChange func()) Replicas {
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	grace := p.StopGrace
	if grace <= 0 {
		grace = 30 * time.Second
	}
	return &inProcessSet{name: spec.Revision, tmpl: spec.Template, logDir: spec.LogDir, serve: p.Serve, router: p.Router, log: log, grace: grace, onChange: onChange}
}

// inProcessSet is the Replicas of an in-process revision: zero or one
// replica. It is safe for concurrent use.
type inProcessSet struct {
	name     string
	tmpl     ProcessTemplate
	logDir   string
	serve    ServeFunc
	router   *router.Router
	log      *slog.Logger
	grace    time.Duration
	onChange func()

	mu     sync.Mutex
	cur    *inReplica // nil: scaled to zero
	nextID int
	wg     sync.WaitGroup
}

// isInProcess reports whether a revision's replicas run in this process.
func isInProcess(rs Replicas) bool {
	_, ok := rs.(*inProcessSet)
	return ok
}

// inReplica is one in-process replica.
type inReplica struct {
	name     string
	httpPort int
	grpcPort int
	addr     string
	cancel   context.CancelFunc

	// inflight counts the requests the ingress is serving through the
	// handler; closing turns new ones away while a stop drains them.
	inflight atomic.Int64
	closing  atomic.Bool

	mu     sync.Mutex
	status supervisor.Status
	logs   lineRing
}

// Scale runs one replica for any n > 0 and none for 0. A stopped replica
// drains in the background; Close waits for it.
func (s *inProcessSet) Scale(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > 0 && s.cur == nil {
		r, err := s.start()
		if err != nil {
			return err
		}
		s.cur = r
	}
	if n == 0 && s.cur != nil {
		s.cur.cancel()
		s.cur = nil
	}
	return nil
}

func (s *inProcessSet) start() (*inReplica, error) {
	hp, err := freePort()
	if err != nil {
		return nil, err
	}
	gp, err := freePort()
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s-%d", s.name, s.nextID)
	s.nextID++
	ctx, cancel := context.WithCancel(context.Background())
	r := &inReplica{name: name, httpPort: hp, grpcPort: gp, addr: "127.0.0.1:" + strconv.Itoa(hp), cancel: cancel,
		status: supervisor.Status{Name: name, Phase: supervisor.Starting, PID: os.Getpid(), Since: time.Now()}, logs: lineRing{max: 1000}}
	s.wg.Add(1)
	go func() { // owned by the set: Close cancels and waits
		defer s.wg.Done()
		s.run(ctx, r)
	}()
	return r, nil
}

// set changes a replica's status and tells the controller.
func (s *inProcessSet) set(r *inReplica, f func(*supervisor.Status)) {
	r.mu.Lock()
	old := r.status
	f(&r.status)
	if r.status.Phase != old.Phase {
		r.status.Since = time.Now()
	}
	changed := r.status != old
	r.mu.Unlock()
	if changed && s.onChange != nil {
		s.onChange()
	}
}

// run keeps the replica's server running until ctx ends, restarting it
// with backoff when it stops by itself (a model that fails to load, or
// stays unready), as the supervisor restarts a process.
func (s *inProcessSet) run(ctx context.Context, r *inReplica) {
	defer s.set(r, func(st *supervisor.Status) { st.Phase = supervisor.Stopped })
	const first, most = 500 * time.Millisecond, 30 * time.Second
	backoff := first
	for {
		start := time.Now()
		err := s.runOnce(ctx, r)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = first
		}
		s.set(r, func(st *supervisor.Status) { st.Phase, st.LastExit = supervisor.Backoff, err.Error(); st.Restarts++ })
		s.log.Warn("in-process replica stopped; restarting", "replica", r.name, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, most)
	}
}

// Readiness is checked often until the replica is first ready (so it is
// routed as soon as it can serve) and then at the process probe's period;
// a replica unready for restartAfterNotReady after it was ready restarts,
// which reloads its model, as a process replica does.
const (
	readyFastPeriod      = 10 * time.Millisecond
	readyPeriod          = 2 * time.Second
	restartAfterNotReady = 10 * time.Second
)

// runOnce runs the replica's server until it stops by itself, stays
// unready, or ctx ends (then the ingress's requests drain first).
func (s *inProcessSet) runOnce(ctx context.Context, r *inReplica) error {
	cfg := s.tmpl(r.httpPort, r.grpcPort)
	if len(cfg.Args) == 0 || cfg.Args[0] != "serve" {
		return errors.New("an in-process replica runs ferry serve only")
	}
	logw := &replicaLog{r: r}
	if s.logDir != "" {
		f, err := os.OpenFile(filepath.Join(s.logDir, r.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("log file: %w", err)
		}
		defer f.Close()
		logw.file = f
	}
	s.set(r, func(st *supervisor.Status) { st.Phase = supervisor.Starting })
	// The server's own context: cancelled only once the ingress's
	// requests have drained.
	sctx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	started := make(chan EmbeddedServer, 1)
	done := make(chan error, 1)
	go func() { // owned: ends when sctx ends or the server fails; runOnce waits for it
		done <- s.serve(sctx, cfg.Args[1:], logw, func(e EmbeddedServer) { started <- e })
	}()
	var es EmbeddedServer
	select {
	case es = <-started:
	case err := <-done:
		return exited(err)
	case <-ctx.Done():
		stopServer()
		<-done
		return ctx.Err()
	}
	r.closing.Store(false)
	s.router.SetLocal(r.addr, r.guard(es.Handler, slog.New(slog.NewJSONHandler(logw, nil))))
	stop := func() {
		s.router.SetLocal(r.addr, nil)
		r.drain(s.grace)
		stopServer()
		<-done
	}
	tick := time.NewTimer(0)
	defer tick.Stop()
	becameReady := false
	var notReadySince time.Time
	for {
		select {
		case err := <-done:
			s.router.SetLocal(r.addr, nil)
			return exited(err)
		case <-ctx.Done():
			stop()
			return ctx.Err()
		case <-tick.C:
		}
		period := readyPeriod
		switch {
		case es.Ready():
			becameReady, notReadySince = true, time.Time{}
			s.set(r, func(st *supervisor.Status) { st.Phase = supervisor.Ready })
		case !becameReady:
			period = readyFastPeriod
		default:
			s.set(r, func(st *supervisor.Status) { st.Phase = supervisor.NotReady })
			now := time.Now()
			if notReadySince.IsZero() {
				notReadySince = now
			}
			if d := now.Sub(notReadySince); d >= restartAfterNotReady {
				stop()
				return fmt.Errorf("not ready for %v after it was ready", d.Round(time.Second))
			}
		}
		tick.Reset(period)
	}
}

func exited(err error) error {
	if err == nil {
		return errors.New("server stopped")
	}
	return fmt.Errorf("server stopped: %w", err)
}

// guard counts the requests the ingress hands the replica's handler, and
// turns them away once the replica is stopping. It also recovers a panic
// in the handler, logged with its stack to the replica's log, as the 500
// it answers: the handler may run on a goroutine no server recovers (an
// InferenceGraph's ensemble calls its steps on goroutines of its own),
// where the panic would end ferry up and every service in it, not one
// replica.
func (r *inReplica) guard(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.inflight.Add(1)
		defer func() {
			r.inflight.Add(-1)
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler { //nolint:errorlint // net/http compares it the same way
					panic(p) // the handler asked for the connection to be cut
				}
				log.ErrorContext(req.Context(), "in-process replica's handler panicked; the request fails, ferry up goes on",
					"replica", r.name, "path", req.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = fmt.Fprintf(w, `{"error":"replica %s: internal error: the handler panicked"}`, r.name)
			}
		}()
		if r.closing.Load() {
			// It was routed here just before the stop: the client retries,
			// as after a process replica that closed its port.
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, `{"error":"replica %s is stopping"}`, r.name)
			return
		}
		h.ServeHTTP(w, req)
	})
}

// drain turns new requests away and waits up to grace for those being
// served. A request either counts itself before closing is set (and is
// waited for) or sees closing (and is turned away).
func (r *inReplica) drain(grace time.Duration) {
	r.closing.Store(true)
	deadline := time.Now().Add(grace)
	for r.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // bounded poll, once per stop
	}
}

// Backends lists the replica's HTTP address once it is ready.
func (s *inProcessSet) Backends() []string {
	if r := s.ready(); r != nil {
		return []string{r.addr}
	}
	return nil
}

// GRPCBackends lists its gRPC address once it is ready: gRPC requests
// still reach it through the ingress's gRPC proxy, on loopback.
func (s *inProcessSet) GRPCBackends() []string {
	if r := s.ready(); r != nil {
		return []string{"127.0.0.1:" + strconv.Itoa(r.grpcPort)}
	}
	return nil
}

func (s *inProcessSet) ready() *inReplica {
	s.mu.Lock()
	r := s.cur
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status.Phase != supervisor.Ready {
		return nil
	}
	return r
}

// Status lists the replica, if one runs; its PID is this process's.
func (s *inProcessSet) Status() []ReplicaStatus {
	s.mu.Lock()
	r := s.cur
	s.mu.Unlock()
	if r == nil {
		return []ReplicaStatus{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return []ReplicaStatus{{Status: r.status, HTTPPort: r.httpPort, GRPCPort: r.grpcPort, InProcess: true}}
}

// Logs returns the replica's last n log lines.
func (s *inProcessSet) Logs(n int) map[string][]string {
	s.mu.Lock()
	r := s.cur
	s.mu.Unlock()
	out := map[string][]string{}
	if r != nil {
		r.mu.Lock()
		out[r.name] = r.logs.last(n)
		r.mu.Unlock()
	}
	return out
}

// Close stops the replica (its requests drain, its models are closed) and
// waits for it.
func (s *inProcessSet) Close() {
	_ = s.Scale(0)
	s.wg.Wait()
}

// replicaLog receives an in-process replica's log: appended to its log
// file, as a process replica's output is, and kept for Logs.
type replicaLog struct {
	r    *inReplica
	file *os.File
	part []byte // a line not yet ended
}

func (l *replicaLog) Write(p []byte) (int, error) {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if l.file != nil {
		_, _ = l.file.Write(p)
	}
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		l.r.logs.add(string(l.part[:i]))
		l.part = l.part[i+1:]
	}
	if len(l.part) == 0 {
		l.part = nil
	}
	return len(p), nil
}

// lineRing keeps the last max lines.
type lineRing struct {
	max   int
	lines []string
	start int
}

func (g *lineRing) add(s string) {
	if len(g.lines) < g.max {
		g.lines = append(g.lines, s)
		return
	}
	g.lines[g.start] = s
	g.start = (g.start + 1) % g.max
}

func (g *lineRing) last(n int) []string {
	all := append(append([]string(nil), g.lines[g.start:]...), g.lines[:g.start]...)
	if n > 0 && n < len(all) {
		return all[len(all)-n:]
	}
	return all
}
