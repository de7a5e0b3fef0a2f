package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryserve/ferry/internal/quality"
)

// Feedback through the ingress (model quality, docs/quality.md). A
// prediction is journaled by the replica that answered it, and feedback
// must reach that replica. The request id a client sends feedback with is
// often its own (an order number) and carries no revision or replica, so
// the ingress cannot route by it. It fans the feedback out instead: the
// same body goes to every ready replica of every revision of the service's
// predictor, and the answers are merged record by record
// (quality.SendFeedback and quality.MergeAnswers, which ferry serve's own
// forwarding to its peers uses too), so a record is unknown only if no
// replica knew its id. The cost is one small request per replica per feedback batch,
// which batching amortises; predictions stay on their fast path untouched.

// maxFeedbackBody bounds a feedback body at the ingress, as ferry serve's
// default --quality-max-feedback-bytes does.
const maxFeedbackBody = 8 << 20

// defaultFeedbackTimeout bounds the fan-out when the predictor has no
// timeout of its own.
const defaultFeedbackTimeout = 30 * time.Second

// feedbackCounts are one service's merged feedback outcomes.
type feedbackCounts struct {
	received, joined, duplicate, expired, unknown, invalid atomic.Int64
}

func (c *feedbackCounts) add(k quality.Counts) {
	c.received.Add(k.Received)
	c.joined.Add(k.Joined)
	c.duplicate.Add(k.Duplicate)
	c.expired.Add(k.Expired)
	c.unknown.Add(k.Unknown)
	c.invalid.Add(k.Invalid)
}

func (r *Router) feedbackCounts(namespace, service string) *feedbackCounts {
	k := namespace + "/" + service
	if v, ok := r.feedback.Load(k); ok {
		return v.(*feedbackCounts)
	}
	v, _ := r.feedback.LoadOrStore(k, &feedbackCounts{})
	return v.(*feedbackCounts)
}

// serveFeedback answers a feedback POST by fanning it out; it reports
// false for any other request.
func (r *Router) serveFeedback(w http.ResponseWriter, req *http.Request) bool {
	if req.Method != http.MethodPost {
		return false
	}
	if _, ok := quality.FeedbackPath(req.URL.Path); !ok {
		return false
	}
	rt, err := r.Resolve(req, Predictor) // the predictor journals, not a transformer
	switch {
	case errors.Is(err, ErrNotReady):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, err)
		return true
	case err != nil:
		writeError(w, http.StatusNotFound, err)
		return true
	}
	svc, comp := rt.Service, rt.Service.Components[Predictor]
	var backends []string
	for _, t := range comp.Targets {
		for _, b := range t.Backends {
			if !slices.Contains(backends, b) {
				backends = append(backends, b)
			}
		}
	}
	if len(backends) == 0 {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("%w: %s/%s has no ready predictor replica to take feedback", ErrNoReplica, svc.Namespace, svc.Name))
		return true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxFeedbackBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("feedback body larger than %d bytes", mbe.Limit))
			return true
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("read feedback body: %w", err))
		return true
	}
	timeout := comp.Timeout
	if timeout <= 0 {
		timeout = defaultFeedbackTimeout
	}
	ctx, cancel := context.WithTimeout(req.Context(), timeout)
	defer cancel()
	answers := quality.SendFeedback(ctx, r.proxy.Transport, backends, req.URL.RequestURI(), body, nil)
	r.mergeAnswers(w, svc, answers)
	return true
}

// mergeAnswers writes the merged answer (quality.MergeAnswers): the
// records' best outcomes when any replica took the feedback; else a
// replica's own refusal of the body (400, 413: every replica refuses the
// same body alike); else 502.
func (r *Router) mergeAnswers(w http.ResponseWriter, svc *Service, answers []quality.Answer) {
	m, err := quality.MergeAnswers(nil, answers)
	switch {
	case err != nil:
		writeError(w, http.StatusBadGateway, err)
	case m.Took:
		r.feedbackCounts(svc.Namespace, svc.Name).add(m.Response.Counts)
		if len(m.Errs) > 0 {
			r.log.Warn("feedback not taken by every replica", "service", svc.Namespace+"/"+svc.Name, "err", errors.Join(m.Errs...))
		}
		b, _ := json.Marshal(m.Response)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(quality.HeaderQuality, "on")
		_, _ = w.Write(b)
	case m.Refusal != nil:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(quality.HeaderQuality, "on")
		w.WriteHeader(m.Refusal.Code)
		_, _ = w.Write(m.Refusal.Body)
	default:
		writeError(w, http.StatusBadGateway, fmt.Errorf("no predictor replica of %s/%s took the feedback (is quality monitoring on? annotation serving.ferryserve.io/quality: \"true\"): %w",
			svc.Namespace, svc.Name, errors.Join(m.Errs...)))
	}
}

// PredictorReplicas lists every revision of every service's predictor
// that has ready replicas, with their addresses: where the quality windows
// are (quality.Scraper reads them).
func (r *Router) PredictorReplicas() []quality.Replicas {
	ix := r.ix.Load()
	var out []quality.Replicas
	for _, svc := range ix.services {
		c := svc.Components[Predictor]
		if c == nil {
			continue
		}
		for _, t := range c.Targets {
			if len(t.Backends) == 0 || slices.ContainsFunc(out, func(x quality.Replicas) bool {
				return x.Namespace == svc.Namespace && x.Service == svc.Name && x.Revision == t.Revision
			}) {
				continue
			}
			out = append(out, quality.Replicas{Namespace: svc.Namespace, Service: svc.Name, Revision: t.Revision, Backends: slices.Clone(t.Backends)})
		}
	}
	return out
}

// FeedbackCollector exports the merged feedback outcomes per service as
// ferry_ingress_feedback_total{namespace, service, result}. (The replicas'
// own counters count every fanned-out record they did not know as
// unknown; these count each record once.)
func (r *Router) FeedbackCollector() prometheus.Collector { return feedbackCollector{r} }

type feedbackCollector struct{ r *Router }

var feedbackDesc = prometheus.NewDesc("ferry_ingress_feedback_total",
	"Feedback records through the ingress by merged outcome: received, joined, duplicate, expired, unknown, invalid.",
	[]string{"namespace", "service", "result"}, nil)

func (feedbackCollector) Describe(ch chan<- *prometheus.Desc) { ch <- feedbackDesc }

func (c feedbackCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.feedback.Range(func(k, v any) bool {
		ns, name := splitKey(k.(string))
		fc := v.(*feedbackCounts)
		for _, x := range []struct {
			result string
			n      *atomic.Int64
		}{{"received", &fc.received}, {"joined", &fc.joined}, {"duplicate", &fc.duplicate}, {"expired", &fc.expired}, {"unknown", &fc.unknown}, {"invalid", &fc.invalid}} {
			ch <- prometheus.MustNewConstMetric(feedbackDesc, prometheus.CounterValue, float64(x.n.Load()), ns, name, x.result)
		}
		return true
	})
}

func splitKey(k string) (string, string) {
	for i := range len(k) {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

// FeedbackCounts returns the merged feedback outcomes of a service.
func (r *Router) FeedbackCounts(namespace, service string) quality.Counts {
	v, ok := r.feedback.Load(namespace + "/" + service)
	if !ok {
		return quality.Counts{}
	}
	fc := v.(*feedbackCounts)
	return quality.Counts{Received: fc.received.Load(), Joined: fc.joined.Load(), Duplicate: fc.duplicate.Load(),
		Expired: fc.expired.Load(), Unknown: fc.unknown.Load(), Invalid: fc.invalid.Load()}
}
