package operator_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ferryserve/ferry/internal/console"
	"github.com/ferryserve/ferry/internal/console/browsertest"
	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	"github.com/ferryserve/ferry/internal/rollout"
	"github.com/ferryserve/ferry/internal/rollout/promtest"
	"github.com/ferryserve/ferry/internal/server"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestOperatorRollout runs the rollout runner inside the operator against
// a real API server and a real Prometheus: each revision is played by a
// "pod" that exports ferry serve's own request histogram (server.Metrics)
// and is scraped with the namespace and revision labels the documented
// Kubernetes scrape config gives pods; the load generator splits requests
// between the two revisions by the canaryTrafficPercent the runner wrote,
// as the cluster's routing would. A canary failing 20 % of its requests is
// rolled back; a healthy one is promoted.
func TestOperatorRollout(t *testing.T) {
	cluster := kubetest.Start(t, kubetest.Options{CRDDirs: []string{"../../config/crd"}})
	cl := newClient(t, cluster)

	type scenario struct {
		name   string
		fail   float64 // share of the canary's requests that fail
		phase  string
		reason string
	}
	scenarios := []scenario{
		{"ro-fails", 0.2, rollout.PhaseRolledBack, "error-rate"},
		{"ro-healthy", 0, rollout.PhasePromoted, "last step"},
	}
	pods := map[string]*server.Metrics{} // revision → its pod's metrics
	var targets []promtest.Target
	for _, sc := range scenarios {
		for _, n := range []string{"00001", "00002"} {
			rev := sc.name + "-predictor-" + n
			m := server.NewMetrics(nil)
			srv := httptest.NewServer(m.Handler())
			t.Cleanup(srv.Close)
			pods[rev] = m
			targets = append(targets, promtest.Target{Addr: srv.URL, Labels: map[string]string{"namespace": ns, "revision": rev}})
		}
	}
	promURL := promtest.Start(t, "ferry-pods", targets...)
	src, err := rollout.NewPrometheusSource(promURL, "ferry_request_duration_seconds")
	if err != nil {
		t.Fatal(err)
	}
	src.ErrorMatcher = `code=~"5.."`
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := l.Addr().String()
	l.Close()
	const token = "rollout-console-token"
	startOperator(t, cluster, func(c *operator.Config) {
		c.Rollout = &operator.RolloutConfig{Metrics: src, Tick: 200 * time.Millisecond}
		c.MetricsAddr = metricsAddr
		c.Console = &operator.ConsoleConfig{Token: token, Metrics: src}
	})

	for _, sc := range scenarios {
		isvc := loadYAML(t, fmt.Sprintf(`apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: %s
  namespace: %s
  annotations:
    serving.ferryserve.io/rollout-steps: "20,50"
    serving.ferryserve.io/rollout-interval: 2s
    serving.ferryserve.io/rollout-objectives: error-rate<=0.05
    serving.ferryserve.io/rollout-min-requests: "20"
spec:
  predictor:
    sklearn:
      storageUri: gs://models/%s/v1
`, sc.name, ns, sc.name))
		if err := cl.Create(t.Context(), isvc); err != nil {
			t.Fatal(err)
		}
		markAvailable(t, cl, sc.name+"-predictor-00001")
		waitCondition(t, cl, sc.name, "Ready", "True")
	}

	// Traffic: about 100 requests a second per service, split by the
	// spec's canaryTrafficPercent (as KServe's routing splits it).
	ctx, stopLoad := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopLoad()
	for _, sc := range scenarios {
		wg.Go(func() { loadPods(ctx, cl, sc.name, sc.fail, pods) })
	}

	// A new model version, applied with canaryTrafficPercent 0 as
	// docs/rollout.md asks: revision 2 is the canary the runner rolls out.
	for _, sc := range scenarios {
		update(t, cl, sc.name, func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, "gs://models/"+sc.name+"/v2", "spec", "predictor", "sklearn", "storageUri")
			_ = unstructured.SetNestedField(u.Object, int64(0), "spec", "predictor", "canaryTrafficPercent")
		})
		markAvailable(t, cl, sc.name+"-predictor-00002")
	}

	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var st rollout.State
			deadline := time.Now().Add(waitFor)
			for {
				s, ok, err := rollout.ReadState(get(t, cl, sc.name).GetAnnotations())
				if err != nil {
					t.Fatal(err)
				}
				st = s
				if ok && st.Phase != rollout.PhaseProgressing {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("rollout still %+v after %v; events:\n%s", st, waitFor, eventsOf(t, cl, sc.name))
				}
				time.Sleep(50 * time.Millisecond)
			}
			if st.Phase != sc.phase || !strings.Contains(st.Reason, sc.reason) {
				t.Fatalf("rollout ended %s (%s), want %s (%s)", st.Phase, st.Reason, sc.phase, sc.reason)
			}
			u := get(t, cl, sc.name)
			pct, has, _ := unstructured.NestedInt64(u.Object, "spec", "predictor", "canaryTrafficPercent")
			rev2 := sc.name + "-predictor-00002"
			switch sc.phase {
			case rollout.PhasePromoted:
				if has {
					t.Errorf("promoted, but canaryTrafficPercent = %d is still set", pct)
				}
				waitStatus(t, cl, sc.name, "revision 2 rolled out", func(st map[string]any) bool {
					return component(st, "predictor")["latestRolledoutRevision"] == rev2 && traffic(st)[rev2] == 100
				})
			case rollout.PhaseRolledBack:
				if !has || pct != 0 {
					t.Errorf("rolled back, but canaryTrafficPercent = %d (set %v), want 0", pct, has)
				}
				rev1 := sc.name + "-predictor-00001"
				waitStatus(t, cl, sc.name, "all traffic back on revision 1", func(st map[string]any) bool {
					return traffic(st)[rev1] == 100
				})
			}
			// The steps are Kubernetes Events on the InferenceService.
			want := map[string]string{rollout.PhasePromoted: "RolloutPromoted", rollout.PhaseRolledBack: "RolloutRolledBack"}[sc.phase]
			poll(t, "events of "+sc.name, func() (bool, error) {
				evs := eventsOf(t, cl, sc.name)
				return strings.Contains(evs, " RolloutStarted ") && strings.Contains(evs, " "+want+" "), nil
			})
		})
	}

	// The console's charts read the same Prometheus: the failing canary's
	// 5xx answers and both revisions' requests, in the ingress's format.
	poll(t, "console revision metrics", func() (bool, error) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+metricsAddr+console.RevisionMetricsPath, nil)
		if err != nil {
			return false, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil // not serving yet
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("%s: %s", resp.Status, b)
		}
		got := map[string]float64{}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, "} "); ok && strings.HasPrefix(k, console.RevisionFamily+"_count{") {
				f, _ := strconv.ParseFloat(v, 64)
				got[strings.TrimPrefix(k, console.RevisionFamily+"_count{")] = f
			}
		}
		sel := func(rev, class string) string {
			return fmt.Sprintf(`namespace="%s",revision="%s",response_code_class="%s"`, ns, rev, class)
		}
		return got[sel("ro-fails-predictor-00002", "5xx")] > 0 && got[sel("ro-fails-predictor-00001", "5xx")] == 0 &&
			got[sel("ro-fails-predictor-00001", "other")] > 0 && got[sel("ro-healthy-predictor-00002", "other")] > 0 &&
			strings.Contains(string(b), console.RevisionFamily+`_bucket{namespace="`+ns+`",revision="ro-healthy-predictor-00002",le="+Inf"}`), nil
	})
	// The page in a real browser: the services Ready, and a request rate
	// drawn from Prometheus for the promoted revision, with no error on
	// the page.
	bctx, pageErrors := browsertest.Start(t)
	if err := chromedp.Do(bctx, chromedp.Navigate(console.URL("http://"+metricsAddr, token))); err != nil {
		t.Fatal(err)
	}
	svc := `document.getElementById("svc-` + ns + `-ro-healthy")`
	browsertest.Wait(t, bctx, "ro-healthy Ready", svc+`?.querySelector(".ready")?.dataset.ready === "True"`)
	browsertest.Wait(t, bctx, "a request rate for ro-healthy's revision 2", `(() => {
		const c = `+svc+`?.querySelector('tr[data-revision="ro-healthy-predictor-00002"] .rps');
		return c !== null && Number(c.textContent) > 0;
	})()`)
	if errs := pageErrors(); len(errs) > 0 {
		t.Errorf("the console reported errors:\n%s", strings.Join(errs, "\n"))
	}

	// A request without the token is refused.
	resp, err := http.Get("http://" + metricsAddr + console.RevisionMetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revision metrics without the token: %s, want 401", resp.Status)
	}
}

// eventsOf lists the events about InferenceService name, a line each.
func eventsOf(t *testing.T, cl client.Client, name string) string {
	var evs eventsv1.EventList
	if err := cl.List(t.Context(), &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range evs.Items {
		if e.Regarding.Name == name && e.Regarding.Kind == "InferenceService" {
			fmt.Fprintf(&b, "%s %s %s\n", e.Type, e.Reason, e.Note)
		}
	}
	return b.String()
}

// loadPods plays the cluster's routing and the pods for service name until
// ctx ends: each request goes to the canary (revision 2) with the
// probability the spec's canaryTrafficPercent gives, else to revision 1,
// and is recorded in that pod's metrics as ferry serve records it; the
// canary fails the share fail of its requests with a 500.
func loadPods(ctx context.Context, cl client.Client, name string, fail float64, pods map[string]*server.Metrics) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	boom := errors.New("model failed")
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(operator.InferenceServiceGVK)
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
			continue
		}
		pct, has, _ := unstructured.NestedInt64(u.Object, "spec", "predictor", "canaryTrafficPercent")
		rev := name + "-predictor-00001"
		gen := u.GetGeneration()
		if gen > 1 && (!has || rand.Float64()*100 < float64(pct)) {
			rev = name + "-predictor-00002"
		}
		var err error
		if rev == name+"-predictor-00002" && rand.Float64() < fail {
			err = boom
		}
		pods[rev].ObserveRequest(name, "v1", err, time.Millisecond)
	}
}
