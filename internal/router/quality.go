package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ferryserve/ferry/internal/quality"
)

// IngressQuality is the answer to GET /v2/models/{name}/quality at the
// ingress: the model's quality windows of every predictor revision of the
// service, each merged over the revision's ready replicas as /metrics
// merges them (quality.Scraper).
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
	var revs []quality.Replicas
	for _, t := range svc.Components[Predictor].Targets {
		if len(t.Backends) > 0 && !slices.ContainsFunc(revs, func(x quality.Replicas) bool { return x.Revision == t.Revision }) {
			revs = append(revs, quality.Replicas{Namespace: svc.Namespace, Service: svc.Name, Revision: t.Revision, Backends: slices.Clone(t.Backends)})
		}
	}
	// A scraper of this service's replicas only, read now (MaxAge does
	// not matter for a scraper read once).
	sc := quality.NewScraper(quality.ScraperConfig{Revisions: func() []quality.Replicas { return revs }, Logger: r.log})
	out := IngressQuality{Namespace: svc.Namespace, Service: svc.Name, Model: model, Revisions: []quality.RevisionQuality{}}
	for _, q := range sc.All(req.Context()) {
		if q.Model == model {
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
