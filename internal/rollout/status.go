package rollout

import (
	"errors"
	"fmt"
	"maps"

	"github.com/ferryserve/ferry/internal/api"
)

// Status is what `ferry rollout status` and the console show of a
// service's rollout, under `ferry up` and the operator alike.
type Status struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Policy holds the policy annotations as written.
	Policy map[string]string `json:"policy"`
	// PolicyError says why the policy is invalid, if it is.
	PolicyError          string               `json:"policyError,omitempty"`
	State                *State               `json:"state,omitempty"`
	Paused               bool                 `json:"paused"`
	RolledBack           string               `json:"rolledBack,omitempty"`
	CanaryTrafficPercent *int64               `json:"canaryTrafficPercent,omitempty"`
	Predictor            *api.ComponentStatus `json:"predictor,omitempty"`
}

// StatusOf reads isvc's rollout from its annotations, spec and status.
func StatusOf(isvc *api.InferenceService) Status {
	ann := isvc.Metadata.Annotations
	out := Status{Namespace: isvc.Metadata.Namespace, Name: isvc.Metadata.Name, Policy: map[string]string{},
		Paused: ann[AnnotationPaused] == "true", RolledBack: ann[AnnotationRolledBack],
		CanaryTrafficPercent: isvc.Spec.Predictor.CanaryTrafficPercent}
	for _, k := range []string{AnnotationSteps, AnnotationInterval, AnnotationObjectives, AnnotationMinRequests, AnnotationCompareStable, AnnotationMinLabelled} {
		if v, ok := ann[k]; ok {
			out.Policy[k] = v
		}
	}
	if _, err := ParsePolicy(ann); err != nil {
		out.PolicyError = err.Error()
	}
	if st, ok, err := ReadState(ann); err == nil && ok {
		out.State = &st
	}
	if isvc.Status != nil {
		if cs, ok := isvc.Status.Components[api.ComponentPredictor]; ok {
			out.Predictor = &cs
		}
	}
	return out
}

// Errors of Control.
var (
	ErrNoPolicy      = errors.New("no rollout policy")
	ErrUnknownAction = errors.New("unknown rollout action")
)

// Control returns the annotations that carry out action (pause, resume
// or abort) on a service annotated ann; the runner acts on them. ann is
// not changed.
func Control(ann map[string]string, action string) (map[string]string, error) {
	if _, has := ann[AnnotationSteps]; !has {
		return nil, fmt.Errorf("%w (annotation %s)", ErrNoPolicy, AnnotationSteps)
	}
	next := maps.Clone(ann)
	switch action {
	case "pause":
		next[AnnotationPaused] = "true"
	case "resume":
		delete(next, AnnotationPaused)
	case "abort":
		next[AnnotationAbort] = "true"
		delete(next, AnnotationPaused) // an abort is carried out even when paused
	default:
		return nil, fmt.Errorf("%w %q: want pause, resume or abort", ErrUnknownAction, action)
	}
	return next, nil
}
