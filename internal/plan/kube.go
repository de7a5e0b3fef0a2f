package plan

import (
	"fmt"
	"slices"

	"github.com/ferryserve/ferry/internal/api"
)

// Decisions the Kubernetes runner (internal/operator) needs beyond the
// rollout: how a component's replicas are scaled, which revision a plain
// Service selects, where the ingress sends a service's traffic, and what a
// TrainedModel's parent must load. `ferry up` makes the same choices in its
// own terms (its autoscaler, its router), so these are kept apart from
// Component and Service, whose behaviour both runners share.

// AnnotationAutoscalerClass is KServe's annotation choosing who scales a
// raw-mode component: AutoscalerHPA (the default) or AutoscalerExternal
// (KEDA or another controller owns the Deployment's replicas).
const (
	AnnotationAutoscalerClass = "serving.kserve.io/autoscalerClass"
	AutoscalerHPA             = "hpa"
	AutoscalerExternal        = "external"
)

// DefaultScaleTarget is the utilization percentage an HPA aims at when the
// spec gives no scaleTarget, as KServe's raw mode defaults it.
const DefaultScaleTarget = 80

// HPA is a HorizontalPodAutoscaler's policy for one revision.
type HPA struct {
	Min, Max int32
	// Metric is a container resource: "cpu" or "memory".
	Metric string
	// TargetUtilization is the average use, in percent of the pods'
	// requests, that the HPA keeps.
	TargetUtilization int32
}

// Scaling is how a component's revisions are sized on Kubernetes.
type Scaling struct {
	// Replicas is the Deployment's replica count when it is created; with
	// an HPA or an external autoscaler it is only the starting point.
	Replicas int32
	// HPA, when set, is the autoscaler to create; nil when the size is
	// fixed (minReplicas == maxReplicas) or an external autoscaler owns it.
	HPA *HPA
	// External: the autoscalerClass annotation hands the replicas to
	// another controller.
	External bool
}

// KubeScaling decides a component's scaling in raw deployment mode from
// its minReplicas, maxReplicas, scaleMetric and scaleTarget and the
// autoscalerClass annotation (component annotations win over the
// InferenceService's). As in KServe, maxReplicas below minReplicas (0
// means unset) is raised to it, and a Deployment never starts below one
// replica: without Knative's activator nothing wakes a revision at zero.
// An HPA scales on a container resource only, so the concurrency and rps
// metrics, which need Knative's autoscaler, are an error naming the field.
func KubeScaling(component string, x *api.ComponentExtensionSpec, isvcAnnotations map[string]string) (Scaling, error) {
	lo := int32(api.DefaultMinReplicas)
	if x.MinReplicas != nil {
		lo = *x.MinReplicas
	}
	lo = max(lo, 1)
	hi := max(x.MaxReplicas, lo)
	s := Scaling{Replicas: lo}

	class := isvcAnnotations[AnnotationAutoscalerClass]
	if c, ok := x.Annotations[AnnotationAutoscalerClass]; ok {
		class = c
	}
	switch class {
	case "", AutoscalerHPA:
	case AutoscalerExternal:
		s.External = true
		return s, nil
	default:
		return s, fmt.Errorf("annotation %s: unsupported value %q in raw deployment mode; supported: %s, %s", AnnotationAutoscalerClass, class, AutoscalerHPA, AutoscalerExternal)
	}

	metric := x.ScaleMetric
	if metric == "" {
		metric = "cpu"
	}
	if metric != "cpu" && metric != "memory" {
		return s, fmt.Errorf("spec.%s.scaleMetric: %q needs Knative's autoscaler; a HorizontalPodAutoscaler in raw deployment mode scales on cpu or memory", component, metric)
	}
	if lo == hi {
		return s, nil
	}
	target := int32(DefaultScaleTarget)
	if x.ScaleTarget != nil {
		target = *x.ScaleTarget
	}
	s.HPA = &HPA{Min: lo, Max: hi, Metric: metric, TargetUtilization: target}
	return s, nil
}

// ServiceTarget is the revision a plain Kubernetes Service selects for a
// component: a Service cannot weigh backends, so it follows the largest
// share of traffic (the earlier target on a tie: the latest revision,
// which Traffic lists first). With no traffic it is fallback, the
// revision just created, so that the Service exists from the start.
func ServiceTarget(traffic []TrafficTarget, fallback string) string {
	target, best := fallback, -1
	for _, t := range traffic {
		if t.Percent > best {
			target, best = t.Revision, t.Percent
		}
	}
	return target
}

// EntryComponent is the component an InferenceService's traffic enters
// through: the transformer when there is one (it calls the predictor),
// otherwise the predictor.
func EntryComponent(spec *api.InferenceServiceSpec) string {
	if spec.Transformer != nil {
		return api.ComponentTransformer
	}
	return api.ComponentPredictor
}

// IngressHost is the host an InferenceService is reached at from outside
// the cluster, KServe's default domain template {name}.{namespace}.{domain}.
func IngressHost(name, namespace, domain string) string {
	return name + "." + namespace + "." + domain
}

// ModelEntry is one TrainedModel as its parent's model-config lists it.
type ModelEntry struct {
	Name       string
	StorageURI string
	Framework  string
	Memory     string
}

// ModelConfig lists the TrainedModels an InferenceService must load, sorted
// by name so that the same set always renders the same ConfigMap. Models
// that are being deleted, or that name another InferenceService, are left
// out: deleting a TrainedModel removes its entry.
func ModelConfig(isvc string, models []*api.TrainedModel, deleting func(*api.TrainedModel) bool) []ModelEntry {
	var out []ModelEntry
	for _, m := range models {
		if m.Spec.InferenceService != isvc || deleting != nil && deleting(m) {
			continue
		}
		out = append(out, ModelEntry{
			Name:       m.Metadata.Name,
			StorageURI: m.Spec.Model.StorageURI,
			Framework:  m.Spec.Model.Framework,
			Memory:     string(m.Spec.Model.Memory),
		})
	}
	slices.SortFunc(out, func(a, b ModelEntry) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// TrainedModelConditions are a TrainedModel's conditions given what its
// runner saw: invalid is the validation message ("" when valid), parent
// whether the InferenceService exists, parentReady whether it is Ready,
// and written whether the model is in the parent's model-config. As
// KServe reports it, InferenceServiceReady says whether the parent can
// load models and Ready whether this one is listed for it to load.
func TrainedModelConditions(invalid string, parent, parentReady, written bool) []api.Condition {
	isvc := api.Condition{Type: "InferenceServiceReady", Status: "True"}
	switch {
	case !parent:
		isvc = api.Condition{Type: "InferenceServiceReady", Status: "False", Reason: "InferenceServiceNotFound", Message: "the InferenceService named in spec.inferenceService does not exist"}
	case !parentReady:
		isvc = api.Condition{Type: "InferenceServiceReady", Status: "False", Reason: "InferenceServiceNotReady", Message: "the InferenceService is not ready"}
	}
	ready := api.Condition{Type: "Ready", Status: "True"}
	switch {
	case invalid != "":
		isvc.Status, isvc.Reason, isvc.Message = "Unknown", "", ""
		ready = api.Condition{Type: "Ready", Status: "False", Reason: "InvalidSpec", Message: invalid}
	case !written:
		ready = api.Condition{Type: "Ready", Status: "False", Reason: "NotInModelConfig", Message: "the model is not in the InferenceService's model-config yet"}
	case isvc.Status != "True":
		ready = api.Condition{Type: "Ready", Status: "False", Reason: isvc.Reason, Message: isvc.Message}
	}
	return []api.Condition{isvc, ready}
}
