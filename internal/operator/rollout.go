package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/rollout"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// RolloutConfig turns on metric-driven progressive delivery: the same
// rollout.Runner `ferry up` runs moves canaryTrafficPercent of the
// InferenceServices that carry a rollout policy (docs/rollout.md),
// step by step, by writing their spec, which the reconciler then carries
// out like any other change.
type RolloutConfig struct {
	// Metrics reads a revision's requests, errors and latency, typically a
	// rollout.PrometheusSource over the predictor pods' own histogram.
	Metrics rollout.Source
	// Quality reads revisions' accuracy; nil: a policy with an accuracy
	// objective is reported invalid (an event says so).
	Quality rollout.QualitySource
	// Tick is how often services are examined (default 1 s).
	Tick time.Duration
}

// addRolloutRunner runs the rollout runner while this replica is the
// leader (a manager.RunnableFunc needs leader election), so two operator
// replicas never move one canary twice.
func addRolloutRunner(mgr manager.Manager, c Config, gvks []schema.GroupVersionKind) error {
	if c.Rollout == nil || c.Rollout.Metrics == nil || len(gvks) == 0 {
		return nil
	}
	svcs := &kubeServices{client: mgr.GetClient(), live: mgr.GetAPIReader(), gvks: gvks, rec: mgr.GetEventRecorder("ferry-rollout"), log: c.Log}
	r := rollout.NewRunner(rollout.Config{Services: svcs, Metrics: c.Rollout.Metrics, Quality: c.Rollout.Quality,
		Tick: c.Rollout.Tick, Logger: c.Log.With("component", "rollout")})
	if err := mgr.Add(manager.RunnableFunc(r.Run)); err != nil {
		return fmt.Errorf("operator: rollout runner: %w", err)
	}
	return nil
}

// kubeServices is rollout.Services over the API server: services are read
// from the manager's informer cache, a step is written as an update of the
// InferenceService (its canaryTrafficPercent and the rollout annotations,
// with the resourceVersion that was read; when only the status moved since,
// the step goes onto the live object, and a concurrent edit of the spec or
// the annotations wins and the step is weighed again on the next pass),
// and events are Kubernetes Events that
// `kubectl describe isvc` shows.
type kubeServices struct {
	client client.Client
	live   client.Reader // the API server itself, not the cache
	gvks   []schema.GroupVersionKind
	rec    recorder.EventRecorder
	log    *slog.Logger

	mu sync.Mutex
	// seen holds the objects the last List returned, by namespace and name,
	// for Apply (the fields the runner does not change) and Event (the
	// object an event is about).
	seen map[types.NamespacedName]*unstructured.Unstructured
}

// List implements rollout.Services.
func (k *kubeServices) List(ctx context.Context) ([]*api.InferenceService, error) {
	seen := map[types.NamespacedName]*unstructured.Unstructured{}
	var out []*api.InferenceService
	for _, gvk := range k.gvks {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := k.client.List(ctx, list); err != nil {
			return nil, fmt.Errorf("list %s: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			if u.GetDeletionTimestamp() != nil {
				continue
			}
			nn := types.NamespacedName{Namespace: u.GetNamespace(), Name: u.GetName()}
			if _, dup := seen[nn]; dup {
				// The same name in both groups: the second is NameTaken and
				// never runs; its canary is not moved.
				continue
			}
			isvc, st, err := decode(u)
			if err != nil {
				continue // the reconciler reports it as InvalidSpec
			}
			isvc.Status = &st
			seen[nn] = u
			out = append(out, isvc)
		}
	}
	k.mu.Lock()
	k.seen = seen
	k.mu.Unlock()
	return out, nil
}

func (k *kubeServices) object(namespace, name string) *unstructured.Unstructured {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.seen[types.NamespacedName{Namespace: namespace, Name: name}]
}

// errNotListed: Apply or Event for a service the last List did not return.
var errNotListed = errors.New("inference service not listed")

// Apply implements rollout.Services: it writes the runner's two changes,
// the predictor's canaryTrafficPercent and the annotations, onto the
// object as it was listed.
func (k *kubeServices) Apply(ctx context.Context, isvc *api.InferenceService) error {
	orig := k.object(isvc.Metadata.Namespace, isvc.Metadata.Name)
	if orig == nil {
		return fmt.Errorf("%s/%s: %w", isvc.Metadata.Namespace, isvc.Metadata.Name, errNotListed)
	}
	err := k.update(ctx, orig, isvc)
	if !apierrors.IsConflict(err) {
		return err
	}
	// The reconciler writes status all the time, and each write moves the
	// resourceVersion: when the spec (generation) and the annotations the
	// step was weighed on are unchanged, the step still holds.
	live := orig.DeepCopy()
	if err := k.live.Get(ctx, client.ObjectKeyFromObject(orig), live); err != nil {
		return fmt.Errorf("get %s/%s: %w", orig.GetNamespace(), orig.GetName(), err)
	}
	if live.GetGeneration() != orig.GetGeneration() || !maps.Equal(live.GetAnnotations(), orig.GetAnnotations()) {
		return fmt.Errorf("%s/%s changed since it was read; the step is weighed again: %w", orig.GetNamespace(), orig.GetName(), err)
	}
	return k.update(ctx, live, isvc)
}

// update writes isvc's annotations and canaryTrafficPercent onto a copy of
// base, with base's resourceVersion.
func (k *kubeServices) update(ctx context.Context, base *unstructured.Unstructured, isvc *api.InferenceService) error {
	u := base.DeepCopy()
	u.SetAnnotations(isvc.Metadata.Annotations)
	if pct := isvc.Spec.Predictor.CanaryTrafficPercent; pct != nil {
		if err := unstructured.SetNestedField(u.Object, *pct, "spec", "predictor", "canaryTrafficPercent"); err != nil {
			return fmt.Errorf("set canaryTrafficPercent: %w", err)
		}
	} else {
		unstructured.RemoveNestedField(u.Object, "spec", "predictor", "canaryTrafficPercent")
	}
	if err := k.client.Update(ctx, u); err != nil {
		return fmt.Errorf("update %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// Event implements rollout.Services.
func (k *kubeServices) Event(namespace, name, typ, reason, message string) {
	u := k.object(namespace, name)
	if u == nil {
		k.log.Warn("rollout event for an unlisted service", "service", namespace+"/"+name, "reason", reason, "message", message)
		return
	}
	if typ != corev1.EventTypeWarning {
		typ = corev1.EventTypeNormal
	}
	k.rec.Eventf(u, nil, typ, reason, "Rollout", "%s", message)
}
