package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
)

// Reconciler makes an InferenceService's predictor revisions, Service and
// status match its spec (raw deployment mode).
type Reconciler struct {
	Client client.Client
	Scheme *runtime.Scheme
	// ServeImage is the image whose entrypoint is the ferry binary; built-in
	// formats run `ferry serve` in it.
	ServeImage string
	// Now is the clock for condition transition times (time.Now when nil).
	Now func() time.Time
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(InferenceServiceGVK)
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
	st, err := r.reconcilePredictor(ctx, u, isvc, old)
	if err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, r.writeStatus(ctx, u, old, st)
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

// reconcilePredictor ensures the predictor's current revision, garbage
// collects revisions nothing refers to, points the Service at the revision
// with the most traffic, and returns the status to report.
func (r *Reconciler) reconcilePredictor(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService, old api.InferenceServiceStatus) (api.InferenceServiceStatus, error) {
	logger := log.FromContext(ctx)
	ns, name, comp := isvc.Metadata.Namespace, isvc.Metadata.Name, api.ComponentPredictor
	now := r.now()

	var list appsv1.DeploymentList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{LabelInferenceService: name, LabelComponent: comp}); err != nil {
		return old, err
	}
	revs := map[string]*appsv1.Deployment{}
	current, maxNum := "", 0
	hash := api.ComponentSpecHash(&isvc.Spec.Predictor)
	for i := range list.Items {
		d := &list.Items[i]
		if !metav1.IsControlledBy(d, u) {
			continue
		}
		revs[d.Name] = d
		maxNum = max(maxNum, revisionNumber(d.Name))
		if d.Annotations[AnnotationSpecHash] == hash {
			current = d.Name
		}
	}
	if current == "" {
		rev := RevisionName(name, comp, maxNum+1)
		d, err := PredictorDeployment(isvc, rev, hash, r.ServeImage)
		if err != nil {
			return failed(old, u.GetGeneration(), "PredictorUnsupported", err.Error(), now), nil
		}
		if err := controllerutil.SetControllerReference(u, d, r.Scheme); err != nil {
			return old, err
		}
		// The name is deterministic, so a stale cache that hides a revision
		// created a moment ago ends in AlreadyExists and a retry, never in a
		// duplicate revision.
		if err := r.Client.Create(ctx, d); err != nil {
			return old, fmt.Errorf("create revision %s: %w", rev, err)
		}
		logger.Info("created revision", "revision", rev)
		revs[rev], current = d, rev
	}

	// What to keep and route is plan's, as under ferry up: the revisions
	// in creation order, each ready when its Deployment is Available.
	prev := old.Components[comp]
	names := slices.SortedFunc(maps.Keys(revs), func(a, b string) int { return revisionNumber(a) - revisionNumber(b) })
	in := plan.Input{Revisions: names, Previous: prev, Observed: map[string]plan.Observed{}}
	for n, d := range revs {
		o := plan.Observed{Ready: available(d)}
		if !o.Ready {
			o.Waiting = fmt.Sprintf("revision %s has no available replicas yet", n)
		}
		in.Observed[n] = o
	}
	if c := isvc.Spec.Predictor.CanaryTrafficPercent; c != nil {
		v := int(*c)
		in.CanaryTrafficPercent = &v
	}
	out := plan.Component(comp, in)
	traffic := out.Traffic
	for _, e := range out.Events {
		logger.Info(e.Message, "reason", e.Reason)
	}

	// Keep what traffic or a rollback can reach; delete the rest.
	for _, rev := range names {
		if slices.Contains(out.Keep, rev) {
			continue
		}
		if err := r.Client.Delete(ctx, revs[rev], client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return old, fmt.Errorf("delete revision %s: %w", rev, err)
		}
		logger.Info("deleted revision", "revision", rev)
	}

	target := current
	best := -1
	for _, t := range traffic {
		if t.Percent > best {
			target, best = t.Revision, t.Percent
		}
	}
	if err := r.ensureService(ctx, u, isvc, comp, target); err != nil {
		return old, err
	}

	url := fmt.Sprintf("http://%s.%s.svc.cluster.local", ServiceName(name, comp), ns)
	cs := out.Status()
	cs.URL, cs.Address = url, &api.Addressable{URL: url}
	st := api.InferenceServiceStatus{
		ObservedGeneration: u.GetGeneration(),
		URL:                url,
		Address:            &api.Addressable{URL: url},
		Components:         map[string]api.ComponentStatus{comp: cs},
	}
	predReady := out.Condition
	ready := predReady
	ready.Type = ConditionReady
	if isvc.Spec.Transformer != nil || isvc.Spec.Explainer != nil {
		ready = condition(ConditionReady, false, "ComponentNotSupported", "the operator runs predictors only; transformers and explainers are not supported yet")
	}
	st.Conditions = mergeConditions(old.Conditions, now, predReady, ready)
	return st, nil
}

func (r *Reconciler) ensureService(ctx context.Context, owner *unstructured.Unstructured, isvc *api.InferenceService, comp, rev string) error {
	want := ComponentService(isvc, comp, rev)
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

// writeStatus stores st on the object unless it is what is stored already.
func (r *Reconciler) writeStatus(ctx context.Context, u *unstructured.Unstructured, old, st api.InferenceServiceStatus) error {
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
	if err := r.Client.Status().Update(ctx, u); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}
