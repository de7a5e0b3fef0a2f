package operator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/console"
	"github.com/ferryserve/ferry/internal/console/browsertest"
	"github.com/ferryserve/ferry/internal/mgmt"
	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	"github.com/ferryserve/ferry/internal/rollout"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestOperatorConsole serves the web console from the operator's metrics
// address against a real API server and checks each route the page calls:
// the token guard, services with status, revisions from Deployments (and
// from Knative Revisions in Serverless mode),
// replicas from pods, events, a rollout paused through the API (the
// annotation lands on the InferenceService), and a test request forwarded
// to the service's cluster-local address (here a loopback predictor).
func TestOperatorConsole(t *testing.T) {
	// Knative's Service and Revision CRDs (test stand-ins) too, for a
	// service in Serverless mode.
	cluster := kubetest.Start(t, kubetest.Options{CRDDirs: []string{"../../config/crd", "testdata/knative"}})
	cl := newClient(t, cluster)
	ctx := t.Context()

	// The "cluster network": every test request reaches this predictor,
	// which records the URL it was sent to.
	var mu sync.Mutex
	var asked []string
	var refuseIndex atomic.Bool
	pred := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuseIndex.Load() {
			// As ferry serve answers on a pod's address by default.
			switch {
			case r.URL.Path == "/v2/repository/index":
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `{"error":"the model repository API is off on this server"}`)
				return
			case r.URL.Path == "/v2/models/console-iris/ready":
				fmt.Fprint(w, `{"name":"console-iris","ready":true}`)
				return
			case strings.HasSuffix(r.URL.Path, "/ready"):
				w.WriteHeader(http.StatusNotFound)
				return
			}
		}
		if r.URL.Path == "/v2/repository/index" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `[{"name":"console-iris","state":"READY","reason":""},{"name":"other","state":"FAILED","reason":"at %s"}]`, r.Host)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		asked = append(asked, r.Host+r.URL.Path+" "+string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"predictions":[1]}`)
	}))
	t.Cleanup(pred.Close)
	predAddr := strings.TrimPrefix(pred.URL, "http://")
	dial := &net.Dialer{}
	transport := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial.DialContext(ctx, network, predAddr)
	}}
	t.Cleanup(transport.CloseIdleConnections)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := l.Addr().String()
	l.Close()
	const token = "console-test-token"
	startOperator(t, cluster, func(c *operator.Config) {
		c.MetricsAddr = metricsAddr
		c.Console = &operator.ConsoleConfig{Token: token, Transport: transport}
	})
	base := "http://" + metricsAddr

	isvc := loadYAML(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: console-iris
  namespace: `+ns+`
  annotations:
    serving.ferryserve.io/rollout-steps: "20,50"
spec:
  predictor:
    sklearn:
      storageUri: gs://bucket/iris
`)
	if err := cl.Create(ctx, isvc); err != nil {
		t.Fatal(err)
	}
	rev := "console-iris-predictor-00001"
	markAvailable(t, cl, rev)
	waitCondition(t, cl, "console-iris", "Ready", "True")

	call := func(method, path, tok, body string, hdr ...string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	svcPath := "/api/v1/namespaces/" + ns + "/inferenceservices/console-iris"

	// The page itself needs no token; its API does, from this origin only.
	if code, b := call("GET", "/ui/", "", ""); code != 200 || !strings.Contains(string(b), "<html") {
		t.Fatalf("GET /ui/ = %d %.100s", code, b)
	}
	if code, _ := call("GET", "/metrics", "", ""); code != 200 {
		t.Errorf("GET /metrics = %d: the console must not take the metrics endpoint", code)
	}
	for _, tok := range []string{"", "wrong"} {
		if code, _ := call("GET", "/api/v1/inferenceservices", tok, ""); code != http.StatusUnauthorized {
			t.Errorf("list with token %q = %d, want 401", tok, code)
		}
	}
	if code, _ := call("GET", "/api/v1/inferenceservices", token, "", "Origin", "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("cross-origin list = %d, want 403", code)
	}

	var list mgmt.List[api.InferenceService]
	decodeBody(t, "list", 200, &list)(call("GET", "/api/v1/inferenceservices", token, ""))
	found := false
	for _, s := range list.Items {
		if s.Metadata.Name == "console-iris" {
			found = true
			if s.Status == nil || s.Status.Components[api.ComponentPredictor].LatestReadyRevision != rev {
				t.Errorf("listed status = %+v, want %s ready", s.Status, rev)
			}
		}
	}
	if !found {
		t.Fatalf("console-iris not listed: %+v", list.Items)
	}
	if code, _ := call("GET", "/api/v1/namespaces/"+ns+"/inferenceservices/nope/revisions", token, ""); code != 404 {
		t.Errorf("revisions of a missing service = %d, want 404", code)
	}

	var revs mgmt.List[mgmt.Revision]
	decodeBody(t, "revisions", 200, &revs)(call("GET", svcPath+"/revisions", token, ""))
	if len(revs.Items) != 1 || revs.Items[0].Name != rev || revs.Items[0].Number != 1 || revs.Items[0].Component != "predictor" || revs.Items[0].Hash == "" {
		t.Errorf("revisions = %+v, want %s (number 1, predictor, a hash)", revs.Items, rev)
	}

	// A node whose "kubelet" is a loopback HTTPS server answering the
	// API server's log requests, as a kubelet does.
	var kubeletAsked []string
	kubelet := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		kubeletAsked = append(kubeletAsked, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		fmt.Fprint(w, "line one\nline two\n")
	}))
	t.Cleanup(kubelet.Close)
	kport, _ := strconv.Atoi(kubelet.URL[strings.LastIndexByte(kubelet.URL, ':')+1:])
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "console-node"}}
	if err := cl.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	node.Status = corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(kport)}}}
	if err := cl.Status().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Delete(context.Background(), node) })

	// A pod of the revision on that node, as the Deployment controller
	// and the scheduler would make it (nothing runs it: it stays Pending).
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: rev + "-abc", Namespace: ns,
		Labels: map[string]string{operator.LabelInferenceService: "console-iris", operator.LabelRevision: rev}},
		Spec: corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "kserve-container", Image: serveImage}}}}
	// No service account controller runs: make the account the pod uses.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
	if err := cl.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if err := cl.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	var reps mgmt.Replicas
	decodeBody(t, "replicas", 200, &reps)(call("GET", svcPath+"/replicas", token, ""))
	if got := reps.Revisions[rev]; len(got) != 1 || got[0].Name != pod.Name || got[0].Phase != "Pending" || reps.Desired[rev] != 1 {
		t.Errorf("replicas = %+v, want pod %s Pending of 1 desired", reps, pod.Name)
	}

	// Ready with an IP: the Models panel asks the pod for its repository.
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.1.2.3",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	if err := cl.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	var models mgmt.Models
	decodeBody(t, "models", 200, &models)(call("GET", svcPath+"/models", token, ""))
	if idx := models.Replicas[pod.Name]; len(models.Replicas) != 1 || idx.Revision != rev || idx.Error != "" || len(idx.Models) != 2 ||
		idx.Models[0].Name != "console-iris" || idx.Models[0].State != "READY" || idx.Models[1].Reason != "at 10.1.2.3:8080" {
		t.Errorf("models = %+v, want pod %s's index, asked at its IP and port 8080", models, pod.Name)
	}
	// A pod whose repository API is off (ferry serve's default off
	// loopback): the panel asks whether each model the pod should serve is
	// ready, the service's own and its TrainedModels'.
	tm := loadYAML(t, `apiVersion: serving.kserve.io/v1alpha1
kind: TrainedModel
metadata: {name: console-tm, namespace: `+ns+`}
spec:
  inferenceService: console-iris
  model: {framework: sklearn, storageUri: gs://bucket/tm, memory: 1Mi}
`)
	if err := cl.Create(ctx, tm); err != nil {
		t.Fatal(err)
	}
	refuseIndex.Store(true)
	poll(t, "the models panel from ready checks", func() (bool, error) {
		models = mgmt.Models{}
		decodeBody(t, "models", 200, &models)(call("GET", svcPath+"/models", token, ""))
		idx := models.Replicas[pod.Name]
		return idx.Error == "" && len(idx.Models) == 2, nil
	})
	if idx := models.Replicas[pod.Name]; idx.Revision != rev || idx.Models[0] != (mgmt.RepositoryModel{Name: "console-iris", State: "READY"}) ||
		idx.Models[1].Name != "console-tm" || idx.Models[1].State != "UNAVAILABLE" || idx.Models[1].Reason == "" {
		t.Errorf("models = %+v, want console-iris READY and console-tm UNAVAILABLE with a reason", models)
	}
	refuseIndex.Store(false)

	// An event about the service, as kubectl describe shows it.
	var cur = get(t, cl, "console-iris")
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "console-iris.1", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{APIVersion: cur.GetAPIVersion(), Kind: cur.GetKind(), Name: cur.GetName(), Namespace: ns, UID: cur.GetUID()},
		Type:           corev1.EventTypeWarning, Reason: "TestReason", Message: "seen by the console", Source: corev1.EventSource{Component: "test"},
		FirstTimestamp: metav1.NewTime(time.Now()), LastTimestamp: metav1.NewTime(time.Now()), Count: 1}
	if err := cl.Create(ctx, ev); err != nil {
		t.Fatal(err)
	}
	var evs mgmt.List[mgmt.Event]
	decodeBody(t, "events", 200, &evs)(call("GET", svcPath+"/events", token, ""))
	if n := len(evs.Items); n == 0 || evs.Items[n-1].Reason != "TestReason" || evs.Items[n-1].Message != "seen by the console" {
		t.Errorf("events = %+v, want the TestReason event last", evs.Items)
	}

	// Rollout: status, then pause from the page's button.
	var ro rollout.Status
	decodeBody(t, "rollout", 200, &ro)(call("GET", svcPath+"/rollout", token, ""))
	if ro.Policy[rollout.AnnotationSteps] != "20,50" || ro.Paused {
		t.Errorf("rollout status = %+v, want policy 20,50, not paused", ro)
	}
	if code, b := call("POST", svcPath+"/rollout/pause", token, "{}"); code != 200 {
		t.Fatalf("pause = %d %s", code, b)
	}
	if got := get(t, cl, "console-iris").GetAnnotations()[rollout.AnnotationPaused]; got != "true" {
		t.Errorf("after pause the annotation %s = %q, want true", rollout.AnnotationPaused, got)
	}
	if code, _ := call("POST", svcPath+"/rollout/explode", token, "{}"); code != 404 {
		t.Errorf("unknown rollout action = %d, want 404", code)
	}

	// A test request goes to the service's cluster-local address.
	code, b := call("POST", svcPath+"/infer?protocol=v1", token, `{"instances":[[1,2,3,4]]}`)
	if code != 200 || string(b) != `{"predictions":[1]}` {
		t.Fatalf("infer = %d %s", code, b)
	}
	mu.Lock()
	got := append([]string(nil), asked...)
	mu.Unlock()
	want := fmt.Sprintf("console-iris-predictor.%s.svc.cluster.local/v1/models/console-iris:predict {\"instances\":[[1,2,3,4]]}", ns)
	if len(got) != 1 || got[0] != want {
		t.Errorf("predictor was asked %q, want %q", got, want)
	}
	if code, _ := call("POST", svcPath+"/infer?protocol=v3", token, `{}`); code != 400 {
		t.Errorf("infer with protocol v3 = %d, want 400", code)
	}
	// Logs come through the API server's pods/log from the node's kubelet.
	var logs mgmt.Logs
	decodeBody(t, "logs", 200, &logs)(call("GET", svcPath+"/logs?"+url.Values{"component": {"predictor"}, "tail": {"5"}}.Encode(), token, ""))
	if got := logs.Replicas[pod.Name]; len(logs.Replicas) != 1 || !slices.Equal(got, []string{"line one", "line two"}) {
		t.Errorf("logs = %+v, want pod %s's two lines", logs.Replicas, pod.Name)
	}
	mu.Lock()
	kasked := slices.Clone(kubeletAsked)
	mu.Unlock()
	if len(kasked) != 1 || !strings.HasPrefix(kasked[0], "/containerLogs/"+ns+"/"+pod.Name+"/kserve-container?") || !strings.Contains(kasked[0], "tailLines=5") {
		t.Errorf("the kubelet was asked %q, want kserve-container's last 5 lines of %s", kasked, pod.Name)
	}
	var tlogs mgmt.Logs
	decodeBody(t, "transformer logs", 200, &tlogs)(call("GET", svcPath+"/logs?component=transformer", token, ""))
	if len(tlogs.Replicas) != 0 {
		t.Errorf("transformer logs = %+v, want none (the service has no transformer)", tlogs.Replicas)
	}

	// Serverless mode: the revisions are Knative's. Knative's controller
	// would make a Revision from the Knative Service's template (named
	// and labelled as the template is); the test does, with the replica
	// count Knative's autoscaler chose.
	kn := loadYAML(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: console-kn
  namespace: `+ns+`
  annotations:
    serving.kserve.io/deploymentMode: Serverless
spec:
  predictor:
    sklearn:
      storageUri: gs://bucket/iris
`)
	if err := cl.Create(ctx, kn); err != nil {
		t.Fatal(err)
	}
	ksvc := &unstructured.Unstructured{}
	ksvc.SetGroupVersionKind(operator.KnativeServiceGVK)
	poll(t, "the Knative Service of console-kn", func() (bool, error) {
		err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "console-kn-predictor"}, ksvc)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	tmeta, _, _ := unstructured.NestedMap(ksvc.Object, "spec", "template", "metadata")
	knRev := &unstructured.Unstructured{Object: map[string]any{"metadata": tmeta}}
	knRev.SetGroupVersionKind(schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Revision"})
	knRev.SetNamespace(ns)
	if knRev.GetName() != "console-kn-predictor-00001" {
		t.Fatalf("template name %q, want console-kn-predictor-00001", knRev.GetName())
	}
	if err := cl.Create(ctx, knRev); err != nil {
		t.Fatal(err)
	}
	knRev.Object["status"] = map[string]any{"desiredReplicas": int64(2), "actualReplicas": int64(2)}
	if err := cl.Status().Update(ctx, knRev); err != nil {
		t.Fatal(err)
	}
	knPath := "/api/v1/namespaces/" + ns + "/inferenceservices/console-kn"
	decodeBody(t, "knative revisions", 200, &revs)(call("GET", knPath+"/revisions", token, ""))
	if len(revs.Items) != 1 || revs.Items[0].Name != "console-kn-predictor-00001" || revs.Items[0].Number != 1 ||
		revs.Items[0].Component != "predictor" || revs.Items[0].Hash == "" || revs.Items[0].Hash != knRev.GetAnnotations()[operator.AnnotationSpecHash] {
		t.Errorf("knative revisions = %+v, want console-kn-predictor-00001 (number 1, predictor, the template's hash)", revs.Items)
	}
	var knReps mgmt.Replicas
	decodeBody(t, "knative replicas", 200, &knReps)(call("GET", knPath+"/replicas", token, ""))
	if knReps.Desired["console-kn-predictor-00001"] != 2 {
		t.Errorf("knative replicas = %+v, want 2 desired (the Revision's status)", knReps)
	}
	// The raw-mode service's list is untouched by Knative's revisions.
	decodeBody(t, "revisions", 200, &revs)(call("GET", svcPath+"/revisions", token, ""))
	if len(revs.Items) != 1 || revs.Items[0].Name != rev {
		t.Errorf("revisions of console-iris with Knative installed = %+v, want only %s", revs.Items, rev)
	}

	// The same in a real browser: the page lists the service, Resume
	// lifts the pause on the InferenceService, the Logs view shows the
	// pod's lines, and the test-request form answers with the
	// predictor's prediction; the page reports no error.
	bctx, pageErrors := browsertest.Start(t)
	if err := chromedp.Do(bctx, chromedp.Navigate(console.URL(base, token))); err != nil {
		t.Fatal(err)
	}
	const svc = `#svc-` + ns + `-console-iris`
	click := func(what, sel string) {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("click %s (%s): %v", what, sel, err)
		}
	}
	browsertest.Wait(t, bctx, "the paused service", `(() => {
		const b = document.querySelector("`+svc+` button[data-action='resume']");
		return b !== null && !b.disabled;
	})()`)
	click("Resume", svc+` button[data-action="resume"]`)
	poll(t, "the pause lifted from the page", func() (bool, error) {
		return get(t, cl, "console-iris").GetAnnotations()[rollout.AnnotationPaused] != "true", nil
	})
	click("Logs", svc+` details.logs > summary`)
	browsertest.Wait(t, bctx, "the pod's lines in the Logs view", `(document.querySelector("`+svc+` .replica-log[data-replica='`+pod.Name+`'] pre")?.textContent || "").includes("line two")`)
	click("Test request", svc+` details.try > summary`)
	browsertest.Wait(t, bctx, "the example body", `document.querySelector("`+svc+` textarea.body").value.includes("instances")`)
	click("Send", svc+` button.send`)
	browsertest.Wait(t, bctx, "the prediction in the form", `(() => {
		const s = document.querySelector("`+svc+` .result-status")?.textContent || "";
		const b = document.querySelector("`+svc+` .result-body")?.textContent || "";
		return s.startsWith("200 ") && JSON.parse(b).predictions?.[0] === 1;
	})()`)
	if errs := pageErrors(); len(errs) > 0 {
		t.Errorf("the console reported errors:\n%s", strings.Join(errs, "\n"))
	}
	_ = client.IgnoreNotFound(cl.Delete(ctx, pod))
}

// decodeBody checks an answer's status and decodes its JSON into v.
func decodeBody(t *testing.T, what string, want int, v any) func(int, []byte) {
	return func(code int, b []byte) {
		t.Helper()
		if code != want {
			t.Fatalf("%s: status %d, want %d: %s", what, code, want, b)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v: %s", what, err, b)
		}
	}
}
