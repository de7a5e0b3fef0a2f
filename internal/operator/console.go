package operator

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/apiauth"
	"github.com/ferryserve/ferry/internal/console"
	"github.com/ferryserve/ferry/internal/mgmt"
	"github.com/ferryserve/ferry/internal/rollout"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ConsoleConfig serves Ferry's web console (internal/console, the page
// `ferry up` serves) on the operator's metrics address, over the cluster:
// services, revisions (Deployments, or Knative Revisions in Serverless
// mode), replicas (pods), events, rollouts
// with their pause/resume/abort buttons, TrainedModels and the test
// request form, which the operator forwards to the service's cluster-local
// address.
type ConsoleConfig struct {
	// Token is the bearer token every API call of the page must carry;
	// the static files need none. Empty turns the console off.
	Token string
	// Transport carries test requests to the services (in-cluster DNS;
	// http.DefaultTransport when nil). Tests point it at loopback.
	Transport http.RoundTripper
	// Metrics, if set, gives the page's charts each revision's request
	// counters (from the Prometheus of --prometheus-url); without it the
	// charts stay empty.
	Metrics RevisionTotaler
}

// RevisionTotaler reads each revision's cumulative request counters, as
// rollout.PrometheusSource does from the pods' histograms.
type RevisionTotaler interface {
	Totals(ctx context.Context) ([]rollout.RevisionTotals, error)
}

// consoleMaxBody bounds a test request's body and its answer.
const consoleMaxBody = 8 << 20

// consoleAPI answers the management API routes the console calls, from
// the operator's informer cache (InferenceServices, TrainedModels,
// Deployments) and, for what the operator does not cache, straight from
// the API server (pods and events, read only while a page is open).
type consoleAPI struct {
	cache   client.Client
	live    client.Reader
	client  *http.Client
	metrics RevisionTotaler
	// podLogs reads a pod's log through the API server (nil: no logs).
	podLogs func(ctx context.Context, ns, pod string, opts *corev1.PodLogOptions) ([]byte, error)
	log     *slog.Logger
	// isvcs and tms are the kinds the API server serves, known once the
	// manager has looked (set before the manager starts).
	isvcs, tms atomic.Pointer[[]schema.GroupVersionKind]
}

// consoleHandlers returns the handlers to mount on the metrics server and
// the consoleAPI whose kinds the caller sets once discovered.
func newConsole(c ConsoleConfig, log *slog.Logger) (*consoleAPI, map[string]http.Handler) {
	a := &consoleAPI{log: log, metrics: c.Metrics, client: &http.Client{Transport: cmp.Or[http.RoundTripper](c.Transport, http.DefaultTransport), Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	mux := http.NewServeMux()
	console.Register(mux)
	mux.HandleFunc("GET /api/v1/inferenceservices", a.listServices)
	mux.HandleFunc("GET /api/v1/trainedmodels", a.listTrainedModels)
	mux.HandleFunc("GET "+console.RevisionMetricsPath, a.revisionMetrics)
	const one = "/api/v1/namespaces/{ns}/inferenceservices/{name}"
	mux.HandleFunc("GET "+one, a.getService)
	mux.HandleFunc("GET "+one+"/revisions", a.revisions)
	mux.HandleFunc("GET "+one+"/replicas", a.replicas)
	mux.HandleFunc("GET "+one+"/events", a.events)
	mux.HandleFunc("GET "+one+"/logs", a.logs)
	mux.HandleFunc("GET "+one+"/models", a.models)
	mux.HandleFunc("GET "+one+"/rollout", a.rolloutStatus)
	mux.HandleFunc("POST "+one+"/rollout/{action}", a.rolloutControl)
	mux.HandleFunc("POST "+one+"/infer", a.infer)
	// The metrics address is reachable from the cluster's network: every
	// API call needs the token, and cross-origin calls are refused.
	h := apiauth.Guard{Token: c.Token, Open: console.OpenRoutes(), MaxBody: consoleMaxBody}.Wrap(mux)
	return a, map[string]http.Handler{console.Path: h, console.Path + "/": h, "/api/": h}
}

func (a *consoleAPI) kinds(p *atomic.Pointer[[]schema.GroupVersionKind]) []schema.GroupVersionKind {
	if k := p.Load(); k != nil {
		return *k
	}
	return nil
}

func writeConsoleJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeConsoleErr(w http.ResponseWriter, code int, err error) {
	writeConsoleJSON(w, code, mgmt.ErrorBody{Error: err.Error()})
}

// errNoService: the named InferenceService does not exist (in either
// group).
var errNoService = errors.New("inference service not found")

// services lists the InferenceServices of every served group, decoded,
// with their status; an object api cannot decode is shown with its
// metadata alone, so the page still lists it.
func (a *consoleAPI) services(ctx context.Context, opts ...client.ListOption) ([]*api.InferenceService, error) {
	var out []*api.InferenceService
	for _, gvk := range a.kinds(&a.isvcs) {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := a.cache.List(ctx, list, opts...); err != nil {
			return nil, fmt.Errorf("list %s: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			out = append(out, decodeForConsole(&list.Items[i]))
		}
	}
	return out, nil
}

func decodeForConsole(u *unstructured.Unstructured) *api.InferenceService {
	isvc, st, err := decode(u)
	if err != nil {
		isvc = &api.InferenceService{}
		isvc.APIVersion, isvc.Kind = u.GetAPIVersion(), u.GetKind()
		isvc.Metadata.Name, isvc.Metadata.Namespace = u.GetName(), u.GetNamespace()
	}
	isvc.Status = &st
	return isvc
}

// service finds one InferenceService (serving.kserve.io first) and its
// object.
func (a *consoleAPI) service(ctx context.Context, ns, name string) (*api.InferenceService, *unstructured.Unstructured, error) {
	for _, gvk := range a.kinds(&a.isvcs) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		err := a.cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return decodeForConsole(u), u, nil
	}
	return nil, nil, fmt.Errorf("%w: %s/%s", errNoService, ns, name)
}

// serviceOr writes the error of a lookup; ok is false when it did.
func (a *consoleAPI) serviceOr(w http.ResponseWriter, r *http.Request) (*api.InferenceService, *unstructured.Unstructured, bool) {
	isvc, u, err := a.service(r.Context(), r.PathValue("ns"), r.PathValue("name"))
	switch {
	case errors.Is(err, errNoService):
		writeConsoleErr(w, http.StatusNotFound, err)
		return nil, nil, false
	case err != nil:
		writeConsoleErr(w, http.StatusInternalServerError, err)
		return nil, nil, false
	}
	return isvc, u, true
}

func (a *consoleAPI) listServices(w http.ResponseWriter, r *http.Request) {
	var opts []client.ListOption
	if ns := r.URL.Query().Get("namespace"); ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	items, err := a.services(r.Context(), opts...)
	if err != nil {
		writeConsoleErr(w, http.StatusInternalServerError, err)
		return
	}
	writeConsoleJSON(w, http.StatusOK, mgmt.List[*api.InferenceService]{Items: items})
}

func (a *consoleAPI) getService(w http.ResponseWriter, r *http.Request) {
	if isvc, _, ok := a.serviceOr(w, r); ok {
		writeConsoleJSON(w, http.StatusOK, isvc)
	}
}

func (a *consoleAPI) listTrainedModels(w http.ResponseWriter, r *http.Request) {
	items := []*api.TrainedModel{}
	for _, gvk := range a.kinds(&a.tms) {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := a.cache.List(r.Context(), list); err != nil {
			writeConsoleErr(w, http.StatusInternalServerError, fmt.Errorf("list %s: %w", gvk.Kind, err))
			return
		}
		for i := range list.Items {
			tm, _ := decodeTrainedModel(&list.Items[i])
			tm.Metadata.Namespace = list.Items[i].GetNamespace()
			items = append(items, tm)
		}
	}
	writeConsoleJSON(w, http.StatusOK, mgmt.List[*api.TrainedModel]{Items: items})
}

// deployments are the service's revisions in raw deployment mode.
func (a *consoleAPI) deployments(ctx context.Context, ns, name string) ([]appsv1.Deployment, error) {
	var list appsv1.DeploymentList
	if err := a.cache.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{LabelInferenceService: name}); err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	return list.Items, nil
}

// knativeRevisionListGVK lists Knative Serving's Revisions: in Serverless
// mode a service's revisions are Knative's, named as the operator names
// them (the template's name) and labelled with the template's labels.
var knativeRevisionListGVK = schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "RevisionList"}

// knativeRevisions are the service's Knative Revisions, read from the API
// server (the operator does not cache them); none where Knative Serving is
// not installed.
func (a *consoleAPI) knativeRevisions(ctx context.Context, ns, name string) ([]unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(knativeRevisionListGVK)
	err := a.live.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{LabelInferenceService: name})
	if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list knative revisions: %w", err)
	}
	return list.Items, nil
}

// revisionOf describes a revision from the object that runs it: a raw
// mode Deployment or a Knative Revision, both carrying the revision's
// labels and its spec hash.
func revisionOf(o metav1.Object) (mgmt.Revision, bool) {
	rev := o.GetLabels()[LabelRevision]
	if rev == "" {
		return mgmt.Revision{}, false
	}
	n, _ := strconv.Atoi(rev[strings.LastIndexByte(rev, '-')+1:])
	return mgmt.Revision{Name: rev, Component: o.GetLabels()[LabelComponent], Number: n,
		Hash: o.GetAnnotations()[AnnotationSpecHash], Created: o.GetCreationTimestamp().Time}, true
}

func (a *consoleAPI) revisions(w http.ResponseWriter, r *http.Request) {
	_, _, ok := a.serviceOr(w, r)
	if !ok {
		return
	}
	ns, name := r.PathValue("ns"), r.PathValue("name")
	ds, err := a.deployments(r.Context(), ns, name)
	if err != nil {
		writeConsoleErr(w, http.StatusInternalServerError, err)
		return
	}
	ks, err := a.knativeRevisions(r.Context(), ns, name)
	if err != nil {
		writeConsoleErr(w, http.StatusInternalServerError, err)
		return
	}
	items := []mgmt.Revision{}
	seen := map[string]bool{}
	add := func(o metav1.Object) {
		if rev, ok := revisionOf(o); ok && !seen[rev.Name] {
			seen[rev.Name] = true
			items = append(items, rev)
		}
	}
	// Knative's own Deployment of a revision carries the revision's labels
	// too: the Revision, listed first, stands for both.
	for i := range ks {
		add(&ks[i])
	}
	for i := range ds {
		add(&ds[i])
	}
	slices.SortFunc(items, func(x, y mgmt.Revision) int { return strings.Compare(x.Name, y.Name) })
	writeConsoleJSON(w, http.StatusOK, mgmt.List[mgmt.Revision]{Items: items})
}

// replicas are the service's pods by revision (read from the API server:
// the operator does not watch pods) and each revision's desired count.
func (a *consoleAPI) replicas(w http.ResponseWriter, r *http.Request) {
	_, _, ok := a.serviceOr(w, r)
	if !ok {
		return
	}
	ns, name := r.PathValue("ns"), r.PathValue("name")
	out := mgmt.Replicas{Revisions: map[string][]mgmt.Replica{}, Desired: map[string]int{}, Panic: map[string]bool{}}
	ds, err := a.deployments(r.Context(), ns, name)
	if err != nil {
		writeConsoleErr(w, http.StatusInternalServerError, err)
		return
	}
	for _, d := range ds {
		if rev := d.Labels[LabelRevision]; rev != "" && d.Spec.Replicas != nil {
			out.Desired[rev] = int(*d.Spec.Replicas)
		}
	}
	// In Serverless mode Knative's autoscaler decides the count, and the
	// Revision reports it (0 when scaled to zero).
	ks, err := a.knativeRevisions(r.Context(), ns, name)
	if err != nil {
		writeConsoleErr(w, http.StatusInternalServerError, err)
		return
	}
	for _, k := range ks {
		rev := k.GetLabels()[LabelRevision]
		if n, found, _ := unstructured.NestedInt64(k.Object, "status", "desiredReplicas"); rev != "" && found {
			out.Desired[rev] = int(n)
		}
	}
	pods, ok := a.pods(w, r, ns, name)
	if !ok {
		return
	}
	for _, p := range pods {
		rev := p.Labels[LabelRevision]
		if rev == "" {
			continue
		}
		out.Revisions[rev] = append(out.Revisions[rev], replicaOf(&p))
	}
	writeConsoleJSON(w, http.StatusOK, out)
}

// replicaOf describes a pod as the console shows a replica: Ready once
// Kubernetes says so, else the pod's phase (Pending, Running, Failed...).
func replicaOf(p *corev1.Pod) mgmt.Replica {
	rep := mgmt.Replica{Name: p.Name, Phase: string(p.Status.Phase), HTTPPort: httpPort}
	if p.DeletionTimestamp != nil {
		rep.Phase = "Terminating"
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
			rep.Phase = "Ready"
		}
	}
	if p.Status.StartTime != nil {
		rep.Since = p.Status.StartTime.Time
	}
	for _, cs := range p.Status.ContainerStatuses {
		rep.Restarts += int(cs.RestartCount)
		if t := cs.LastTerminationState.Terminated; t != nil {
			rep.LastExit = fmt.Sprintf("%s: %s (exit %d)", cs.Name, t.Reason, t.ExitCode)
		}
	}
	return rep
}

// consoleEvents is how many of a service's newest events are shown.
const consoleEvents = 50

func (a *consoleAPI) events(w http.ResponseWriter, r *http.Request) {
	_, u, ok := a.serviceOr(w, r)
	if !ok {
		return
	}
	var list corev1.EventList
	sel := fields.Set{"involvedObject.name": u.GetName(), "involvedObject.kind": u.GetKind()}.AsSelector()
	if err := a.live.List(r.Context(), &list, client.InNamespace(u.GetNamespace()), client.MatchingFieldsSelector{Selector: sel}); err != nil {
		writeConsoleErr(w, http.StatusInternalServerError, fmt.Errorf("list events: %w", err))
		return
	}
	items := []mgmt.Event{}
	for _, e := range list.Items {
		if e.InvolvedObject.UID != "" && e.InvolvedObject.UID != u.GetUID() {
			continue // a deleted namesake's
		}
		t := e.EventTime.Time
		for _, alt := range []time.Time{e.LastTimestamp.Time, e.FirstTimestamp.Time, e.CreationTimestamp.Time} {
			if t.IsZero() {
				t = alt
			}
		}
		msg := e.Message
		if e.Count > 1 {
			msg = fmt.Sprintf("%s (×%d)", msg, e.Count)
		}
		items = append(items, mgmt.Event{Time: t, Type: e.Type, Reason: e.Reason, Message: msg})
	}
	slices.SortStableFunc(items, func(x, y mgmt.Event) int { return x.Time.Compare(y.Time) })
	if len(items) > consoleEvents {
		items = items[len(items)-consoleEvents:]
	}
	writeConsoleJSON(w, http.StatusOK, mgmt.List[mgmt.Event]{Items: items})
}

// Bounds of a logs request: pods read, lines, bytes and time per pod.
const (
	logsMaxPods  = 16
	logsMaxTail  = 10_000
	logsMaxBytes = 1 << 20
	logsTimeout  = 5 * time.Second // per pod: a kubelet that hangs costs this much
)

// logs reads the last lines of each pod of a component (?component=,
// default predictor; ?tail=, default 100) through the API server's
// pods/log subresource, as kubectl logs does: the main container
// (kserve-container) of at most logsMaxPods pods, each read bounded.
func (a *consoleAPI) logs(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := a.serviceOr(w, r); !ok {
		return
	}
	ns, name := r.PathValue("ns"), r.PathValue("name")
	comp := cmp.Or(r.URL.Query().Get("component"), api.ComponentPredictor)
	tail, _ := strconv.ParseInt(r.URL.Query().Get("tail"), 10, 64)
	if tail <= 0 {
		tail = 100
	}
	tail = min(tail, logsMaxTail)
	if a.podLogs == nil {
		writeConsoleErr(w, http.StatusNotImplemented, errors.New("pod logs are not available to this console"))
		return
	}
	pods, ok := a.pods(w, r, ns, name)
	if !ok {
		return
	}
	prefix := ServiceName(name, comp) + "-"
	keep := func(p *corev1.Pod) bool {
		return strings.HasPrefix(p.Labels[LabelRevision], prefix) && p.Spec.NodeName != ""
	}
	lines := eachPod(pods, logsMaxPods, keep, func(p *corev1.Pod) []string {
		ctx, cancel := context.WithTimeout(r.Context(), logsTimeout)
		defer cancel()
		b, err := a.podLogs(ctx, ns, p.Name, &corev1.PodLogOptions{Container: "kserve-container", TailLines: &tail, LimitBytes: ptr(int64(logsMaxBytes))})
		if err != nil {
			return []string{"(no logs: " + err.Error() + ")"}
		}
		return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	})
	writeConsoleJSON(w, http.StatusOK, mgmt.Logs{Replicas: lines})
}

// eachPod calls fetch for the first limit pods that keep selects, all at
// once (each call bounds its own time), and returns the answers by pod
// name: a page waits for its slowest pod, not for the sum of them.
func eachPod[T any](pods []corev1.Pod, limit int, keep func(*corev1.Pod) bool, fetch func(*corev1.Pod) T) map[string]T {
	var chosen []*corev1.Pod
	for i := range pods {
		if len(chosen) < limit && keep(&pods[i]) {
			chosen = append(chosen, &pods[i])
		}
	}
	got := make([]T, len(chosen))
	var wg sync.WaitGroup
	for i, p := range chosen {
		wg.Go(func() { got[i] = fetch(p) })
	}
	wg.Wait()
	out := make(map[string]T, len(chosen))
	for i, p := range chosen {
		out[p.Name] = got[i]
	}
	return out
}

// revisionMetrics writes every revision's counters as the Prometheus text
// format of console.RevisionFamily, which the page reads as it reads
// `ferry up`'s ingress histogram: requests the error matcher selects
// under response_code_class="5xx", the others under "other".
func (a *consoleAPI) revisionMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if a.metrics == nil {
		fmt.Fprintln(w, "# no per-revision metrics: start ferry operator with --prometheus-url")
		return
	}
	totals, err := a.metrics.Totals(r.Context())
	if err != nil {
		writeConsoleErr(w, http.StatusBadGateway, err)
		return
	}
	var b strings.Builder
	fam := console.RevisionFamily
	fmt.Fprintf(&b, "# TYPE %s histogram\n", fam)
	for _, t := range totals {
		sel := fmt.Sprintf(`namespace="%s",revision="%s"`, promEscape(t.Namespace), promEscape(t.Revision))
		les := slices.Collect(maps.Keys(t.Buckets))
		slices.SortFunc(les, func(x, y string) int { return cmp.Compare(leValue(x), leValue(y)) })
		for _, le := range les {
			fmt.Fprintf(&b, "%s_bucket{%s,le=\"%s\"} %g\n", fam, sel, promEscape(le), t.Buckets[le])
		}
		fmt.Fprintf(&b, "%s_sum{%s} %g\n", fam, sel, t.Sum)
		fmt.Fprintf(&b, "%s_count{%s,response_code_class=\"5xx\"} %g\n", fam, sel, t.Errors)
		fmt.Fprintf(&b, "%s_count{%s,response_code_class=\"other\"} %g\n", fam, sel, max(t.Requests-t.Errors, 0))
	}
	_, _ = io.WriteString(w, b.String())
}

// leValue orders bucket bounds numerically, +Inf last.
func leValue(le string) float64 {
	v, err := strconv.ParseFloat(le, 64)
	if err != nil {
		return math.Inf(1)
	}
	return v
}

// promEscape escapes a label value for the text format.
func promEscape(s string) string { return promEscaper.Replace(s) }

var promEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// pods lists a service's pods from the API server (the operator does not
// cache pods), answering the error itself when it cannot.
func (a *consoleAPI) pods(w http.ResponseWriter, r *http.Request, ns, name string) ([]corev1.Pod, bool) {
	var pods corev1.PodList
	if err := a.live.List(r.Context(), &pods, client.InNamespace(ns), client.MatchingLabels{LabelInferenceService: name}); err != nil {
		writeConsoleErr(w, http.StatusInternalServerError, fmt.Errorf("list pods: %w", err))
		return nil, false
	}
	return pods.Items, true
}

// models asks each ready predictor pod (at most mgmt.ModelsMaxReplicas) for its
// model repository index at its pod IP, as `ferry up`'s management API
// asks its replicas, or, where the pod refuses (its repository API is
// off), whether each model it should serve is ready.
func (a *consoleAPI) models(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := a.serviceOr(w, r); !ok {
		return
	}
	ns, name := r.PathValue("ns"), r.PathValue("name")
	pods, ok := a.pods(w, r, ns, name)
	if !ok {
		return
	}
	names := sync.OnceValue(func() []string { return a.servedModels(r.Context(), ns, name) })
	prefix := ServiceName(name, api.ComponentPredictor) + "-"
	keep := func(p *corev1.Pod) bool {
		return strings.HasPrefix(p.Labels[LabelRevision], prefix) && replicaOf(p).Phase == "Ready" && p.Status.PodIP != ""
	}
	idx := eachPod(pods, mgmt.ModelsMaxReplicas, keep, func(p *corev1.Pod) mgmt.ModelIndex {
		rev := p.Labels[LabelRevision]
		base := "http://" + net.JoinHostPort(p.Status.PodIP, strconv.Itoa(httpPort))
		idx := mgmt.ReplicaIndex(r.Context(), a.client, rev, base)
		if idx.Error != "" {
			// The pods serve on all interfaces, where ferry serve keeps
			// its repository API off by default: the models the operator
			// knows the pod serves are asked for one by one instead.
			if ready, err := modelsReady(r.Context(), a.client, base, names()); err == nil {
				idx = mgmt.ModelIndex{Revision: rev, Models: ready}
			}
		}
		return idx
	})
	writeConsoleJSON(w, http.StatusOK, mgmt.Models{Replicas: idx})
}

// maxProbedModels bounds the models asked for one by one per pod.
const maxProbedModels = 64

// servedModels are the models a service's predictor pods serve: the
// service's own (ferry serve --model-name, the service's name) and its
// TrainedModels', at most maxProbedModels.
func (a *consoleAPI) servedModels(ctx context.Context, ns, name string) []string {
	names := []string{name}
	for _, gvk := range a.kinds(&a.tms) {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := a.cache.List(ctx, list, client.InNamespace(ns)); err != nil {
			continue // the service's own model is still asked for
		}
		for i := range list.Items {
			if tm, _ := decodeTrainedModel(&list.Items[i]); tm.Spec.InferenceService == name && len(names) < maxProbedModels {
				names = append(names, list.Items[i].GetName())
			}
		}
	}
	return names
}

// modelsReady asks a pod whether each named model is ready (GET
// /v2/models/NAME/ready, which every ferry serve answers), as repository
// index rows: READY, or UNAVAILABLE with the reason. The whole round is
// bounded by mgmt.ModelsTimeout; a pod that answers none fails it.
func modelsReady(ctx context.Context, c *http.Client, base string, names []string) ([]mgmt.RepositoryModel, error) {
	ctx, cancel := context.WithTimeout(ctx, mgmt.ModelsTimeout)
	defer cancel()
	out := make([]mgmt.RepositoryModel, 0, len(names))
	for _, m := range names {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/models/"+url.PathEscape(m)+"/ready", nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("model %s ready: %w", m, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		row := mgmt.RepositoryModel{Name: m, State: "READY"}
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusNotFound:
			row.State, row.Reason = "UNAVAILABLE", "not loaded on this pod"
		default:
			row.State, row.Reason = "UNAVAILABLE", "ready check answered "+resp.Status
		}
		out = append(out, row)
	}
	return out, nil
}

func (a *consoleAPI) rolloutStatus(w http.ResponseWriter, r *http.Request) {
	if isvc, _, ok := a.serviceOr(w, r); ok {
		writeConsoleJSON(w, http.StatusOK, rollout.StatusOf(isvc))
	}
}

// rolloutControl sets the pause or abort annotation on the live object
// (retried on conflicts with the reconciler's status writes); the rollout
// runner acts on it.
func (a *consoleAPI) rolloutControl(w http.ResponseWriter, r *http.Request) {
	_, u, ok := a.serviceOr(w, r)
	if !ok {
		return
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(u.GroupVersionKind())
		if err := a.live.Get(r.Context(), client.ObjectKeyFromObject(u), live); err != nil {
			return err
		}
		next, err := rollout.Control(live.GetAnnotations(), r.PathValue("action"))
		if err != nil {
			return err
		}
		live.SetAnnotations(next)
		return a.cache.Update(r.Context(), live)
	})
	switch {
	case errors.Is(err, rollout.ErrNoPolicy):
		writeConsoleErr(w, http.StatusConflict, fmt.Errorf("%s/%s has %w", u.GetNamespace(), u.GetName(), err))
	case errors.Is(err, rollout.ErrUnknownAction):
		writeConsoleErr(w, http.StatusNotFound, err)
	case err != nil:
		writeConsoleErr(w, http.StatusInternalServerError, err)
	default:
		a.log.Info("rollout control from the console", "service", u.GetNamespace()+"/"+u.GetName(), "action", r.PathValue("action"))
		writeConsoleJSON(w, http.StatusOK, mgmt.ApplyResult{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(), Action: "configured"})
	}
}

// infer forwards a test request to the service's cluster-local address
// (its entry component: the transformer when it has one), as a client in
// the cluster would send it.
func (a *consoleAPI) infer(w http.ResponseWriter, r *http.Request) {
	isvc, _, ok := a.serviceOr(w, r)
	if !ok {
		return
	}
	path, err := console.InferPath(r.URL.Query(), isvc.Metadata.Name)
	if err != nil {
		writeConsoleErr(w, http.StatusBadRequest, err)
		return
	}
	base := ""
	if st := isvc.Status; st != nil && st.Address != nil {
		base = st.Address.URL
	}
	if base == "" {
		writeConsoleErr(w, http.StatusServiceUnavailable, fmt.Errorf("%s/%s has no address yet (not ready)", isvc.Metadata.Namespace, isvc.Metadata.Name))
		return
	}
	body, err := io.ReadAll(r.Body) // bounded by the guard
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		apiauth.TooLarge(w, tooBig.Limit, "")
		return
	}
	if err != nil {
		writeConsoleErr(w, http.StatusBadRequest, fmt.Errorf("read request body: %w", err))
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, strings.TrimSuffix(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		writeConsoleErr(w, http.StatusInternalServerError, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		writeConsoleErr(w, http.StatusBadGateway, fmt.Errorf("%s/%s did not answer: %w", isvc.Metadata.Namespace, isvc.Metadata.Name, err))
		return
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(io.LimitReader(resp.Body, consoleMaxBody+1))
	switch {
	case err != nil:
		writeConsoleErr(w, http.StatusBadGateway, fmt.Errorf("read the answer of %s/%s: %w", isvc.Metadata.Namespace, isvc.Metadata.Name, err))
		return
	case len(ans) > consoleMaxBody:
		writeConsoleErr(w, http.StatusBadGateway, fmt.Errorf("the answer of %s/%s is over %d bytes", isvc.Metadata.Namespace, isvc.Metadata.Name, consoleMaxBody))
		return
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// The page would read them as its own token refused.
		writeConsoleErr(w, http.StatusBadGateway, fmt.Errorf("%s/%s answered %d: %s", isvc.Metadata.Namespace, isvc.Metadata.Name, resp.StatusCode, bytes.TrimSpace(ans)))
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(ans)
}
