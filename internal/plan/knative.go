package plan

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/api"
)

// Decisions of the Kubernetes runner's Serverless mode, where each
// component is a Knative Service whose revisions Knative creates from the
// template the operator writes (named as RevisionName names them) and
// whose traffic block carries the split Traffic computes. As kube.go's,
// these are kept apart from Component and Service, which both runners
// share.

// AnnotationDeploymentMode is KServe's annotation choosing how an
// InferenceService runs on Kubernetes.
const AnnotationDeploymentMode = "serving.kserve.io/deploymentMode"

// Deployment modes, in KServe's spelling. KServe's newer names for the same
// two modes, "Standard" and "Knative", are read as these.
const (
	ModeRawDeployment = "RawDeployment"
	ModeServerless    = "Serverless"
)

// DeploymentMode is the mode an InferenceService runs in: its
// serving.kserve.io/deploymentMode annotation, else def (the operator's
// --default-deployment-mode), else RawDeployment. ModelMesh and anything
// else is an error naming the annotation.
func DeploymentMode(annotations map[string]string, def string) (string, error) {
	v, ok := annotations[AnnotationDeploymentMode]
	if !ok {
		v = def
	}
	switch strings.ToLower(v) {
	case "", "rawdeployment", "standard":
		return ModeRawDeployment, nil
	case "serverless", "knative":
		return ModeServerless, nil
	}
	return "", fmt.Errorf("annotation %s: unsupported value %q; supported: %s, %s", AnnotationDeploymentMode, v, ModeRawDeployment, ModeServerless)
}

// Knative's autoscaling annotations on a revision template.
const (
	KnativeAutoscalingPrefix = "autoscaling.knative.dev/"
	KnativeClass             = KnativeAutoscalingPrefix + "class"
	KnativeMinScale          = KnativeAutoscalingPrefix + "minScale"
	KnativeMaxScale          = KnativeAutoscalingPrefix + "maxScale"
	KnativeTarget            = KnativeAutoscalingPrefix + "target"
	KnativeMetric            = KnativeAutoscalingPrefix + "metric"
	// KnativeKPA is Knative's own autoscaler (concurrency, rps; scales to
	// zero), KnativeHPA its class backed by a HorizontalPodAutoscaler (cpu,
	// memory; never below one replica).
	KnativeKPA = "kpa.autoscaling.knative.dev"
	KnativeHPA = "hpa.autoscaling.knative.dev"
)

// KnativeScaling is the autoscaling annotations of a component's revision
// template, as KServe writes them: the InferenceService's and then the
// component's own autoscaling.knative.dev annotations (minScale and
// maxScale excepted: they come from the spec), then minScale from
// minReplicas (1 when unset; 0 scales to zero, since Knative's activator
// holds requests while a replica starts), maxScale from maxReplicas (not
// written when 0, which is unlimited; raised to minScale when below it),
// target from scaleTarget and metric from scaleMetric. The class is KPA
// unless an annotation names another, or scaleMetric is cpu or memory,
// which only Knative's HPA class measures; that class cannot scale to
// zero, so its minScale is at least 1. cpu or memory under an explicit KPA
// class, and concurrency or rps under the HPA class, are errors naming the
// field.
func KnativeScaling(component string, x *api.ComponentExtensionSpec, isvcAnnotations map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for _, src := range []map[string]string{isvcAnnotations, x.Annotations} {
		for k, v := range src {
			if strings.HasPrefix(k, KnativeAutoscalingPrefix) && k != KnativeMinScale && k != KnativeMaxScale {
				out[k] = v
			}
		}
	}
	if x.ScaleMetric != "" {
		out[KnativeMetric] = x.ScaleMetric
	}
	if x.ScaleTarget != nil {
		out[KnativeTarget] = strconv.Itoa(int(*x.ScaleTarget))
	}
	resource := out[KnativeMetric] == "cpu" || out[KnativeMetric] == "memory"
	if _, ok := out[KnativeClass]; !ok {
		out[KnativeClass] = KnativeKPA
		if resource {
			out[KnativeClass] = KnativeHPA
		}
	}
	switch {
	case out[KnativeClass] == KnativeKPA && resource:
		return nil, fmt.Errorf("spec.%s.scaleMetric: %q needs Knative's HPA class (%s: %s); the KPA scales on concurrency or rps", component, out[KnativeMetric], KnativeClass, KnativeHPA)
	case out[KnativeClass] == KnativeHPA && out[KnativeMetric] != "" && !resource:
		return nil, fmt.Errorf("spec.%s.scaleMetric: %q needs Knative's KPA class; the HPA class scales on cpu or memory", component, out[KnativeMetric])
	}
	lo := int32(api.DefaultMinReplicas)
	if x.MinReplicas != nil {
		lo = max(*x.MinReplicas, 0)
	}
	if out[KnativeClass] == KnativeHPA {
		lo = max(lo, 1)
	}
	out[KnativeMinScale] = strconv.Itoa(int(lo))
	if x.MaxReplicas != 0 {
		out[KnativeMaxScale] = strconv.Itoa(int(max(x.MaxReplicas, lo)))
	}
	return out, nil
}

// KnativeTarget is one entry of a Knative Service's spec.traffic.
type KnativeTrafficTarget struct {
	Tag            string `json:"tag,omitempty"`
	RevisionName   string `json:"revisionName,omitempty"`
	LatestRevision bool   `json:"latestRevision"`
	Percent        int64  `json:"percent"`
}

// Traffic tags of a canary split: Knative gives each a route of its own
// (prev-{host}, latest-{host}).
const (
	TagPrev   = "prev"
	TagLatest = "latest"
)

// KnativeTraffic is a component's spec.traffic for plan's split, as
// KFServing 0.5 writes it: without a split everything goes to the latest
// ready revision ([{latestRevision: true, percent: 100}], also while
// nothing is ready: Knative moves traffic only to a ready revision);
// during a canary or a rollback the latest ready revision keeps its share
// with latestRevision (tag latest) and the other revision is pinned by
// name with tag prev. The order is Traffic's: latest first.
func KnativeTraffic(traffic []TrafficTarget) []KnativeTrafficTarget {
	if len(traffic) < 2 {
		return []KnativeTrafficTarget{{LatestRevision: true, Percent: 100}}
	}
	out := make([]KnativeTrafficTarget, 0, len(traffic))
	for _, t := range traffic {
		if t.Latest {
			out = append(out, KnativeTrafficTarget{Tag: TagLatest, LatestRevision: true, Percent: int64(t.Percent)})
			continue
		}
		tag := t.Tag
		if tag == "" {
			tag = TagPrev
		}
		out = append(out, KnativeTrafficTarget{Tag: tag, RevisionName: t.Revision, Percent: int64(t.Percent)})
	}
	return out
}

// KnativeObservation is what the operator read of a component's Knative
// Service.
type KnativeObservation struct {
	// Template is the revision name of the template the operator wants
	// (spec.template.metadata.name); Knative creates it.
	Template string
	// Current: the Knative Service's status is for its current spec
	// (status.observedGeneration equals metadata.generation).
	Current bool
	// LatestCreated and LatestReady are status.latestCreatedRevisionName
	// and status.latestReadyRevisionName.
	LatestCreated, LatestReady string
	// Routed are the revisions status.traffic names.
	Routed []string
	// ConfigurationsReady is that condition's status ("True", "False",
	// "Unknown" or ""), with its message.
	ConfigurationsReady, ConfigurationsMessage string
}

// KnativeRevisions turns what Knative reports into plan's input: the
// revisions (oldest first) are the template's, those Knative names in its
// status and those the previous status names (which Knative keeps while
// they are routed or recent); observed says which can take traffic. The
// latest ready revision is Ready; an older revision that was ready before
// (the previous status names it, or Knative routes to it) is Idle: it may
// have scaled to zero, and Knative's activator wakes it. The template's
// revision, when it is newer than the latest ready one, is Failed when
// Knative says its configuration failed, and waiting otherwise.
func KnativeRevisions(o KnativeObservation, prev api.ComponentStatus) ([]string, map[string]Observed) {
	wasReady := map[string]bool{}
	for _, r := range append([]string{prev.LatestReadyRevision, prev.LatestRolledoutRevision, prev.PreviousRolledoutRevision}, o.Routed...) {
		if r != "" {
			wasReady[r] = true
		}
	}
	names := map[string]bool{}
	for _, r := range []string{o.Template, o.LatestCreated, o.LatestReady} {
		if r != "" {
			names[r] = true
		}
	}
	maps.Copy(names, wasReady)
	revs := slices.SortedFunc(maps.Keys(names), func(a, b string) int {
		if d := RevisionNumber(a) - RevisionNumber(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	readyNum := -1
	if o.LatestReady != "" {
		readyNum = RevisionNumber(o.LatestReady)
	}
	obs := map[string]Observed{}
	for _, r := range revs {
		n := RevisionNumber(r)
		switch {
		case r == o.LatestReady:
			obs[r] = Observed{Ready: true}
		case n < readyNum && wasReady[r]:
			obs[r] = Observed{Idle: true}
		case n > readyNum && r == o.Template:
			switch {
			case !o.Current || o.LatestCreated != r:
				obs[r] = Observed{Waiting: fmt.Sprintf("waiting for Knative to create revision %s", r)}
			case o.ConfigurationsReady == "False":
				obs[r] = Observed{Failed: fmt.Sprintf("Knative: revision %s failed: %s", r, o.ConfigurationsMessage)}
			default:
				obs[r] = Observed{Waiting: fmt.Sprintf("waiting for Knative to make revision %s ready", r)}
			}
		default:
			obs[r] = Observed{}
		}
	}
	return revs, obs
}

// KnativeReadiness is a component's Knative Service as its Ready condition
// reports it.
type KnativeReadiness struct {
	// Current: Knative has applied the spec the operator last wrote
	// (status.observedGeneration equals metadata.generation, and the
	// operator did not just change the spec).
	Current bool
	// Status, Reason and Message are the Ready condition's.
	Status, Reason, Message string
}

// KnativeConditions are a Serverless InferenceService's conditions:
// plan's (out, from Service), except that a component plan calls ready
// stays False until its Knative Service is Ready for the spec the
// operator last wrote (routing is Knative's), and Ready is recomputed from
// the components and IngressReady. Transition times as Service stamps
// them.
func KnativeConditions(out ServiceOutput, ready map[string]KnativeReadiness, previous []api.Condition, now time.Time) []api.Condition {
	var conds []api.Condition
	all := true
	for _, name := range ComponentOrder {
		co, ok := out.Components[name]
		if !ok {
			continue
		}
		k := ready[name]
		c := knativeCondition(co.Condition, k)
		conds = append(conds, c)
		all = all && c.Status == "True"
	}
	ingress := api.Condition{Type: "IngressReady", Status: "False", Reason: "NoReadyRevision", Message: "the predictor has no ready revision to route to"}
	for _, c := range out.Conditions {
		if c.Type == "IngressReady" {
			ingress = api.Condition{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message}
		}
	}
	all = all && ingress.Status == "True"
	r := api.Condition{Type: "Ready", Status: "True"}
	if !all {
		r = api.Condition{Type: "Ready", Status: "False", Reason: "ComponentsNotReady", Message: "one or more components are not ready"}
	}
	return Transitions(previous, now, append(conds, ingress, r))
}

func knativeCondition(c api.Condition, k KnativeReadiness) api.Condition {
	c.LastTransitionTime = time.Time{}
	if c.Status != "True" {
		return c
	}
	switch {
	case !k.Current:
		return api.Condition{Type: c.Type, Status: "False", Reason: "KnativeServiceNotReconciled", Message: "waiting for Knative to apply the latest spec"}
	case k.Status != "True":
		reason, msg := k.Reason, k.Message
		if reason == "" {
			reason = "KnativeServiceNotReady"
		}
		if msg == "" {
			msg = "the Knative Service is not ready"
		}
		return api.Condition{Type: c.Type, Status: "False", Reason: reason, Message: msg}
	}
	return c
}
