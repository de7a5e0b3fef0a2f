package operator_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// requestCounter counts the operator's API requests: writes, reads,
// watches (long-lived) and lease renewals apart.
type requestCounter struct {
	writes, reads, watches, leases atomic.Int64
}

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		switch {
		case strings.Contains(req.URL.Path, "/leases/"):
			c.leases.Add(1)
		case req.URL.Query().Get("watch") == "true":
			c.watches.Add(1)
		case req.Method == http.MethodGet:
			c.reads.Add(1)
		default:
			c.writes.Add(1)
		}
		return rt.RoundTrip(req)
	})
}

func (c *requestCounter) reset() {
	c.writes.Store(0)
	c.reads.Store(0)
	c.watches.Store(0)
	c.leases.Store(0)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// reconciles is controller-runtime's count of finished InferenceService
// reconciles in this process.
func reconciles(b *testing.B) float64 {
	mfs, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "inferenceservice" {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func rssMB() float64 { return statusMB("VmRSS:") }

// statusMB reads one of /proc/self/status's memory lines in MB: VmRSS,
// or RssAnon (RSS less the binary's pages read from its file, which the
// large test binary inflates).
func statusMB(field string) float64 { return procStatusMB(0, field) }

// procStatusMB is statusMB for process pid (0: this one).
func procStatusMB(pid int, field string) float64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkOperatorApply applies FERRY_BENCH_ISVCS InferenceServices
// (default 1000; KServe's sklearn sample shape) to a real API server with
// the operator running as `ferry operator` configures it (leader election,
// 4 workers, no client-side rate limit unless FERRY_BENCH_QPS sets one),
// plays the Deployment controller, and reports the time until every one
// is Ready, reconciles per second, the operator's API requests per
// reconcile, its requests while the cluster is idle afterwards (lease
// renewals apart), and the test process's RSS and heap (the operator's
// informer caches dominate them). Run with -benchtime=1x:
//
//	go test ./internal/operator -run '^$' -bench OperatorApply -benchtime=1x
//
// FERRY_BENCH_PROCESS=1 runs the operator as its own `ferry operator`
// process instead (built from this tree, the flags it ships with) and
// reports that process's RSS after the idle period; the reconcile and
// request counts, which are read in process, are then not reported.
func BenchmarkOperatorApply(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("FERRY_BENCH_ISVCS")); err == nil && v > 0 {
		n = v
	}
	cluster := kubetest.Start(b, kubetest.Options{CRDDirs: []string{"../../config/crd"}})
	cl := newClient(b, cluster)
	var reqs requestCounter
	counted := *cluster
	counted.Config = rest.CopyConfig(cluster.Config)
	counted.Config.Wrap(reqs.wrap)
	// FERRY_BENCH_QPS sets a client-side limit (0, the default, leaves it
	// to the operator: none); 5 is client-go's when a config sets none.
	if v, err := strconv.ParseFloat(os.Getenv("FERRY_BENCH_QPS"), 32); err == nil {
		counted.Config.QPS, counted.Config.Burst = float32(v), 10
	}
	var child *exec.Cmd
	if os.Getenv("FERRY_BENCH_PROCESS") != "" {
		child = exec.Command(buildFerry(b), "operator", "--kubeconfig", cluster.Kubeconfig, "--leader-election-namespace", ns,
			"--metrics-bind-address=0", "--health-probe-bind-address=0", "--serve-image", serveImage, "--log-level", "warn")
		child.Stdout, child.Stderr = os.Stderr, os.Stderr
		if err := child.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = child.Process.Signal(syscall.SIGTERM); _ = child.Wait() })
	} else {
		startOperator(b, &counted, func(c *operator.Config) {
			// Benchmarks hold their output until the end; errors should
			// show while it runs.
			c.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			c.MaxConcurrentReconciles = 4 // ferry operator's default
		})
	}
	ctx := b.Context()

	for i := 0; b.Loop(); i++ {
		prefix := fmt.Sprintf("b%d-", i)
		reqs.reset()
		r0 := reconciles(b)
		start := time.Now()

		// The Deployment controller: mark every revision available.
		dctx, stopDeploy := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { playDeploymentController(dctx, b, cl) })

		work := make(chan int)
		var cwg sync.WaitGroup
		for range 8 {
			cwg.Go(func() {
				for j := range work {
					u := loadYAML(b, fmt.Sprintf(`apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: %s%d, namespace: default}
spec:
  predictor:
    sklearn: {storageUri: "gs://bucket/model-%d"}
`, prefix, j, j))
					if err := cl.Create(ctx, u); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for j := range n {
			work <- j
		}
		close(work)
		cwg.Wait()
		applied := time.Since(start)

		deadline := time.Now().Add(10 * time.Minute)
		ready, lastLog := 0, time.Now()
		for ready < n {
			if time.Since(lastLog) > 10*time.Second {
				fmt.Fprintf(os.Stderr, "%v: %d of %d Ready, %.0f reconciles, %d writes\n", time.Since(start).Round(time.Second), ready, n, reconciles(b)-r0, reqs.writes.Load())
				lastLog = time.Now()
			}
			if time.Now().After(deadline) {
				dumpNotReady(b, cl, prefix)
				b.Fatalf("%d of %d Ready after 10 min", ready, n)
			}
			time.Sleep(500 * time.Millisecond)
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(operator.InferenceServiceGVK.GroupVersion().WithKind("InferenceServiceList"))
			if err := cl.List(ctx, list, client.InNamespace(ns)); err != nil {
				b.Fatal(err)
			}
			ready = 0
			for _, u := range list.Items {
				st, _ := u.Object["status"].(map[string]any)
				if strings.HasPrefix(u.GetName(), prefix) && conditionStatus(st, "Ready") == "True" {
					ready++
				}
			}
		}
		elapsed := time.Since(start)
		stopDeploy()
		wg.Wait()
		rec := reconciles(b) - r0
		w, r := reqs.writes.Load(), reqs.reads.Load()

		// Idle: nothing changes for 10 s.
		reqs.reset()
		r1 := reconciles(b)
		time.Sleep(10 * time.Second)
		idle := reqs.writes.Load() + reqs.reads.Load() + reqs.watches.Load()
		idleRec := reconciles(b) - r1

		b.ReportMetric(float64(n), "isvcs")
		b.ReportMetric(applied.Seconds(), "s-applied")
		b.ReportMetric(elapsed.Seconds(), "s-to-all-ready")
		if child != nil {
			b.ReportMetric(procStatusMB(child.Process.Pid, "VmRSS:"), "operator-RSS-MB")
			b.ReportMetric(procStatusMB(child.Process.Pid, "RssAnon:"), "operator-anon-RSS-MB")
			continue
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(rec/elapsed.Seconds(), "reconciles/s")
		b.ReportMetric(rec/float64(n), "reconciles/isvc")
		b.ReportMetric(float64(w)/rec, "writes/reconcile")
		b.ReportMetric(float64(r)/rec, "reads/reconcile")
		b.ReportMetric(float64(idle)/10, "idle-requests/s")
		b.ReportMetric(idleRec/10, "idle-reconciles/s")
		b.ReportMetric(rssMB(), "RSS-MB")
		b.ReportMetric(statusMB("RssAnon:"), "anon-RSS-MB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	}
}

// playDeploymentController marks every Deployment available until ctx
// ends, as the Deployment controller would once its pods are ready.
func playDeploymentController(ctx context.Context, b *testing.B, cl client.Client) {
	done := map[string]bool{}
	for ctx.Err() == nil {
		var deps appsv1.DeploymentList
		if err := cl.List(ctx, &deps, client.InNamespace(ns)); err != nil {
			if ctx.Err() == nil {
				b.Error(err)
			}
			return
		}
		for i := range deps.Items {
			d := &deps.Items[i]
			if done[d.Name] {
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
				done[d.Name] = true
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// dumpNotReady prints a few InferenceServices that are not Ready, with
// their status and their revision's.
func dumpNotReady(b *testing.B, cl client.Client, prefix string) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(operator.InferenceServiceGVK.GroupVersion().WithKind("InferenceServiceList"))
	if err := cl.List(b.Context(), list, client.InNamespace(ns)); err != nil {
		b.Fatal(err)
	}
	shown := 0
	for _, u := range list.Items {
		st, _ := u.Object["status"].(map[string]any)
		if !strings.HasPrefix(u.GetName(), prefix) || conditionStatus(st, "Ready") == "True" || shown == 5 {
			continue
		}
		shown++
		d := &appsv1.Deployment{}
		err := cl.Get(b.Context(), client.ObjectKey{Namespace: ns, Name: u.GetName() + "-predictor-00001"}, d)
		fmt.Fprintf(os.Stderr, "not ready: %s gen %d status %v\n  revision: err %v status %+v\n", u.GetName(), u.GetGeneration(), st, err, d.Status)
	}
}
