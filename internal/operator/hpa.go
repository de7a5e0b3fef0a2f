package operator

import (
	"context"
	"fmt"
	"slices"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// RevisionHPA returns the HorizontalPodAutoscaler that scales revision rev
// of a component by policy p. There is one per revision, named as the
// revision, because each revision is its own Deployment: during a canary
// both sides scale on their own load.
func RevisionHPA(isvc *api.InferenceService, component, rev string, p *plan.HPA) *autoscalingv2.HorizontalPodAutoscaler {
	lo, target := p.Min, p.TargetUtilization
	labels := componentLabels(isvc, component)
	labels[LabelRevision] = rev
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: metav1.ObjectMeta{Name: rev, Namespace: isvc.Metadata.Namespace, Labels: labels},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: rev},
			MinReplicas:    &lo,
			MaxReplicas:    p.Max,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceName(p.Metric),
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &target},
				},
			}},
		},
	}
}

// ensureHPAs makes the HPAs of a component exactly one per revision in
// revs with policy p (none when revs is empty or p nil), deleting those of
// other revisions: revisions that are gone, or a switch to fixed replicas
// or an external autoscaler.
func (r *Reconciler) ensureHPAs(ctx context.Context, u *unstructured.Unstructured, isvc *api.InferenceService, comp string, revs []string, p *plan.HPA) error {
	ns, name := isvc.Metadata.Namespace, isvc.Metadata.Name
	var list autoscalingv2.HorizontalPodAutoscalerList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{LabelInferenceService: name, LabelComponent: comp}); err != nil {
		return err
	}
	have := map[string]*autoscalingv2.HorizontalPodAutoscaler{}
	for i := range list.Items {
		h := &list.Items[i]
		if !metav1.IsControlledBy(h, u) {
			continue
		}
		if p == nil || !slices.Contains(revs, h.Name) {
			if err := r.Client.Delete(ctx, h); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("delete HPA %s: %w", h.Name, err)
			}
			log.FromContext(ctx).Info("deleted HPA", "hpa", h.Name)
			continue
		}
		have[h.Name] = h
	}
	if p == nil {
		return nil
	}
	for _, rev := range revs {
		want := RevisionHPA(isvc, comp, rev, p)
		h := have[rev]
		if h == nil {
			if err := controllerutil.SetControllerReference(u, want, r.Scheme); err != nil {
				return err
			}
			if err := r.Client.Create(ctx, want); client.IgnoreAlreadyExists(err) != nil {
				return fmt.Errorf("create HPA %s: %w", rev, err)
			}
			log.FromContext(ctx).Info("created HPA", "hpa", rev)
			continue
		}
		// The API server fills in defaults (behavior), so only the fields
		// the operator sets are compared: copying the whole spec would
		// differ on every pass and update in a loop. The policy is part of
		// the revision's spec hash, so this rewrites only a manual edit.
		if equality.Semantic.DeepEqual(h.Spec.ScaleTargetRef, want.Spec.ScaleTargetRef) &&
			equality.Semantic.DeepEqual(h.Spec.MinReplicas, want.Spec.MinReplicas) &&
			h.Spec.MaxReplicas == want.Spec.MaxReplicas &&
			equality.Semantic.DeepEqual(h.Spec.Metrics, want.Spec.Metrics) {
			continue
		}
		h.Spec.ScaleTargetRef, h.Spec.MinReplicas, h.Spec.MaxReplicas, h.Spec.Metrics =
			want.Spec.ScaleTargetRef, want.Spec.MinReplicas, want.Spec.MaxReplicas, want.Spec.Metrics
		if err := r.Client.Update(ctx, h); err != nil {
			return fmt.Errorf("update HPA %s: %w", rev, err)
		}
	}
	return nil
}
