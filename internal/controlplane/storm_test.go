package controlplane

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/cputime"
	"github.com/ferryserve/ferry/internal/router"
	"github.com/ferryserve/ferry/internal/supervisor"
)

// fakeRunner runs no processes: a revision of a service named ok-* is
// ready after loadTime, fail-* keeps failing its pull, hang-* never
// becomes ready (a pull that hangs). behave overrides that per revision.
type fakeRunner struct {
	loadTime time.Duration
	mu       sync.Mutex
	sets     map[string]*fakeSet
	// behave maps a revision name to "ok", "fail" or "hang", overriding
	// the service name's prefix (scenario tests flip one revision).
	behave map[string]string
	// backend is the address ready replicas report (default 127.0.0.1:1,
	// where nothing answers).
	backend string
}

// setBehaviour makes revision rev behave as kind (ok, fail or hang) from
// now on, whether or not it runs yet.
func (f *fakeRunner) setBehaviour(rev, kind string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.behave == nil {
		f.behave = map[string]string{}
	}
	f.behave[rev] = kind
}

func (f *fakeRunner) behaviour(rev string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.behave[rev]
	return k, ok
}

func (f *fakeRunner) Replicas(spec ReplicaSpec, onChange func()) Replicas {
	s := &fakeSet{spec: spec, onChange: onChange, loadTime: f.loadTime, runner: f}
	f.mu.Lock()
	if f.sets == nil {
		f.sets = map[string]*fakeSet{}
	}
	f.sets[spec.Service+"/"+spec.Revision] = s
	f.mu.Unlock()
	return s
}

func (f *fakeRunner) setsOf(service string) []*fakeSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*fakeSet
	for _, s := range f.sets {
		if s.spec.Service == service {
			out = append(out, s)
		}
	}
	return out
}

type fakeSet struct {
	spec     ReplicaSpec
	onChange func()
	loadTime time.Duration
	runner   *fakeRunner

	mu      sync.Mutex
	n       int
	readyAt time.Time
	timer   *time.Timer
	closed  bool
}

func (s *fakeSet) kind() string {
	if k, ok := s.runner.behaviour(s.spec.Revision); ok {
		return k
	}
	_, name, _ := strings.Cut(s.spec.Service, "/")
	k, _, _ := strings.Cut(name, "-")
	return k
}

func (s *fakeSet) Scale(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > 0 && s.n == 0 {
		// Every kind records when it would be loaded, so a revision
		// flipped to ok later is ready at once.
		s.readyAt = time.Now().Add(s.loadTime)
	}
	if n > 0 && s.n == 0 && s.kind() == "ok" {
		s.timer = time.AfterFunc(s.loadTime, s.onChange)
	}
	if n > 0 && s.n == 0 && s.kind() == "fail" {
		// A failing pull restarts every half second: churn for the controller.
		var tick func()
		tick = func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !s.closed {
				s.onChange()
				s.timer = time.AfterFunc(500*time.Millisecond, tick)
			}
		}
		s.timer = time.AfterFunc(500*time.Millisecond, tick)
	}
	s.n = n
	return nil
}

func (s *fakeSet) ready() bool {
	return s.n > 0 && s.kind() == "ok" && !s.readyAt.IsZero() && !time.Now().Before(s.readyAt)
}

func (s *fakeSet) Backends() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready() {
		return nil
	}
	if s.runner.backend != "" {
		return []string{s.runner.backend}
	}
	return []string{"127.0.0.1:1"}
}

func (s *fakeSet) GRPCBackends() []string { return nil }

func (s *fakeSet) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *fakeSet) Status() []ReplicaStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ReplicaStatus, s.n)
	for i := range out {
		out[i].Name = fmt.Sprintf("%s-%d", s.spec.Revision, i)
		out[i].Phase = supervisor.Starting
		if s.ready() {
			out[i].Phase = supervisor.Ready
		}
		if s.kind() == "fail" {
			out[i].LastExit = "exited: exit status 1"
			out[i].Restarts = 1
		}
	}
	return out
}

func (s *fakeSet) Logs(int) map[string][]string {
	if s.kind() == "fail" {
		return map[string][]string{s.spec.Revision + "-0": {`{"level":"ERROR","msg":"pull --model-uri gs://nope/m: access denied"}`}}
	}
	return nil
}

func (s *fakeSet) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.closed = true
}

type hookStatus struct {
	key string
	st  *api.InferenceServiceStatus
	at  time.Time
}

type stormResult struct {
	firstCondition, healthyReady []time.Duration
	// lateReady: a healthy service applied after the storm, while the
	// failing quarter keeps restarting.
	lateReady time.Duration
	// heapInuse is the heap in use with every service applied and running.
	heapInuse uint64
}

// runStorm applies n services (a quarter failing, a quarter hanging) to
// a running controller and waits until every one has a Ready condition
// and every healthy one is Ready.
func runStorm(t testing.TB, n int, loadTime time.Duration) stormResult {
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	runner := &fakeRunner{loadTime: loadTime}
	ctl := NewController(Config{Store: store, Router: router.New("example.com", nil), Runner: runner, DataDir: t.TempDir()})
	statuses := make(chan hookStatus, 16*n)
	ctl.statusHook = func(k string, st *api.InferenceServiceStatus) {
		select {
		case statuses <- hookStatus{k, st, time.Now()}:
		default: // the test has what it needs
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	kinds := []string{"ok", "fail", "ok", "hang"}
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("%s-%04d", kinds[i%4], i)
	}
	var mu sync.Mutex
	applied := make(map[string]time.Time, n)
	// Eight clients apply concurrently, as the API serves them.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				objs, err := api.Load([]byte(fmt.Sprintf("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: %s\nspec:\n  predictor:\n    sklearn:\n      storageUri: gs://bucket/%s\n", names[i], names[i])))
				if err == nil {
					_, err = ctl.Apply(objs[0])
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				applied["default/"+names[i]] = time.Now()
				mu.Unlock()
				ctl.Enqueue("default/" + names[i])
			}
		}()
	}
	var res stormResult
	seenCond := map[string]bool{}
	seenReady := map[string]bool{}
	all := make(chan struct{})
	deadline := time.After(120 * time.Second)
	go func() { wg.Wait(); close(all) }()
	for len(seenCond) < n || len(seenReady) < n/2 {
		var hs hookStatus
		select {
		case err := <-errs:
			t.Fatal(err)
		case hs = <-statuses:
		case <-deadline:
			t.Fatalf("after 120s: %d of %d services have a Ready condition, %d of %d healthy ones are Ready", len(seenCond), n, len(seenReady), n/2)
		}
		k := hs.key
		mu.Lock()
		at, ok := applied[k]
		mu.Unlock()
		if !ok {
			at = hs.at // written before its Apply returned: count from here
		}
		for _, c := range hs.st.Conditions {
			if c.Type != "Ready" {
				continue
			}
			if !seenCond[k] {
				seenCond[k] = true
				res.firstCondition = append(res.firstCondition, hs.at.Sub(at))
				if c.Status == "False" && (c.Reason == "" || c.Message == "") {
					t.Errorf("%s: Ready False without a reason and message: %+v", k, c)
				}
			}
			if c.Status == "True" && !seenReady[k] {
				seenReady[k] = true
				res.healthyReady = append(res.healthyReady, hs.at.Sub(at))
				if !strings.Contains(k, "/ok-") {
					t.Errorf("%s is Ready", k)
				}
			}
		}
	}
	<-all
	objs, err := api.Load([]byte("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: ok-late\nspec:\n  predictor:\n    sklearn:\n      storageUri: gs://bucket/late\n"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := ctl.Apply(objs[0]); err != nil {
		t.Fatal(err)
	}
	for res.lateReady == 0 {
		select {
		case hs := <-statuses:
			if hs.key != "default/ok-late" {
				continue
			}
			for _, c := range hs.st.Conditions {
				if c.Type == "Ready" && c.Status == "True" {
					res.lateReady = hs.at.Sub(start)
				}
			}
		case <-deadline:
			t.Fatal("the late healthy service never became Ready")
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.heapInuse = ms.HeapInuse
	// A failing pull is named in the predictor's condition.
	raw, err := store.Get(KindInferenceService, "default/fail-0001")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "access denied") {
		t.Errorf("the failing pull's reason is not in the status: %s", raw)
	}
	return res
}

// TestApplyStormEveryServiceGetsStatus: with failing and hanging pulls
// among 200 services, every service gets a Ready condition and every
// healthy one becomes Ready (no service waits on another's pull).
func TestApplyStormEveryServiceGetsStatus(t *testing.T) {
	runStorm(t, 200, 50*time.Millisecond)
}

// BenchmarkApplyStorm applies 1 000 services (a quarter failing their
// pull, a quarter hanging) and reports the p50/p99 time to a Ready
// condition, and to Ready for the healthy half (whose load takes 50 ms).
func BenchmarkApplyStorm(b *testing.B) {
	for range b.N {
		before := cputime.Process()
		res := runStorm(b, 1000, 50*time.Millisecond)
		cpu := cputime.Process() - before
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(float64(res.heapInuse)/(1<<20), "heap-MiB")
		slices.Sort(res.firstCondition)
		slices.Sort(res.healthyReady)
		q := func(d []time.Duration, p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Milliseconds()) }
		b.ReportMetric(q(res.firstCondition, 0.5), "cond-p50-ms")
		b.ReportMetric(q(res.firstCondition, 0.99), "cond-p99-ms")
		b.ReportMetric(q(res.healthyReady, 0.5), "ready-p50-ms")
		b.ReportMetric(q(res.healthyReady, 0.99), "ready-p99-ms")
		b.ReportMetric(float64(res.lateReady.Milliseconds()), "late-ready-ms")
	}
}
