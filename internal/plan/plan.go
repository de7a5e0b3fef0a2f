// Package plan decides, without I/O, what an InferenceService's components
// should run and route and the status that says so, following KFServing
// 0.5's Knative reconciler. Its callers gather the inputs (stored
// revisions, the previous status, what their runner observed) and carry out
// the answer: `ferry up` with local processes (internal/controlplane), the
// Kubernetes operator with Deployments (internal/operator). Nothing here
// reads a clock, a file or the network; the same input gives the same plan.
package plan

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/api"
)

// RevisionName is the name of a component's n-th revision, the scheme
// Knative and KServe use ("sklearn-iris-predictor-00001").
func RevisionName(service, component string, n int) string {
	return fmt.Sprintf("%s-%s-%05d", service, component, n)
}

// RevisionNumber is the n RevisionName put at the end of rev, or 0.
func RevisionNumber(rev string) int {
	i := strings.LastIndexByte(rev, '-')
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(rev[i+1:])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// Runs lists the revisions of a component that must run before anything is
// observed: the latest created one, and those the previous status may
// route to (latest ready, rolled out, previous rolled out). revisions are
// oldest first; names not among them are skipped.
func Runs(revisions []string, prev api.ComponentStatus) []string {
	if len(revisions) == 0 {
		return nil
	}
	want := []string{revisions[len(revisions)-1]}
	for _, r := range []string{prev.LatestReadyRevision, prev.LatestRolledoutRevision, prev.PreviousRolledoutRevision} {
		if r != "" && !slices.Contains(want, r) && slices.Contains(revisions, r) {
			want = append(want, r)
		}
	}
	return want
}

// MinReplicas is the floor of revision rev's replicas given the spec's
// minReplicas: as in Knative, the minimum holds while a revision is routed
// (it had traffic in the previous status, or it is the latest created).
// A revision kept only for a rollback goes to zero when idle and wakes
// through the activator if traffic comes back to it.
func MinReplicas(rev string, revisions []string, prev api.ComponentStatus, min int) int {
	if len(revisions) > 0 && rev == revisions[len(revisions)-1] || len(prev.Traffic) == 0 {
		return min
	}
	for _, t := range prev.Traffic {
		if t.RevisionName == rev && t.Percent != nil && *t.Percent > 0 {
			return min
		}
	}
	return 0
}

// Observed is what a runner saw of one revision.
type Observed struct {
	// Ready: at least one replica answers.
	Ready bool `json:"ready,omitempty"`
	// Idle: no replica answers now, but the revision was ready and its
	// requests wait in the activator until one does (scaled to zero, or
	// scaling up from zero). It stays routable.
	Idle bool `json:"idle,omitempty"`
	// Failed says why the runner cannot run the revision at all.
	Failed string `json:"failed,omitempty"`
	// Waiting says why a revision is not ready yet (a replica's last exit
	// and log line); empty: it is starting.
	Waiting string `json:"waiting,omitempty"`
}

func (o Observed) routable() bool { return o.Ready || o.Idle }

// Input is one component as its caller sees it.
type Input struct {
	// Revisions are the component's revisions, oldest first; the last is
	// the latest created.
	Revisions []string `json:"revisions"`
	// Error, when set, says why the revisions could not be read or
	// created: the previous status stays and the component is not ready.
	Error string `json:"error,omitempty"`
	// CanaryTrafficPercent is the spec's canaryTrafficPercent.
	CanaryTrafficPercent *int `json:"canaryTrafficPercent,omitempty"`
	// Observed is what the runner saw, by revision.
	Observed map[string]Observed `json:"observed,omitempty"`
	// Previous is the component's status from the last plan.
	Previous api.ComponentStatus `json:"-"`
}

// Event is a change worth telling the user (`ferry describe`, kubectl).
type Event struct {
	Type    string `json:"type"` // Normal or Warning
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Output is the plan for one component.
type Output struct {
	Rollout Rollout `json:"rollout"`
	// Traffic is the split to route; empty: nothing is ready.
	Traffic []TrafficTarget `json:"traffic,omitempty"`
	// Keep are the revisions that must keep running (or existing); any
	// other revision of the component may be stopped or deleted.
	Keep      []string      `json:"keep,omitempty"`
	Condition api.Condition `json:"condition"`
	Events    []Event       `json:"events,omitempty"`
}

// Status is the component's status without its URLs, which the caller
// knows (an ingress host, a cluster Service).
func (o Output) Status() api.ComponentStatus {
	cs := api.ComponentStatus{
		LatestCreatedRevision:     o.Rollout.LatestCreated,
		LatestReadyRevision:       o.Rollout.LatestReady,
		LatestRolledoutRevision:   o.Rollout.LatestRolledout,
		PreviousRolledoutRevision: o.Rollout.PreviousRolledout,
	}
	for _, t := range o.Traffic {
		p, latest := int64(t.Percent), t.Latest
		cs.Traffic = append(cs.Traffic, api.TrafficTarget{RevisionName: t.Revision, Tag: t.Tag, Percent: &p, LatestRevision: &latest})
	}
	return cs
}

// ConditionType is the condition a component reports: PredictorReady,
// TransformerReady, ExplainerReady.
func ConditionType(component string) string {
	if component == "" {
		return "Ready"
	}
	return strings.ToUpper(component[:1]) + component[1:] + "Ready"
}

// Component plans one component (name is predictor, transformer or
// explainer).
func Component(name string, in Input) Output {
	condType := ConditionType(name)
	prev := in.Previous
	if in.Error != "" || len(in.Revisions) == 0 {
		msg := in.Error
		if msg == "" {
			msg = "the component has no revision"
		}
		return Output{
			Rollout: Rollout{
				LatestCreated: prev.LatestCreatedRevision, LatestReady: prev.LatestReadyRevision,
				LatestRolledout: prev.LatestRolledoutRevision, PreviousRolledout: prev.PreviousRolledoutRevision,
			},
			Condition: api.Condition{Type: condType, Status: "False", Reason: "RevisionFailed", Message: msg},
		}
	}
	latest := in.Revisions[len(in.Revisions)-1]
	ro := Rollout{LatestCreated: latest, LatestRolledout: prev.LatestRolledoutRevision, PreviousRolledout: prev.PreviousRolledoutRevision}
	for i := len(in.Revisions) - 1; i >= 0; i-- {
		if in.Observed[in.Revisions[i]].routable() {
			ro.LatestReady = in.Revisions[i]
			break
		}
	}
	traffic := Traffic(ro, in.CanaryTrafficPercent)
	ro.Observe(traffic)
	out := Output{Rollout: ro, Traffic: traffic}

	if prev.LatestRolledoutRevision != "" && ro.LatestRolledout != prev.LatestRolledoutRevision {
		out.Events = append(out.Events, Event{"Normal", "Promoted", fmt.Sprintf("%s: %s takes the traffic (was %s)", name, ro.LatestRolledout, prev.LatestRolledoutRevision)})
	}
	if pinned(traffic) && !pinnedStatus(prev.Traffic) {
		out.Events = append(out.Events, Event{"Warning", "RolledBack", fmt.Sprintf("%s: all traffic back on %s (canaryTrafficPercent 0); %s keeps 0 %%", name, traffic[1].Revision, traffic[0].Revision)})
	}

	out.Keep = []string{latest}
	for _, r := range []string{ro.LatestReady, ro.LatestRolledout, ro.PreviousRolledout} {
		if r != "" && !slices.Contains(out.Keep, r) {
			out.Keep = append(out.Keep, r)
		}
	}

	// As Knative and KServe report it: the component is ready only when
	// its latest created revision is, and every revision given traffic
	// can answer (a new revision that is starting or crash-looping makes
	// it not ready while the old one keeps serving).
	routed := len(traffic) > 0
	for _, t := range traffic {
		if t.Percent > 0 && !in.Observed[t.Revision].routable() {
			routed = false
		}
	}
	obs := in.Observed[latest]
	switch {
	case obs.Failed != "":
		out.Condition = api.Condition{Type: condType, Status: "False", Reason: "RevisionFailed", Message: obs.Failed}
	case !routed || ro.LatestReady != latest:
		msg := obs.Waiting
		if msg == "" {
			msg = "waiting for a replica of " + latest + " to become ready"
		}
		out.Condition = api.Condition{Type: condType, Status: "False", Reason: "RevisionNotReady", Message: msg}
	default:
		out.Condition = api.Condition{Type: condType, Status: "True"}
	}
	return out
}

// pinned: a rollback with canaryTrafficPercent 0 keeps the latest at 0 %
// and sends everything to the previous revision.
func pinned(ts []TrafficTarget) bool { return len(ts) == 2 && ts[0].Percent == 0 }

func pinnedStatus(ts []api.TrafficTarget) bool {
	return len(ts) == 2 && ts[0].Percent != nil && *ts[0].Percent == 0
}

// ComponentOrder is the order components are planned and reported in.
var ComponentOrder = []string{api.ComponentPredictor, api.ComponentTransformer, api.ComponentExplainer}

// ServiceInput is an InferenceService as its caller sees it.
type ServiceInput struct {
	// Components by name; the predictor is required.
	Components map[string]Input
	// Previous are the conditions from the last plan (for transition times).
	Previous []api.Condition
	// Now stamps conditions whose status changed.
	Now time.Time
}

// ServiceOutput is the plan for a service.
type ServiceOutput struct {
	Components map[string]Output
	// Conditions: each component's, IngressReady (the predictor has a
	// revision to route to) and Ready, in that order.
	Conditions []api.Condition
}

// Service plans every component of a service and its conditions.
func Service(in ServiceInput) ServiceOutput {
	out := ServiceOutput{Components: map[string]Output{}}
	var conds []api.Condition
	allReady := true
	for _, name := range ComponentOrder {
		ci, ok := in.Components[name]
		if !ok {
			continue
		}
		co := Component(name, ci)
		out.Components[name] = co
		conds = append(conds, co.Condition)
		allReady = allReady && co.Condition.Status == "True"
	}
	ingress := api.Condition{Type: "IngressReady", Status: "True"}
	if len(out.Components[api.ComponentPredictor].Traffic) == 0 {
		ingress = api.Condition{Type: "IngressReady", Status: "False", Reason: "NoReadyRevision", Message: "the predictor has no ready revision to route to"}
		allReady = false
	}
	ready := api.Condition{Type: "Ready", Status: "True"}
	if !allReady {
		ready = api.Condition{Type: "Ready", Status: "False", Reason: "ComponentsNotReady", Message: "one or more components are not ready"}
	}
	out.Conditions = Transitions(in.Previous, in.Now, append(conds, ingress, ready))
	return out
}

// Transitions stamps each condition's lastTransitionTime: the old one
// while its status has not changed, now (to the second) otherwise, so an
// unchanged object plans to an identical status and no write.
func Transitions(old []api.Condition, now time.Time, conds []api.Condition) []api.Condition {
	now = now.UTC().Truncate(time.Second)
	for i := range conds {
		conds[i].LastTransitionTime = now
		for _, o := range old {
			if o.Type == conds[i].Type && o.Status == conds[i].Status {
				conds[i].LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	return conds
}
