package server

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferryserve/ferry/internal/repository"
)

// Metrics holds the server's Prometheus collectors in their own registry
// (never the global one, so two servers in one test process do not clash).
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	loads     *prometheus.HistogramVec
	inflight  prometheus.Gauge
	modelsGot prometheus.GaugeFunc
	// cache holds the request series that ObserveRequest has used, so
	// that a request does not look its label values up in the vectors.
	cache seriesCache
}

// NewMetrics registers Ferry's metrics. repo, if not nil, backs the
// ferry_models_ready gauge (or attach it later with WatchRepository).
func NewMetrics(repo *repository.Repository) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.cache.m = m
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_requests_total",
		Help: "Inference requests by model, protocol and HTTP status code.",
	}, []string{"model", "protocol", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ferry_request_duration_seconds",
		Help:    "Inference request latency from decoded request to encoded response, by model, protocol and code.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"model", "protocol", "code"})
	m.loads = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ferry_model_load_duration_seconds",
		Help:    "Time to load one model version, by format and result.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	}, []string{"format", "result"})
	m.inflight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ferry_inflight_requests",
		Help: "Requests being served now (HTTP and gRPC).",
	})
	m.reg.MustRegister(m.requests, m.latency, m.loads, m.inflight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if repo != nil {
		m.WatchRepository(repo)
	}
	return m
}

// WatchRepository registers the ferry_models_ready gauge over repo; call it
// once.
func (m *Metrics) WatchRepository(repo *repository.Repository) {
	m.modelsGot = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ferry_models_ready",
		Help: "Model versions in the READY state.",
	}, func() float64 {
		n := 0
		for _, s := range repo.Index() {
			if s.State == repository.Ready {
				n++
			}
		}
		return float64(n)
	})
	m.reg.MustRegister(m.modelsGot)
}

// ObserveRequest records one inference request.
func (m *Metrics) ObserveRequest(model, proto string, err error, took time.Duration) {
	m.cache.ObserveRequest(model, proto, err, took)
}

// ObserveLoad records one model load; it fits repository.Config.OnLoad.
func (m *Metrics) ObserveLoad(_, format string, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.loads.WithLabelValues(format, result).Observe(took.Seconds())
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// InFlight wraps h to count requests in flight.
func (m *Metrics) InFlight(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.inflight.Inc()
		defer m.inflight.Dec()
		h.ServeHTTP(w, r)
	})
}

// RegisterCounters exposes counters read from fn under ferry_<prefix>_<name>_total,
// e.g. the request logger's queued, sent, retried and dropped events.
func (m *Metrics) RegisterCounters(prefix, help string, names []string, fn func() map[string]int64) {
	for _, n := range names {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ferry_" + prefix + "_" + n + "_total",
			Help: help + ": " + n + ".",
		}, func() float64 { return float64(fn()[n]) }))
	}
}
