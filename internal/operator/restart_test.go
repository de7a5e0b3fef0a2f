package operator_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// restartBudget bounds TestOperatorRestart from the cluster's start to the
// end of the garbage collection it checks (a loaded 2-core machine takes
// about half of it).
const restartBudget = 90 * time.Second

// restartService is one InferenceService of TestOperatorRestart and what
// the operator must have made for it in the end.
type restartService struct {
	name        string
	hpa         bool // minReplicas < maxReplicas: an HPA per revision
	transformer bool
	canary      bool // updated to a new model at 10 %: a second revision
}

func (s restartService) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: %s, namespace: %s}\nspec:\n  predictor:\n", s.name, ns)
	if s.hpa {
		b.WriteString("    minReplicas: 1\n    maxReplicas: 3\n")
	}
	fmt.Fprintf(&b, "    sklearn: {storageUri: \"gs://bucket/%s/v1\"}\n", s.name)
	if s.transformer {
		b.WriteString("  transformer:\n    containers:\n    - image: example/transformer:1\n")
	}
	return b.String()
}

// revisions are the Deployments the service must have: one revision per
// component, two for the predictor of a canary (the rolled-out one keeps
// 90 %).
func (s restartService) revisions() []string {
	revs := []string{s.name + "-predictor-00001"}
	if s.canary {
		revs = append(revs, s.name+"-predictor-00002")
	}
	if s.transformer {
		revs = append(revs, s.name+"-transformer-00001")
	}
	return revs
}

func (s restartService) services() []string {
	if s.transformer {
		return []string{s.name + "-predictor", s.name + "-transformer"}
	}
	return []string{s.name + "-predictor"}
}

func (s restartService) hpas() []string {
	if !s.hpa {
		return nil
	}
	if s.canary {
		return []string{s.name + "-predictor-00001", s.name + "-predictor-00002"}
	}
	return []string{s.name + "-predictor-00001"}
}

// TestOperatorRestart runs `ferry operator` as a child process against a
// real API server, SIGKILLs it four times while it reconciles 60
// InferenceServices (plain, with a transformer, some updated to a canary
// mid-way) and starts it again each time. Once every service is Ready it
// checks that exactly the expected Deployments, Services and HPAs exist
// (no revision made twice for one spec, no revision numbered past what
// the spec changes call for), each controlled by an existing
// InferenceService, and that deleting the services leaves nothing of the
// operator behind. FERRY_RESTART_SEED replays a run's kill points.
func TestOperatorRestart(t *testing.T) {
	start := time.Now()
	deadline := start.Add(restartBudget)
	cluster := kubetest.Start(t, kubetest.Options{CRDDirs: []string{"../../config/crd"}})
	bin := buildFerry(t)
	// The operator runs in its own process, so nothing here sets
	// controller-runtime's logger, and it warns (with a stack) when the
	// test's client finds none: warnings to stderr, as the benchmark
	// logs. (Only the first logger set counts; in the package's run it is
	// an earlier test's.)
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	cl := newClient(t, cluster)
	ctx := t.Context()

	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("FERRY_RESTART_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("FERRY_RESTART_SEED=%d", seed)
	rnd := rand.New(rand.NewPCG(seed, seed))

	var svcs []restartService
	for i := range 60 {
		s := restartService{name: fmt.Sprintf("rs-%02d", i), hpa: i%3 == 0}
		switch i % 4 {
		case 1:
			s.transformer = true
		case 2, 3:
			s.canary = i%8 < 4 // half of these are updated
		}
		svcs = append(svcs, s)
	}

	// The Deployment controller: no kubelet runs, so the test marks every
	// revision available as it appears, throughout.
	playCtx, stopPlay := context.WithCancel(ctx)
	var players sync.WaitGroup
	players.Go(func() { markAllAvailable(playCtx, t, cl) })
	t.Cleanup(func() { stopPlay(); players.Wait() })

	op := &operatorProcs{t: t, bin: bin, args: []string{"operator", "--kubeconfig", cluster.Kubeconfig,
		"--leader-elect=false", "--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--serve-image", serveImage, "--log-format", "json", "--log-level", "info"}}
	t.Cleanup(op.stop)

	// Kill 1: while the services are being created, after the operator
	// has made a random number of revisions.
	docs := make([]*unstructured.Unstructured, len(svcs))
	for i, s := range svcs {
		docs[i] = loadYAML(t, s.yaml())
	}
	p := op.start()
	created := make(chan struct{})
	go func() {
		defer close(created)
		createAll(ctx, t, cl, docs)
	}()
	t.Cleanup(func() { <-created })
	p.killAfter(t, "created revision", 5+rnd.IntN(30), 30*time.Second)
	<-created

	// Kill 2: the canaries' updates arrive once their first revision is
	// rolled out (else KServe gives the new revision all traffic at
	// once); the operator dies after making a random number of their
	// second revisions.
	p = op.start()
	var canaries []restartService
	for _, s := range svcs {
		if s.canary {
			canaries = append(canaries, s)
		}
	}
	for _, s := range canaries {
		waitUntil(t, deadline, s.name+" rolled out revision 1", func() (bool, error) {
			st, _ := get(t, cl, s.name).Object["status"].(map[string]any)
			return component(st, "predictor")["latestRolledoutRevision"] == s.name+"-predictor-00001", nil
		})
	}
	updated := make(chan struct{})
	go func() {
		defer close(updated)
		for _, s := range canaries {
			if err := toCanary(ctx, cl, s.name); err != nil {
				t.Errorf("update %s: %v", s.name, err)
			}
		}
	}()
	t.Cleanup(func() { <-updated })
	p.killAfter(t, "-00002", 1+rnd.IntN(len(canaries)/2), 30*time.Second)
	<-updated

	// Kills 3 and 4: at random moments of the resync a start begins with
	// (every service is reconciled again, and the canaries' revisions
	// become available meanwhile).
	for range 2 {
		p = op.start()
		time.Sleep(time.Duration(100+rnd.IntN(1400)) * time.Millisecond)
		p.kill(t)
	}
	op.start()

	want := map[string]restartService{}
	for _, s := range svcs {
		want[s.name] = s
	}
	waitUntil(t, deadline, "every InferenceService Ready with its final revisions", func() (bool, error) {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(operator.InferenceServiceGVK.GroupVersion().WithKind("InferenceServiceList"))
		if err := cl.List(ctx, list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		ready := 0
		for _, u := range list.Items {
			s, ok := want[u.GetName()]
			st, _ := u.Object["status"].(map[string]any)
			if !ok || conditionStatus(st, "Ready") != "True" {
				continue
			}
			if g, _ := st["observedGeneration"].(int64); g != u.GetGeneration() {
				continue
			}
			tr := traffic(st)
			switch rev1, rev2 := s.name+"-predictor-00001", s.name+"-predictor-00002"; {
			case s.canary && (len(tr) != 2 || tr[rev2] != 10 || tr[rev1] != 90):
				continue
			case !s.canary && (len(tr) != 1 || tr[rev1] != 100):
				continue
			}
			ready++
		}
		return ready == len(svcs), nil
	})

	// Exactly what the services call for, each owned by its service.
	isvcUIDs := map[string]types.UID{}
	for _, s := range svcs {
		isvcUIDs[s.name] = get(t, cl, s.name).GetUID()
	}
	var wantDeps, wantSvcs, wantHPAs []string
	for _, s := range svcs {
		wantDeps = append(wantDeps, s.revisions()...)
		wantSvcs = append(wantSvcs, s.services()...)
		wantHPAs = append(wantHPAs, s.hpas()...)
	}
	objs := operatorObjects(t, cl)
	for kind, want := range map[string][]string{"Deployment": wantDeps, "Service": wantSvcs, "HorizontalPodAutoscaler": wantHPAs} {
		var got []string
		for _, o := range objs[kind] {
			got = append(got, o.GetName())
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			extra, missing := difference(got, want), difference(want, got)
			t.Errorf("%ss: %d, want %d; not wanted %q, missing %q", kind, len(got), len(want), extra, missing)
		}
		for _, o := range objs[kind] {
			owner := o.GetLabels()[operator.LabelInferenceService]
			refs := o.GetOwnerReferences()
			ctrl := metav1.GetControllerOfNoCopy(o)
			if len(refs) != 1 || ctrl == nil || ctrl.Kind != "InferenceService" || ctrl.Name != owner || ctrl.UID != isvcUIDs[owner] || isvcUIDs[owner] == "" {
				t.Errorf("%s %s: owner references %+v, want its InferenceService %s (%s) as controller", kind, o.GetName(), refs, owner, isvcUIDs[owner])
			}
		}
	}
	// One revision per spec: a component's revisions differ in spec hash.
	hashes := map[string]string{}
	for _, o := range objs["Deployment"] {
		key := o.GetLabels()[operator.LabelInferenceService] + "/" + o.GetLabels()[operator.LabelComponent] + "/" + o.GetAnnotations()[operator.AnnotationSpecHash]
		if prev, dup := hashes[key]; dup {
			t.Errorf("revisions %s and %s are made from one spec", prev, o.GetName())
		}
		hashes[key] = o.GetName()
	}

	// Deleting the services leaves nothing of the operator's: the garbage
	// collector follows the owner references.
	if !cluster.GC {
		t.Log("no garbage collector (kube-controller-manager not built): owner references checked, cascade not")
		return
	}
	for _, s := range svcs {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(operator.InferenceServiceGVK)
		u.SetNamespace(ns)
		u.SetName(s.name)
		if err := cl.Delete(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	var left []string
	for {
		left = left[:0]
		for kind, l := range operatorObjects(t, cl) {
			for _, o := range l {
				left = append(left, kind+" "+o.GetName())
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			slices.Sort(left)
			t.Fatalf("%d objects of the operator's remain, their InferenceServices deleted, at the test's %v deadline: %q", len(left), restartBudget, left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d services, 4 kills, %d starts, all Ready and collected in %v", len(svcs), op.starts, time.Since(start).Round(time.Second))
}

// createAll creates objs with four clients at once.
func createAll(ctx context.Context, t *testing.T, cl client.Client, objs []*unstructured.Unstructured) {
	work := make(chan *unstructured.Unstructured)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for u := range work {
				if err := cl.Create(ctx, u); err != nil {
					t.Errorf("create %s: %v", u.GetName(), err)
				}
			}
		})
	}
	for _, u := range objs {
		work <- u
	}
	close(work)
	wg.Wait()
}

// toCanary gives the InferenceService name a new model at 10 % of the
// traffic, again on a conflict (the operator writes its status).
func toCanary(ctx context.Context, cl client.Client, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(operator.InferenceServiceGVK)
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
			return err
		}
		pr := u.Object["spec"].(map[string]any)["predictor"].(map[string]any)
		pr["canaryTrafficPercent"] = int64(10)
		pr["sklearn"].(map[string]any)["storageUri"] = "gs://bucket/" + name + "/v2"
		return cl.Update(ctx, u)
	})
}

// operatorObjects lists the Deployments, Services and HPAs that carry the
// operator's managed-by label, by kind.
func operatorObjects(t *testing.T, cl client.Client) map[string][]metav1.Object {
	t.Helper()
	sel := []client.ListOption{client.InNamespace(ns), client.MatchingLabels{operator.LabelManagedBy: "ferry-operator"}}
	var deps appsv1.DeploymentList
	var svcs corev1.ServiceList
	var hpas autoscalingv2.HorizontalPodAutoscalerList
	for _, l := range []client.ObjectList{&deps, &svcs, &hpas} {
		if err := cl.List(t.Context(), l, sel...); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string][]metav1.Object{}
	for i := range deps.Items {
		out["Deployment"] = append(out["Deployment"], &deps.Items[i])
	}
	for i := range svcs.Items {
		out["Service"] = append(out["Service"], &svcs.Items[i])
	}
	for i := range hpas.Items {
		out["HorizontalPodAutoscaler"] = append(out["HorizontalPodAutoscaler"], &hpas.Items[i])
	}
	return out
}

// difference is what a holds and b does not.
func difference(a, b []string) []string {
	var d []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			d = append(d, x)
		}
	}
	return d
}

// markAllAvailable marks every Deployment available until ctx ends, as
// the Deployment controller would once its pods are ready.
func markAllAvailable(ctx context.Context, t *testing.T, cl client.Client) {
	done := map[string]bool{}
	for {
		var deps appsv1.DeploymentList
		if err := cl.List(ctx, &deps, client.InNamespace(ns)); err != nil {
			if ctx.Err() == nil {
				t.Error(err)
			}
			return
		}
		for i := range deps.Items {
			d := &deps.Items[i]
			if done[string(d.UID)] {
				continue
			}
			d.Status = appsv1.DeploymentStatus{
				ObservedGeneration: d.Generation,
				Replicas:           1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
				Conditions: []appsv1.DeploymentCondition{{
					Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
					LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now(),
				}},
			}
			if err := cl.Status().Update(ctx, d); err == nil {
				done[string(d.UID)] = true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitUntil polls cond every 100 ms until it returns true; it fails the
// test on an error or at deadline.
func waitUntil(t *testing.T, deadline time.Time, what string, cond func() (bool, error)) {
	t.Helper()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within the test's %v", what, restartBudget)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// buildFerry builds the ferry binary into a temporary directory.
func buildFerry(t testing.TB) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build ferry with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "ferry")
	cmd := exec.CommandContext(t.Context(), gobin, "build", "-o", bin, "github.com/ferryserve/ferry/cmd/ferry")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ferry: %v\n%s", err, out)
	}
	return bin
}

// operatorProcs starts `ferry operator` processes, one at a time.
type operatorProcs struct {
	t      *testing.T
	bin    string
	args   []string
	starts int
	cur    *operatorProc
}

// operatorProc is one started `ferry operator`; its log goes to log and
// to a file kept for a failing test's output.
type operatorProc struct {
	cmd    *exec.Cmd
	log    *logLines
	exited bool
}

// start starts the next process; the previous one must have exited.
func (o *operatorProcs) start() *operatorProc {
	o.t.Helper()
	if o.cur != nil && !o.cur.exited {
		o.t.Fatal("operator started while the previous one runs")
	}
	o.starts++
	l := &logLines{notify: make(chan struct{}, 1)}
	cmd := exec.Command(o.bin, o.args...)
	cmd.Stdout, cmd.Stderr = l, l
	if err := cmd.Start(); err != nil {
		o.t.Fatal(err)
	}
	n := o.starts
	o.t.Cleanup(func() {
		if o.t.Failed() {
			o.t.Logf("operator run %d (pid %d) log, last lines:\n%s", n, cmd.Process.Pid, l.tail(40))
		}
	})
	o.cur = &operatorProc{cmd: cmd, log: l}
	return o.cur
}

// stop ends the current process, gracefully first.
func (o *operatorProcs) stop() {
	p := o.cur
	if p == nil || p.exited {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		o.t.Errorf("operator (pid %d) did not stop within 15s of SIGTERM", p.cmd.Process.Pid)
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.exited = true
}

// killAfter SIGKILLs p once its log has n lines containing match (or
// after max, when it has not written them), and reports how far it got.
func (p *operatorProc) killAfter(t *testing.T, match string, n int, max time.Duration) {
	t.Helper()
	timeout := time.After(max)
	for p.log.count(match) < n {
		select {
		case <-p.log.notify:
		case <-timeout:
			t.Logf("operator (pid %d): %d of %d %q lines after %v; killing it anyway", p.cmd.Process.Pid, p.log.count(match), n, match, max)
			p.kill(t)
			return
		}
	}
	p.kill(t)
}

// kill SIGKILLs p and waits for it to exit.
func (p *operatorProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill operator (pid %d): %v", p.cmd.Process.Pid, err)
	}
	err := p.cmd.Wait()
	p.exited = true
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		// It exited before the kill: it was not killed mid-reconcile.
		t.Fatalf("operator (pid %d) exited on its own (%v):\n%s", p.cmd.Process.Pid, err, p.log.tail(40))
	}
	t.Logf("killed operator (pid %d) after %d revisions created, %d lines of log", p.cmd.Process.Pid, p.log.count("created revision"), p.log.count(""))
}

// logLines keeps a process's output by line.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	notify  chan struct{} // gets a value after lines are added
}

func (l *logLines) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (l *logLines) count(match string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, match) {
			n++
		}
	}
	return n
}

func (l *logLines) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines[max(0, len(l.lines)-n):], "\n")
}
