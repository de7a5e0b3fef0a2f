package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ferryserve/ferry/internal/quality"
)

// IngressQuality is the answer to GET /v2/models/{name}/quality at the
// ingress: the model's quality windows of every predictor revision of the
// service, each merged over the revision's ready replicas, from the same
// reading /metrics and the rollout runner use (QualityScraper).
type IngressQuality struct {
	Namespace string                    `json:"namespace"`
	Service   string                    `json:"service"`
	Model     string                    `json:"model"`
	Revisions []quality.RevisionQuality `json:"revisions"`
}

// ingressQualityPath matches GET /v2/models/{name}/quality.
func ingressQualityPath(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/models/")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, "/quality")
	return name, ok && name != "" && !strings.Contains(name, "/")
}

// serveQuality answers a model's quality at the ingress from the replicas
// of the service's predictor revisions; it reports false for any other
// request. Each replica keeps its own windows (it journals what it
// answered), so one replica's GET /v2/models/{name}/quality shows only
// its share.
func (r *Router) serveQuality(w http.ResponseWriter, req *http.Request) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	model, ok := ingressQualityPath(req.URL.Path)
	if !ok {
		return false
	}
	rt, err := r.Resolve(req, Predictor)
	switch {
	case errors.Is(err, ErrNotReady):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, err)
		return true
	case err != nil:
		writeError(w, http.StatusNotFound, err)
		return true
	}
	svc := rt.Service
	out := IngressQuality{Namespace: svc.Namespace, Service: svc.Name, Model: model, Revisions: []quality.RevisionQuality{}}
	// The shared reading (at most one a second, whoever asks): a flood of
	// these GETs does not make the replicas compute their windows once
	// each. The reading outlives this request (each replica is read
	// within the scraper's client timeout), so a client that goes away
	// does not leave an empty reading for the others.
	for _, q := range r.QualityScraper().All(context.WithoutCancel(req.Context())) {
		if q.Namespace == svc.Namespace && q.Service == svc.Name && q.Model == model {
			out.Revisions = append(out.Revisions, q)
		}
	}
	if len(out.Revisions) == 0 {
		writeError(w, http.StatusNotFound, fmt.Errorf("no predictor replica of %s/%s reports quality for model %q: is quality monitoring on (annotation %s: \"true\") and has the model answered a prediction?",
			svc.Namespace, svc.Name, model, quality.Annotation))
		return true
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return true
}

// QualityScraper reads the quality windows of every predictor replica
// behind the router. It is shared by the ingress's quality route,
// `ferry up`'s /metrics and its rollout runner, so that they read the
// replicas at most once a second between them.
func (r *Router) QualityScraper() *quality.Scraper { return r.quality }
