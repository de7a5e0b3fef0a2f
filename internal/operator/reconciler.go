package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// InferenceServiceGVK is the kind the reconciler watches. It is read as
// unstructured data and decoded with internal/api, so the operator and
// `ferry apply` agree on every field without a second set of Go types.
var InferenceServiceGVK = schema.GroupVersionKind{Group: api.GroupKServe, Version: api.VersionInferenceService, Kind: api.KindInferenceService}

// Condition types, as KServe names them.
const (
	ConditionReady          = "Ready"
	ConditionPredictorReady = "PredictorReady"
	ConditionIngressReady   = "IngressReady"
)

// Reconciler makes an InferenceService's component revisions, Services,
// HPAs, Ingress and status match its spec (raw deployment mode).
type Reconciler struct {
	Client client.Client
	Scheme *runtime.Scheme
	// GVK is the InferenceService kind reconciled: InferenceServiceGVK
	// when empty, or its serving.kubeflow.org twin.
	GVK schema.GroupVersionKind
	// ServeImage is the image whose entrypoint is the ferry binary; built-in
	// formats run `ferry serve` in it.
	ServeImage string
	// IngressDomain, when set, makes an Ingress per InferenceService for
	// the host {name}.{namespace}.{IngressDomain}, with IngressClassName
	// as its class ("" leaves the cluster's default).
	IngressDomain    string
	IngressClassName string
	// Gateway, when set, routes with Gateway API HTTPRoutes attached to
	// it (hosts under IngressDomain) instead of an Ingress, weighing each
	// component's revisions by their traffic.
	Gateway *Gateway
	// Knative: the API server serves Knative Serving's Service, so
	// InferenceServices in Serverless mode (knative.go) can run.
	// DefaultDeploymentMode is the mode of those without the
	// serving.kserve.io/deploymentMode annotation (RawDeployment when "").
	Knative               bool
	DefaultDeploymentMode string
	// Now is the clock for condition transition times (time.Now when nil).
	Now func() time.Time
	// Reader reads what the operator does not cache: the service
	// accounts and secrets storage credentials come from (nil: no
	// credentials).
	Reader client.Reader
	// Runtimes are the runtime images by framework, from the ConfigMap
	// RuntimesRef (nil: none).
	Runtimes    Runtimes
	RuntimesRef string

	stale staleRetries
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	res, err := r.reconcileService(ctx, req)
	return r.stale.retry(ctx, req, res, err)
}

func (r *Reconciler) reconcileService(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	u := &unstructured.Unstructured{}
	gvk := r.GVK
	if gvk.Empty() {
		gvk = InferenceServiceGVK
	}
	u.SetGroupVersionKind(gvk)
	if err := r.Client.Get(ctx, req.NamespacedName, u); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if u.GetDeletionTimestamp() != nil {
		// Owner references make the garbage collector remove the rest.
		return reconcile.Result{}, nil
	}
	isvc, old, err := decode(u)
	if err != nil {
		// Unreadable even leniently: nothing to do until the spec changes.
		return reconcile.Result{}, r.writeStatus(ctx, u, old, failed(old, u.GetGeneration(), "InvalidSpec", err.Error(), r.now()))
	}
	isvc.Default()
	if err := isvc.Validate(); err != nil {
		return reconcile.Result{}, r.writeStatus(ctx, u, old, failed(old, u.GetGeneration(), "InvalidSpec", err.Error(), r.now()))
	}
	st, err := r.reconcileMode(ctx, u, isvc, old)
	if owned := (*controllerutil.AlreadyOwnedError)(nil); errors.As(err, &owned) {
		// A name the operator derives is held by another owner (an
		// InferenceService of the same name in the other API group): a
		// retry cannot succeed, so say so and wait for a change.
		return reconcile.Result{}, r.writeStatus(ctx, u, old, failed(old, u.GetGeneration(), "NameTaken", err.Error(), r.now()))
	}
	if err != nil {
		// Say why in status (once: an unchanged status is not rewritten),
		// unless a retry is expected to succeed (a stale cache).
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err) {
			_ = r.writeStatus(ctx, u, old, failed(old, u.GetGeneration(), "ReconcileFailed", err.Error(), r.now()))
		}
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, r.writeStatus(ctx, u, old, st)
}

// Retries of a reconcile that lost a race: the first after staleRetry,
// doubling per object up to maxStaleRetry.
const (
	staleRetry    = 200 * time.Millisecond
	maxStaleRetry = 30 * time.Second
)

// staleRetries turns an error that only says the informer cache was
// behind the API server into a quiet retry: a write conflicted with a
// newer version of the object (often the operator's own status write, not
// yet in the cache), or an object the cache did not show was already
// there. Reading again after a moment succeeds, so such an error is not
// the operator's to report ("Reconciler error" at ERROR level, the error
// metric); it is logged at debug level. A retry is needed, not only
// welcome: the watch event of the operator's own status write does not
// requeue the object (the generation predicate drops it). The retries of
// one object back off exponentially, so an object that keeps conflicting
// (another writer fighting over it) costs ever less, and the count is
// forgotten once it reconciles cleanly. The zero value is ready to use.
type staleRetries struct {
	once sync.Once
	rl   workqueue.TypedRateLimiter[reconcile.Request]
}

func (s *staleRetries) retry(ctx context.Context, req reconcile.Request, res reconcile.Result, err error) (reconcile.Result, error) {
	s.once.Do(func() {
		s.rl = workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](staleRetry, maxStaleRetry)
	})
	if err == nil {
		s.rl.Forget(req)
		return res, nil
	}
	if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
		return res, err
	}
	after := s.rl.When(req)
	log.FromContext(ctx).V(1).Info("stale cache: retrying", "error", err.Error(), "after", after)
	return reconcile.Result{RequeueAfter: after}, nil
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// decode reads u with internal/api's types. Unknown fields are ignored
// here: the API server has already pruned to the CRD's schema.
func decode(u *unstructured.Unstructured) (*api.InferenceService, api.InferenceServiceStatus, error) {
	var old api.InferenceServiceStatus
	if s, ok := u.Object["status"]; ok {
		if b, err := json.Marshal(s); err == nil {
			_ = json.Unmarshal(b, &old) // a status we cannot read is rewritten
		}
	}
	b, err := json.Marshal(u.Object)
	if err != nil {
		return nil, old, err
	}
	var isvc api.InferenceService
	if err := json.Unmarshal(b, &isvc); err != nil {
		return nil, old, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	return &isvc, old, nil
}

// componentState is what reconcile saw and did for one component.
type componentState struct {
	name string
	// revs are the component's revisions by name; names oldest first.
	revs  map[string]*appsv1.Deployment
	names []string
	// current is the revision made from the current spec ("" when it
	// could not be made).
	current string
	scaling plan.Scaling
	// failed: the current spec cannot run; what exists is left alone.
	failed bool
}

// componentSpec is isvc's component by name, or nil when it has none.
func componentSpec(isvc *api.InferenceService, comp string) api.Component {
	switch comp {
	case api.ComponentPredictor:
		return &isvc.Spec.Predictor
	case api.ComponentTransformer:
		if isvc.Spec.Transformer != nil {
			return isvc.Spec.Transformer
		}
	case api.ComponentExplainer:
		if isvc.Spec.Explainer != nil {
			return isvc.Spec.Explainer
		}
	}
	return nil
}

// reconcileComponents ensures each component's current revision, asks
// plan what to keep and route (the same planner `ferry up` uses), carries
// that out (revisions, HPAs, Services, the Ingress) and returns the status
// to report.
func (r *Reconciler) reconcileComponents(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService, old api.InferenceServiceStatus) (api.InferenceServiceStatus, error) {
	ns, name := isvc.Metadata.Namespace, isvc.Metadata.Name
	now := r.now()
	in := plan.ServiceInput{Components: map[string]plan.Input{}, Previous: old.Conditions, Now: now}
	var states []*componentState
	for _, comp := range plan.ComponentOrder {
		spec := componentSpec(isvc, comp)
		if spec == nil {
			if err := r.removeComponent(ctx, u, isvc, comp); err != nil {
				return old, err
			}
			continue
		}
		st, input, err := r.observeComponent(ctx, u, isvc, comp, spec, old.Components[comp])
		if err != nil {
			return old, err
		}
		states = append(states, st)
		in.Components[comp] = input
	}
	out := plan.Service(in)

	st := api.InferenceServiceStatus{ObservedGeneration: u.GetGeneration(), Components: map[string]api.ComponentStatus{}}
	traffic, fallback := map[string][]plan.TrafficTarget{}, map[string]string{}
	for _, cs := range states {
		co := out.Components[cs.name]
		if err := r.applyComponent(ctx, u, isvc, cs, co); err != nil {
			return old, err
		}
		traffic[cs.name], fallback[cs.name] = co.Traffic, cs.current
		if cs.current == "" {
			// The spec cannot run: routes stay on what served before.
			fallback[cs.name] = old.Components[cs.name].LatestRolledoutRevision
		}
		s := co.Status()
		s.URL = clusterURL(name, cs.name, ns)
		s.Address = &api.Addressable{URL: s.URL}
		st.Components[cs.name] = s
	}
	entry := clusterURL(name, plan.EntryComponent(&isvc.Spec), ns)
	st.URL, st.Address = entry, &api.Addressable{URL: entry}
	switch {
	case r.Gateway != nil:
		if err := r.ensureRoutes(ctx, u, isvc, traffic, fallback); err != nil {
			return old, err
		}
		// An Ingress from before --gateway would route beside the routes.
		if err := r.removeIngress(ctx, u, isvc); err != nil {
			return old, err
		}
		st.URL = "http://" + plan.IngressHost(name, ns, r.IngressDomain)
		if c, ok := r.routeCondition(ctx, ns, name); ok {
			out.Conditions = withIngressCondition(out.Conditions, c)
		}
	case r.IngressDomain != "":
		if err := r.ensureIngress(ctx, u, isvc); err != nil {
			return old, err
		}
		st.URL = "http://" + plan.IngressHost(name, ns, r.IngressDomain)
	}
	st.Conditions = mergeConditions(old.Conditions, now, out.Conditions...)
	return st, nil
}

func clusterURL(name, comp, ns string) string {
	return fmt.Sprintf("http://%s.%s.svc.cluster.local", ServiceName(name, comp), ns)
}

// observeComponent lists a component's revisions, creates the one for the
// current spec when it is missing, and returns plan's input for it.
func (r *Reconciler) observeComponent(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService, comp string, spec api.Component, prev api.ComponentStatus) (*componentState, plan.Input, error) {
	logger := log.FromContext(ctx)
	ns, name := isvc.Metadata.Namespace, isvc.Metadata.Name
	st := &componentState{name: comp, revs: map[string]*appsv1.Deployment{}}
	in := plan.Input{Previous: prev, Observed: map[string]plan.Observed{}}

	var list appsv1.DeploymentList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{LabelInferenceService: name, LabelComponent: comp}); err != nil {
		return nil, in, err
	}
	maxNum := 0
	hash := api.ComponentSpecHash(spec)
	for i := range list.Items {
		d := &list.Items[i]
		if !metav1.IsControlledBy(d, u) {
			continue
		}
		st.revs[d.Name] = d
		maxNum = max(maxNum, revisionNumber(d.Name))
		if d.Annotations[AnnotationSpecHash] == hash {
			st.current = d.Name
		}
	}
	scaling, err := plan.KubeScaling(comp, spec.Extensions(), isvc.Metadata.Annotations)
	st.scaling = scaling
	if err == nil && st.current == "" {
		rev := RevisionName(name, comp, maxNum+1)
		var d *appsv1.Deployment
		var o PodOptions
		if o, err = r.podOptions(ctx, isvc, comp); err != nil {
			return nil, in, err
		}
		if d, err = BuildDeployment(isvc, comp, rev, hash, scaling.Replicas, o); err == nil {
			if err := controllerutil.SetControllerReference(u, d, r.Scheme); err != nil {
				return nil, in, err
			}
			// The name is deterministic, so a stale cache that hides a
			// revision created a moment ago ends in AlreadyExists and a
			// retry, never in a duplicate revision.
			err = r.Client.Create(ctx, d)
			switch {
			case err == nil:
				logger.Info("created revision", "revision", rev)
				st.revs[rev], st.current = d, rev
			case apierrors.IsAlreadyExists(err):
				// Ours and not yet in the cache: retry. Someone else's (an
				// InferenceService of the same name in the other API
				// group): report it, since a retry cannot succeed.
				other := &appsv1.Deployment{}
				if gerr := r.Client.Get(ctx, client.ObjectKeyFromObject(d), other); gerr != nil || metav1.IsControlledBy(other, u) {
					return nil, in, fmt.Errorf("create revision %s: %w", rev, err)
				}
				err = fmt.Errorf("revision name %s is taken: its Deployment belongs to %s", rev, ownerOf(other))
			default:
				return nil, in, fmt.Errorf("create revision %s: %w", rev, err)
			}
		}
	}
	if err != nil {
		// The spec cannot run: plan reports it, and the revisions that
		// serve now stay as they are.
		st.failed = true
		in.Error = err.Error()
	}

	st.names = slices.SortedFunc(maps.Keys(st.revs), func(a, b string) int { return revisionNumber(a) - revisionNumber(b) })
	in.Revisions = st.names
	for n, d := range st.revs {
		o := plan.Observed{Ready: available(d)}
		if !o.Ready {
			o.Waiting = fmt.Sprintf("revision %s has no available replicas yet", n)
		}
		in.Observed[n] = o
	}
	if c := spec.Extensions().CanaryTrafficPercent; c != nil {
		v := int(*c)
		in.CanaryTrafficPercent = &v
	}
	return st, in, nil
}

// applyComponent carries out plan's output for one component: revisions
// that neither traffic nor a rollback can reach are deleted, kept ones get
// their HPA, and the component's Service selects the revision with the
// most traffic.
func (r *Reconciler) applyComponent(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService, st *componentState, out plan.Output) error {
	logger := log.FromContext(ctx)
	for _, e := range out.Events {
		logger.Info(e.Message, "reason", e.Reason, "component", st.name)
	}
	if st.failed {
		return nil
	}
	for _, rev := range st.names {
		if slices.Contains(out.Keep, rev) {
			continue
		}
		if err := r.Client.Delete(ctx, st.revs[rev], client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete revision %s: %w", rev, err)
		}
		logger.Info("deleted revision", "revision", rev)
	}
	var autoscaled []string
	if st.scaling.HPA != nil {
		autoscaled = out.Keep
	}
	if err := r.ensureHPAs(ctx, u, isvc, st.name, autoscaled, st.scaling.HPA); err != nil {
		return err
	}
	if r.Gateway != nil {
		if err := r.ensureRevisionServices(ctx, isvc, st, out.Keep); err != nil {
			return err
		}
	}
	target := plan.ServiceTarget(out.Traffic, st.current)
	return r.ensureService(ctx, u, isvc, st.name, target, st.revs[target])
}

// removeComponent deletes what a component the spec no longer has left
// behind: its revisions, HPAs and Service.
func (r *Reconciler) removeComponent(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService, comp string) error {
	ns, name := isvc.Metadata.Namespace, isvc.Metadata.Name
	sel := client.MatchingLabels{LabelInferenceService: name, LabelComponent: comp}
	var deps appsv1.DeploymentList
	if err := r.Client.List(ctx, &deps, client.InNamespace(ns), sel); err != nil {
		return err
	}
	for i := range deps.Items {
		if d := &deps.Items[i]; metav1.IsControlledBy(d, u) {
			if err := r.Client.Delete(ctx, d, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("delete revision %s: %w", d.Name, err)
			}
		}
	}
	if err := r.ensureHPAs(ctx, u, isvc, comp, nil, nil); err != nil {
		return err
	}
	svc := &corev1.Service{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ServiceName(name, comp)}, svc)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !metav1.IsControlledBy(svc, u) {
		return nil
	}
	return client.IgnoreNotFound(r.Client.Delete(ctx, svc))
}

// ensureService points the component's Service at revision rev, whose
// Deployment is d (nil when unknown), on its entry port (EntryPort).
func (r *Reconciler) ensureService(ctx context.Context, owner *unstructured.Unstructured, isvc *api.InferenceService, comp, rev string, d *appsv1.Deployment) error {
	want := withEntryPort(ComponentService(isvc, comp, rev), d)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, svc, func() error {
		if svc.Labels == nil {
			svc.Labels = map[string]string{}
		}
		maps.Copy(svc.Labels, want.Labels)
		svc.Spec.Selector = want.Spec.Selector
		svc.Spec.Ports = want.Spec.Ports
		return controllerutil.SetControllerReference(owner, svc, r.Scheme)
	})
	return err
}

// available reports whether a Deployment's controller says it is Available
// for its current generation.
func available(d *appsv1.Deployment) bool {
	if d == nil || d.Status.ObservedGeneration < d.Generation {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func condition(typ string, ok bool, reason, msg string) api.Condition {
	if ok {
		return api.Condition{Type: typ, Status: "True"}
	}
	return api.Condition{Type: typ, Status: "False", Reason: reason, Message: msg}
}

// failed is the status of an object the operator cannot run: both
// conditions False with the reason, the rest of the old status kept.
func failed(old api.InferenceServiceStatus, gen int64, reason, msg string, now time.Time) api.InferenceServiceStatus {
	st := old
	st.ObservedGeneration = gen
	st.Conditions = mergeConditions(old.Conditions, now,
		condition(ConditionPredictorReady, false, reason, msg),
		condition(ConditionReady, false, reason, msg))
	return st
}

// mergeConditions returns conds sorted by type, each keeping its previous
// transition time while its status is unchanged, so an unchanged object
// yields an identical status and no write.
func mergeConditions(old []api.Condition, now time.Time, conds ...api.Condition) []api.Condition {
	out := plan.Transitions(old, now, slices.Clone(conds))
	slices.SortFunc(out, func(a, b api.Condition) int {
		switch {
		case a.Type < b.Type:
			return -1
		case a.Type > b.Type:
			return 1
		}
		return 0
	})
	return out
}

func (r *Reconciler) writeStatus(ctx context.Context, u *unstructured.Unstructured, old, st api.InferenceServiceStatus) error {
	return writeStatus(ctx, r.Client, u, old, st)
}

// writeStatus stores st on the object unless it is what is stored already
// (old, as read).
func writeStatus(ctx context.Context, c client.Client, u *unstructured.Unstructured, old, st any) error {
	a, err := json.Marshal(old)
	if err != nil {
		return err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if string(a) == string(b) {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	u.Object["status"] = m
	// A conflict (the object changed since it was read) is returned too:
	// the retry reads the new object.
	if err := c.Status().Update(ctx, u); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

func ownerOf(o metav1.Object) string {
	if ref := metav1.GetControllerOf(o); ref != nil {
		return ref.APIVersion + " " + ref.Kind + " " + ref.Name
	}
	return "no controller"
}
