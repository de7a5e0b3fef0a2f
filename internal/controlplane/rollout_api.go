package controlplane

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/rollout"
)

// Rollout routes of the management API (`ferry rollout`):
//
//	GET  /api/v1/namespaces/{ns}/inferenceservices/{name}/rollout
//	POST /api/v1/namespaces/{ns}/inferenceservices/{name}/rollout/{pause|resume|abort}
//
// They read and set annotations only; the rollout runner acts on them.
func (a *APIServer) rolloutRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/inferenceservices/{name}/rollout", a.rolloutStatus)
	mux.HandleFunc("POST /api/v1/namespaces/{ns}/inferenceservices/{name}/rollout/{action}", a.rolloutControl)
}

// RolloutStatus is what `ferry rollout status` shows.
type RolloutStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Policy holds the policy annotations as written.
	Policy map[string]string `json:"policy"`
	// PolicyError says why the policy is invalid, if it is.
	PolicyError          string               `json:"policyError,omitempty"`
	State                *rollout.State       `json:"state,omitempty"`
	Paused               bool                 `json:"paused"`
	RolledBack           string               `json:"rolledBack,omitempty"`
	CanaryTrafficPercent *int64               `json:"canaryTrafficPercent,omitempty"`
	Predictor            *api.ComponentStatus `json:"predictor,omitempty"`
}

func (a *APIServer) rolloutStatus(w http.ResponseWriter, r *http.Request) {
	isvc, ok := a.rolloutService(w, r)
	if !ok {
		return
	}
	ann := isvc.Metadata.Annotations
	out := RolloutStatus{Namespace: isvc.Metadata.Namespace, Name: isvc.Metadata.Name, Policy: map[string]string{},
		Paused: ann[rollout.AnnotationPaused] == "true", RolledBack: ann[rollout.AnnotationRolledBack],
		CanaryTrafficPercent: isvc.Spec.Predictor.CanaryTrafficPercent}
	for _, k := range []string{rollout.AnnotationSteps, rollout.AnnotationInterval, rollout.AnnotationObjectives, rollout.AnnotationMinRequests, rollout.AnnotationCompareStable, rollout.AnnotationMinLabelled} {
		if v, ok := ann[k]; ok {
			out.Policy[k] = v
		}
	}
	if _, err := rollout.ParsePolicy(ann); err != nil {
		out.PolicyError = err.Error()
	}
	if st, ok, err := rollout.ReadState(ann); err == nil && ok {
		out.State = &st
	}
	if isvc.Status != nil {
		if cs, ok := isvc.Status.Components[api.ComponentPredictor]; ok {
			out.Predictor = &cs
		}
	}
	writeJSON(w, 200, out)
}

func (a *APIServer) rolloutControl(w http.ResponseWriter, r *http.Request) {
	isvc, ok := a.rolloutService(w, r)
	if !ok {
		return
	}
	ann := isvc.Metadata.Annotations
	if _, has := ann[rollout.AnnotationSteps]; !has {
		writeErr(w, http.StatusConflict, fmt.Errorf("%s/%s has no rollout policy (annotation %s)", isvc.Metadata.Namespace, isvc.Metadata.Name, rollout.AnnotationSteps))
		return
	}
	next := make(map[string]string, len(ann)+1)
	for k, v := range ann {
		next[k] = v
	}
	switch action := r.PathValue("action"); action {
	case "pause":
		next[rollout.AnnotationPaused] = "true"
	case "resume":
		delete(next, rollout.AnnotationPaused)
	case "abort":
		next[rollout.AnnotationAbort] = "true"
		delete(next, rollout.AnnotationPaused) // an abort is carried out even when paused
	default:
		writeErr(w, http.StatusNotFound, fmt.Errorf("rollout action %q: want pause, resume or abort", action))
		return
	}
	isvc.Metadata.Annotations = next
	res, err := a.ctl.Apply(isvc)
	if err != nil {
		writeErr(w, 500, err)
		return
	}
	a.ctl.Trigger()
	writeJSON(w, 200, res)
}

func (a *APIServer) rolloutService(w http.ResponseWriter, r *http.Request) (*api.InferenceService, bool) {
	isvc, err := a.ctl.InferenceService(r.PathValue("ns"), r.PathValue("name"))
	switch {
	case errors.Is(err, ErrNotFound):
		writeErr(w, 404, err)
		return nil, false
	case err != nil:
		writeErr(w, 500, err)
		return nil, false
	}
	return isvc, true
}
