package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/router"
	"github.com/ferryserve/ferry/internal/supervisor"
)

// fakeServe is a ServeFunc whose "server" answers "in-process PORT" and
// records when it stops; nothing listens on PORT, so an answer proves the
// router called the handler.
type fakeServe struct {
	ready atomic.Bool
	// fail makes the next calls fail before the server is built.
	fail atomic.Int32
	// slow, if set, holds requests with ?slow until it is closed.
	slow chan struct{}
	// inflight is set while a slow request runs.
	inflight atomic.Bool

	mu      sync.Mutex
	calls   int
	stopped map[string]bool // by --http-port: the server's ctx ended
	// drainedFirst records, per port, whether no request was in flight
	// when the server was told to stop.
	drainedFirst map[string]bool
}

func argValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

func (f *fakeServe) serve(ctx context.Context, args []string, logw io.Writer, started func(EmbeddedServer)) error {
	port := argValue(args, "--http-port")
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if f.fail.Load() > 0 {
		f.fail.Add(-1)
		fmt.Fprintln(logw, `{"level":"ERROR","msg":"model failed to load"}`)
		return errors.New("load xgboost model: bad header")
	}
	fmt.Fprintln(logw, `{"level":"INFO","msg":"serving","port":"`+port+`"}`)
	started(EmbeddedServer{Ready: f.ready.Load, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("panic") {
			panic("handler fault")
		}
		if r.URL.Query().Has("slow") {
			f.inflight.Store(true)
			<-f.slow
			f.inflight.Store(false)
		}
		_, _ = io.WriteString(w, "in-process "+port)
	})})
	<-ctx.Done()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped == nil {
		f.stopped, f.drainedFirst = map[string]bool{}, map[string]bool{}
	}
	f.stopped[port] = true
	f.drainedFirst[port] = !f.inflight.Load()
	return nil
}

func (f *fakeServe) wasStopped(port string) (stopped, drainedFirst bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped[port], f.drainedFirst[port]
}

func serveTmpl(hp, gp int) supervisor.Config {
	return supervisor.Config{Command: "ferry", Args: []string{"serve", "--http-port", fmt.Sprint(hp), "--grpc-port", fmt.Sprint(gp)}}
}

// waitFor polls cond (bounded) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // bounded poll
	}
}

func routeTo(t *testing.T, rt *router.Router, backends []string) {
	t.Helper()
	if err := rt.Update(&router.Table{Domain: "example.com", Services: []*router.Service{{Name: "m", Namespace: "default", Components: map[string]*router.Component{
		router.Predictor: {Targets: []router.Target{{Revision: "m-predictor-00001", Percent: 100, Backends: backends}}},
	}}}}); err != nil {
		t.Fatal(err)
	}
}

func post(t *testing.T, h http.Handler, host, path string) (int, string, string) {
	t.Helper()
	req := httptest.NewRequest("POST", "http://"+host+path, strings.NewReader(`{"instances":[[1,2,3,4]]}`))
	req.Host = host
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String(), rec.Header().Get(router.HeaderRevision)
}

// TestInProcessReplica: one replica whatever the scale; not routed until
// its model is ready; served by the router without a hop; its log kept;
// a stop waits for the requests the ingress handed it before the server
// (and its models) is told to stop.
func TestInProcessReplica(t *testing.T) {
	fs := &fakeServe{slow: make(chan struct{})}
	rt := router.New("example.com", nil)
	var changes atomic.Int64
	rs := InProcessRunner{Serve: fs.serve, Router: rt}.Replicas(ReplicaSpec{Revision: "m-predictor-00001", Template: serveTmpl, LogDir: t.TempDir()},
		func() { changes.Add(1) })
	if err := rs.Scale(3); err != nil {
		t.Fatal(err)
	}
	st := rs.Status()
	if len(st) != 1 || !st[0].InProcess || st[0].PID != os.Getpid() || st[0].HTTPPort == 0 {
		t.Fatalf("status %+v, want one in-process replica with this process's pid", st)
	}
	waitFor(t, "the server to start", func() bool { return len(rs.Logs(0)[st[0].Name]) > 0 })
	time.Sleep(50 * time.Millisecond) // several readiness checks
	if b := rs.Backends(); len(b) != 0 || rs.Status()[0].Phase != supervisor.Starting {
		t.Fatalf("not ready yet, but backends %v, phase %s", b, rs.Status()[0].Phase)
	}
	fs.ready.Store(true)
	waitFor(t, "ready", func() bool { return len(rs.Backends()) == 1 })
	if changes.Load() == 0 {
		t.Fatal("readiness changed without telling the controller")
	}
	port := fmt.Sprint(st[0].HTTPPort)
	if b, g := rs.Backends()[0], rs.GRPCBackends(); b != "127.0.0.1:"+port || len(g) != 1 {
		t.Fatalf("backends %s, gRPC %v", b, g)
	}
	routeTo(t, rt, rs.Backends())
	if code, body, rev := post(t, rt, "m.default.example.com", "/v1/models/m:predict"); code != 200 || body != "in-process "+port || rev != "m-predictor-00001" {
		t.Fatalf("through the router: %d %q %q", code, body, rev)
	}
	if l := rs.Logs(5)[st[0].Name]; len(l) != 1 || !strings.Contains(l[0], `"msg":"serving"`) {
		t.Fatalf("logs %q", l)
	}

	slow := make(chan int, 1)
	go func() {
		code, _, _ := post(t, rt, "m.default.example.com", "/v1/models/m:predict?slow=1")
		slow <- code
	}()
	waitFor(t, "the slow request", fs.inflight.Load)
	closed := make(chan struct{})
	go func() {
		rs.Close()
		close(closed)
	}()
	time.Sleep(100 * time.Millisecond)
	if stopped, _ := fs.wasStopped(port); stopped {
		t.Fatal("the server was stopped while the ingress's request ran")
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a request ran")
	default:
	}
	close(fs.slow)
	if code := <-slow; code != 200 {
		t.Fatalf("the request in flight at the stop got %d", code)
	}
	<-closed
	if stopped, drained := fs.wasStopped(port); !stopped || !drained {
		t.Fatalf("server stopped %v, after the drain %v", stopped, drained)
	}
	if st := rs.Status(); len(st) != 0 {
		t.Fatalf("status after Close: %+v", st)
	}
	// The handler is gone: the request goes to the address, where nothing listens.
	if code, body, _ := post(t, rt, "m.default.example.com", "/v1/models/m:predict"); code != http.StatusBadGateway {
		t.Fatalf("after Close: %d %s", code, body)
	}
}

// TestInProcessReplicaRestarts: a server that fails (a model that does not
// load) is retried with backoff, and the failure shows in the status.
func TestInProcessReplicaRestarts(t *testing.T) {
	fs := &fakeServe{}
	fs.ready.Store(true)
	fs.fail.Store(1)
	rt := router.New("example.com", nil)
	var mu sync.Mutex
	var seen []ReplicaStatus
	var rs Replicas
	rs = InProcessRunner{Serve: fs.serve, Router: rt}.Replicas(ReplicaSpec{Revision: "m-predictor-00001", Template: serveTmpl},
		func() {
			mu.Lock()
			defer mu.Unlock()
			if rs != nil {
				seen = append(seen, rs.Status()...)
			}
		})
	defer rs.Close()
	if err := rs.Scale(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready after a restart", func() bool { return len(rs.Backends()) == 1 })
	st := rs.Status()[0]
	if st.Restarts != 1 || !strings.Contains(st.LastExit, "bad header") {
		t.Fatalf("status %+v, want one restart naming the failure", st)
	}
	mu.Lock()
	defer mu.Unlock()
	backoff := false
	for _, s := range seen {
		backoff = backoff || s.Phase == supervisor.Backoff
	}
	if !backoff {
		t.Fatalf("never in Backoff: %+v", seen)
	}
}

// inProcessHarness is the controller harness with the in-process runner
// (over fakeServe) beside the fake process runner.
func inProcessHarness(t *testing.T, flag bool) (*harness, *fakeServe) {
	t.Helper()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	process := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "process") }))
	t.Cleanup(process.Close)
	fs := &fakeServe{}
	fs.ready.Store(true)
	h := &harness{t: t, store: store, rt: router.New("example.com", nil), runner: &fakeRunner{backend: strings.TrimPrefix(process.URL, "http://")}}
	h.ctl = NewController(Config{Store: store, Router: h.rt, Runner: h.runner, DataDir: t.TempDir(), FerryBinary: "ferry", PredictorAddr: "127.0.0.1:1",
		InProcess: InProcessRunner{Serve: fs.serve, Router: h.rt}, InProcessPredictors: flag})
	t.Cleanup(h.ctl.stopAll)
	return h, fs
}

// settle reconciles until every in-process replica the controller runs is
// ready (they become ready on their own goroutine), then once more.
func (h *harness) settle() {
	h.t.Helper()
	h.reconcile()
	waitFor(h.t, "in-process replicas ready", func() bool {
		h.ctl.mu.Lock()
		defer h.ctl.mu.Unlock()
		for _, rs := range h.ctl.running {
			if isInProcess(rs) && len(rs.Status()) > 0 && len(rs.Backends()) == 0 {
				return false
			}
		}
		return true
	})
	h.reconcile()
}

func (h *harness) inProcessRevisions(name string) []string {
	var out []string
	for rev, rs := range h.ctl.ReplicaSets("default", name) {
		if isInProcess(rs) {
			out = append(out, rev)
		}
	}
	slices.Sort(out)
	return out
}

// TestInProcessRevisions: which revisions --in-process-predictors (or the
// annotation) serves in-process, a canary split between an in-process and
// a process revision, and the old revision's server stopped when it is
// replaced.
func TestInProcessRevisions(t *testing.T) {
	h, fs := inProcessHarness(t, true)
	h.apply(isvcYAML("ok-plain", "file:///m", ""))
	h.apply(isvcYAML("ok-batch", "file:///m", "    batcher:\n      maxBatchSize: 8\n"))
	h.apply(isvcYAML("ok-logger", "file:///m", "    logger:\n      url: http://127.0.0.1:1\n"))
	h.apply(isvcYAML("ok-many", "file:///m", "    maxReplicas: 3\n"))
	h.apply(isvcYAML("ok-cc", "file:///m", "    containerConcurrency: 2\n"))
	h.apply(isvcYAML("ok-cc-one", "file:///m", "    containerConcurrency: 2\n    maxReplicas: 1\n"))
	h.apply(isvcYAML("ok-scale", "file:///m", "    scaleMetric: rps\n    scaleTarget: 50\n"))
	h.apply(strings.Replace(isvcYAML("ok-knative", "file:///m", ""), "metadata:\n", "metadata:\n  annotations:\n    autoscaling.knative.dev/target: \"10\"\n", 1))
	h.apply(isvcYAML("ok-scale-one", "file:///m", "    scaleTarget: 50\n    maxReplicas: 1\n"))
	h.apply(strings.Replace(isvcYAML("ok-out", "file:///m", ""), "metadata:\n", "metadata:\n  annotations:\n    serving.ferryserve.io/in-process: \"false\"\n", 1))
	h.apply(strings.Replace(isvcYAML("ok-quality", "file:///m", ""), "metadata:\n", "metadata:\n  annotations:\n    serving.ferryserve.io/quality: \"true\"\n", 1))
	h.settle()
	for name, want := range map[string]int{"ok-plain": 1, "ok-batch": 0, "ok-logger": 0, "ok-many": 0, "ok-cc": 0, "ok-cc-one": 1, "ok-scale": 0, "ok-knative": 0, "ok-scale-one": 1, "ok-out": 0, "ok-quality": 0} {
		if got := len(h.inProcessRevisions(name)); got != want {
			t.Errorf("%s: %d in-process revisions, want %d", name, got, want)
		}
		if ready(h.status(name)) != "True" {
			t.Errorf("%s not Ready: %+v", name, h.status(name).Conditions)
		}
	}
	why := ""
	for _, e := range h.ctl.Events("default", "ok-batch") {
		if e.Reason == "ProcessReplicas" {
			why = e.Message
		}
	}
	if !strings.Contains(why, "batcher") {
		t.Errorf("ok-batch's event says %q, want the batcher named", why)
	}
	if err := h.ctl.ApplyYAML([]byte(strings.Replace(isvcYAML("ok-bad", "file:///m", ""), "metadata:\n", "metadata:\n  annotations:\n    serving.ferryserve.io/in-process: \"yes please\"\n", 1))); err == nil || !strings.Contains(err.Error(), "in-process") {
		t.Errorf("a non-boolean annotation was accepted: %v", err)
	}

	// Canary: the new revision has a batcher, so it runs as a process.
	rev1 := "ok-plain-predictor-00001"
	port := fmt.Sprint(h.ctl.ReplicaSets("default", "ok-plain")[rev1].Status()[0].HTTPPort)
	h.apply(isvcYAML("ok-plain", "file:///m", "    canaryTrafficPercent: 40\n    batcher:\n      maxBatchSize: 8\n"))
	h.settle()
	if tr := traffic(h.status("ok-plain"), "predictor"); tr != "ok-plain-predictor-00002=40,ok-plain-predictor-00001=60(prev)" {
		t.Fatalf("canary traffic %s", tr)
	}
	if ip := h.inProcessRevisions("ok-plain"); len(ip) != 1 || ip[0] != rev1 {
		t.Fatalf("in-process revisions %v, want only %s", ip, rev1)
	}
	const n = 1000
	got := map[string]int{}
	for range n {
		code, body, rev := post(t, h.rt, "ok-plain.default.example.com", "/v1/models/ok-plain:predict")
		if code != 200 {
			t.Fatalf("canary request: %d %s", code, body)
		}
		if (rev == rev1) != (body == "in-process "+port) {
			t.Fatalf("revision %s answered %q", rev, body)
		}
		got[rev]++
	}
	if pct := got[rev1] * 100 / n; pct < 54 || pct > 66 {
		t.Fatalf("the in-process revision got %d%%, want 60 ± 6: %v", pct, got)
	}
	if c := h.rt.Stats("default", rev1).Latency.Snapshot().Classes["2xx"].Count; c != uint64(got[rev1]) {
		t.Fatalf("latency histogram of %s counted %d, want %d", rev1, c, got[rev1])
	}

	// Promotion keeps the in-process revision for a rollback; the next
	// revision replaces it, and its server stops.
	h.apply(isvcYAML("ok-plain", "file:///m", "    batcher:\n      maxBatchSize: 8\n"))
	h.settle()
	if _, body, _ := post(t, h.rt, "ok-plain.default.example.com", "/v1/models/ok-plain:predict"); body != "process" {
		t.Fatalf("after promotion: %q", body)
	}
	if s, _ := fs.wasStopped(port); s {
		t.Fatalf("%s stopped while kept for a rollback", rev1)
	}
	h.apply(isvcYAML("ok-plain", "file:///m", ""))
	h.settle()
	if _, ok := h.ctl.ReplicaSets("default", "ok-plain")[rev1]; ok {
		t.Fatalf("%s still runs after two newer revisions", rev1)
	}
	waitFor(t, "the replaced revision's server to stop", func() bool { s, _ := fs.wasStopped(port); return s })
	// The third revision has no batcher: in-process again.
	ip := h.inProcessRevisions("ok-plain")
	if len(ip) != 1 || ip[0] != "ok-plain-predictor-00003" {
		t.Fatalf("in-process revisions %v, want ok-plain-predictor-00003", ip)
	}
	if _, body, rev := post(t, h.rt, "ok-plain.default.example.com", "/v1/models/ok-plain:predict"); !strings.HasPrefix(body, "in-process ") || body == "in-process "+port || rev != ip[0] {
		t.Fatalf("revision 3: %q from %s", body, rev)
	}
}

// TestInProcessAnnotationWithoutFlag: the annotation alone opts a service in.
func TestInProcessAnnotationWithoutFlag(t *testing.T) {
	h, _ := inProcessHarness(t, false)
	h.apply(isvcYAML("ok-default", "file:///m", ""))
	h.apply(strings.Replace(isvcYAML("ok-in", "file:///m", ""), "metadata:\n", "metadata:\n  annotations:\n    serving.ferryserve.io/in-process: \"true\"\n", 1))
	h.settle()
	if got := h.inProcessRevisions("ok-default"); len(got) != 0 {
		t.Errorf("without the flag or annotation: in-process %v", got)
	}
	if got := h.inProcessRevisions("ok-in"); len(got) != 1 {
		t.Errorf("with the annotation: in-process %v", got)
	}
	if ready(h.status("ok-in")) != "True" {
		t.Errorf("ok-in not Ready: %+v", h.status("ok-in").Conditions)
	}
}

// TestInProcessScaleToZeroAndBack: scaled to zero the replica's server
// stops (its model is released); scaled up again a new one loads.
func TestInProcessScaleToZeroAndBack(t *testing.T) {
	fs := &fakeServe{}
	fs.ready.Store(true)
	rt := router.New("example.com", nil)
	rs := InProcessRunner{Serve: fs.serve, Router: rt}.Replicas(ReplicaSpec{Revision: "m-predictor-00001", Template: serveTmpl}, nil)
	defer rs.Close()
	if err := rs.Scale(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return len(rs.Backends()) == 1 })
	first := fmt.Sprint(rs.Status()[0].HTTPPort)
	if err := rs.Scale(0); err != nil {
		t.Fatal(err)
	}
	if b, st := rs.Backends(), rs.Status(); len(b) != 0 || len(st) != 0 {
		t.Fatalf("scaled to zero: backends %v, status %+v", b, st)
	}
	waitFor(t, "the first server to stop", func() bool { s, _ := fs.wasStopped(first); return s })
	if err := rs.Scale(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready again", func() bool { return len(rs.Backends()) == 1 })
	st := rs.Status()
	if len(st) != 1 || fmt.Sprint(st[0].HTTPPort) == first || !strings.HasSuffix(st[0].Name, "-1") {
		t.Fatalf("after scaling up again: %+v", st)
	}
	routeTo(t, rt, rs.Backends())
	if code, body, _ := post(t, rt, "m.default.example.com", "/v1/models/m:predict"); code != 200 || body != "in-process "+fmt.Sprint(st[0].HTTPPort) {
		t.Fatalf("after scaling up again: %d %q", code, body)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.calls != 2 {
		t.Fatalf("the server was started %d times, want 2", fs.calls)
	}
}

// TestInProcessReplicaPanics: a panic in an in-process replica's handler
// fails that request with 500, its stack in the replica's log, and ferry
// up goes on, even on a goroutine no HTTP server recovers (an
// InferenceGraph ensemble calls its steps through Router.Call on
// goroutines of its own).
func TestInProcessReplicaPanics(t *testing.T) {
	fs := &fakeServe{}
	fs.ready.Store(true)
	rt := router.New("example.com", nil)
	rs := InProcessRunner{Serve: fs.serve, Router: rt}.Replicas(ReplicaSpec{Revision: "m-predictor-00001", Template: serveTmpl}, nil)
	defer rs.Close()
	if err := rs.Scale(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return len(rs.Backends()) == 1 })
	routeTo(t, rt, rs.Backends())
	type answer struct {
		code int
		body string
		err  error
	}
	got := make(chan answer, 1)
	go func() { // as graph.Executor's ensemble calls a step
		code, body, err := rt.Call(t.Context(), "default", "m", "/v1/models/m:predict?panic=1", []byte(`{"instances":[[1]]}`), nil)
		got <- answer{code, string(body), err}
	}()
	if a := <-got; a.err != nil || a.code != http.StatusInternalServerError || !strings.Contains(a.body, "panicked") {
		t.Fatalf("a request whose handler panicked: %d %q %v, want 500", a.code, a.body, a.err)
	}
	name := rs.Status()[0].Name
	if l := strings.Join(rs.Logs(0)[name], "\n"); !strings.Contains(l, "handler fault") || !strings.Contains(l, "inprocess_test.go") {
		t.Fatalf("the panic is not in the replica's log with its stack:\n%s", l)
	}
	if code, body, _ := post(t, rt, "m.default.example.com", "/v1/models/m:predict"); code != 200 || !strings.HasPrefix(body, "in-process ") {
		t.Fatalf("a request after the panic: %d %q", code, body)
	}
}
