package cli

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/controlplane"
	"github.com/ferryserve/ferry/internal/rollout"
	"github.com/ferryserve/ferry/internal/router"
)

// rolloutUpOptions are ferry up's flags for metric-driven rollouts.
type rolloutUpOptions struct {
	prometheusURL string
	tick          time.Duration
}

func (o *rolloutUpOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.prometheusURL, "prometheus-url", "", "Prometheus that scrapes this ferry up's /metrics, for rollout decisions (default: the ingress's own counters)")
	f.DurationVar(&o.tick, "rollout-tick", time.Second, "how often services with a rollout policy are examined")
}

// newRunner returns the rollout runner of ferry up: it reads the
// Prometheus at --prometheus-url, or the router's histogram in-process.
func (o rolloutUpOptions) newRunner(ctl *controlplane.Controller, rt *router.Router, log *slog.Logger) (*rollout.Runner, error) {
	var src rollout.Source
	if o.prometheusURL != "" {
		p, err := rollout.NewPrometheusSource(o.prometheusURL, router.LatencyMetricName)
		if err != nil {
			return nil, err
		}
		src = p
	} else {
		src = rollout.NewLocalSource(func(ns, rev string) rollout.Counters {
			return rollout.CountersFromSnapshot(rt.Stats(ns, rev).Latency.Snapshot())
		})
	}
	// Accuracy comes from the replicas' own windows (count-based, so a
	// Prometheus in between would add staleness and nothing else).
	q := rollout.ScraperQuality{Scraper: rt.QualityScraper()}
	return rollout.NewRunner(rollout.Config{Services: rolloutServices{ctl}, Metrics: src, Quality: q, Tick: o.tick, Logger: log}), nil
}

// rolloutServices is the control plane as the rollout runner sees it.
type rolloutServices struct{ ctl *controlplane.Controller }

var _ rollout.Services = rolloutServices{}

func (s rolloutServices) List(context.Context) ([]*api.InferenceService, error) {
	return s.ctl.InferenceServices()
}

// Apply writes a rollout step only onto the version of the service the
// runner read (controlplane.ErrConflict otherwise: the runner weighs the
// step again on its next tick), so an apply or a rollout pause that lands
// in between is not undone.
func (s rolloutServices) Apply(_ context.Context, isvc *api.InferenceService) error {
	if _, err := s.ctl.Update(isvc); err != nil {
		return err
	}
	s.ctl.Trigger()
	return nil
}

func (s rolloutServices) Event(ns, name, typ, reason, msg string) {
	s.ctl.Event(ns, name, typ, reason, msg)
}

// withIngressMetrics serves the control plane's metrics followed by the
// ingress's per-revision request duration histogram, its feedback counts
// and the replicas' model quality per revision
// (ferry_quality_*{namespace,service,revision,model}) on one endpoint, so
// one scrape job gets them all. Both halves are rendered in the plain text
// format (families do not overlap), which every Prometheus accepts.
func withIngressMetrics(cp http.Handler, rt *router.Router) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(rt.LatencyCollector(), rt.FeedbackCollector(),
		rt.QualityScraper().Collector())
	ingress := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		for _, h := range []http.Handler{cp, ingress} {
			in := r.Clone(r.Context())
			in.Header.Set("Accept", "text/plain;version=0.0.4")
			in.Header.Del("Accept-Encoding")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, in)
			if rec.Code != http.StatusOK {
				http.Error(w, rec.Body.String(), rec.Code)
				return
			}
			body.Write(rec.Body.Bytes())
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(body.Bytes())
	})
}
