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
type RolloutStatus = rollout.Status

func (a *APIServer) rolloutStatus(w http.ResponseWriter, r *http.Request) {
	isvc, ok := a.rolloutService(w, r)
	if !ok {
		return
	}
	writeJSON(w, 200, rollout.StatusOf(isvc))
}

// controlAttempts bounds the read-modify-write of a rollout control: each
// conflict means another write (a rollout step) landed in between.
const controlAttempts = 5

func (a *APIServer) rolloutControl(w http.ResponseWriter, r *http.Request) {
	for range controlAttempts {
		isvc, ok := a.rolloutService(w, r)
		if !ok {
			return
		}
		next, err := rollout.Control(isvc.Metadata.Annotations, r.PathValue("action"))
		switch {
		case errors.Is(err, rollout.ErrNoPolicy):
			writeErr(w, http.StatusConflict, fmt.Errorf("%s/%s has %w", isvc.Metadata.Namespace, isvc.Metadata.Name, err))
			return
		case err != nil:
			writeErr(w, http.StatusNotFound, err)
			return
		}
		isvc.Metadata.Annotations = next
		// Conditional, so a step the runner wrote since the read is kept.
		res, err := a.ctl.Update(isvc)
		switch {
		case errors.Is(err, ErrConflict):
			continue
		case errors.Is(err, ErrNotFound):
			writeErr(w, http.StatusNotFound, err)
			return
		case err != nil:
			writeErr(w, 500, err)
			return
		}
		a.ctl.Trigger()
		writeJSON(w, 200, res)
		return
	}
	writeErr(w, http.StatusConflict, fmt.Errorf("%s/%s kept changing while the rollout %s was written: %w",
		r.PathValue("ns"), r.PathValue("name"), r.PathValue("action"), ErrConflict))
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
