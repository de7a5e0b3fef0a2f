package controlplane

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"net/http"
)

// RevisionCounters reads the ingress counters of a revision.
type RevisionCounters func(namespace, revision string) (inFlight int64, requests uint64)

// metricsCollector reports per-revision autoscaling state at scrape time,
// named after Knative's autoscaler metrics.
type metricsCollector struct {
	ctl      *Controller
	counters RevisionCounters
	waiting  func() int64

	desired, actual, ready, panic, inflight, requests, activator *prometheus.Desc
}

// MetricsHandler serves the control plane's Prometheus metrics: desired,
// actual and ready replicas, panic mode, requests in flight and served per
// revision, and requests the activator is holding.
func (c *Controller) MetricsHandler(counters RevisionCounters, waiting func() int64) http.Handler {
	labels := []string{"namespace", "service", "revision"}
	m := &metricsCollector{
		ctl: c, counters: counters, waiting: waiting,
		desired:   prometheus.NewDesc("ferry_autoscaler_desired_replicas", "Replicas the autoscaler wants for a revision.", labels, nil),
		actual:    prometheus.NewDesc("ferry_autoscaler_actual_replicas", "Replicas running for a revision.", labels, nil),
		ready:     prometheus.NewDesc("ferry_revision_ready_replicas", "Replicas passing readiness.", labels, nil),
		panic:     prometheus.NewDesc("ferry_autoscaler_panic_mode", "1 while the autoscaler is in panic mode for a revision.", labels, nil),
		inflight:  prometheus.NewDesc("ferry_revision_requests_in_flight", "Requests in flight through the ingress (the autoscaler's concurrency).", labels, nil),
		requests:  prometheus.NewDesc("ferry_revision_requests_total", "Requests routed to a revision.", labels, nil),
		activator: prometheus.NewDesc("ferry_activator_requests_waiting", "Requests held until a revision at zero has a ready replica.", nil, nil),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

func (m *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.desired, m.actual, m.ready, m.panic, m.inflight, m.requests, m.activator} {
		ch <- d
	}
}

func (m *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	m.ctl.mu.Lock()
	sets := make(map[string]Replicas, len(m.ctl.running))
	for k, s := range m.ctl.running {
		sets[k] = s
	}
	m.ctl.mu.Unlock()
	for k, s := range sets {
		parts := strings.Split(k, "/") // ns/name/component/revision
		if len(parts) != 4 {
			continue
		}
		ns, svc, rev := parts[0], parts[1], parts[3]
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, ns, svc, rev)
		}
		gauge(m.actual, float64(len(s.Status())))
		gauge(m.ready, float64(len(s.Backends())))
		if a := m.ctl.cfg.Autoscaler; a != nil {
			d, p := a.State(ns, rev)
			gauge(m.desired, float64(d))
			pv := 0.0
			if p {
				pv = 1
			}
			gauge(m.panic, pv)
		}
		if m.counters != nil {
			in, total := m.counters(ns, rev)
			gauge(m.inflight, float64(in))
			ch <- prometheus.MustNewConstMetric(m.requests, prometheus.CounterValue, float64(total), ns, svc, rev)
		}
	}
	if m.waiting != nil {
		ch <- prometheus.MustNewConstMetric(m.activator, prometheus.GaugeValue, float64(m.waiting()))
	}
}
