package router

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LatencyBuckets are the upper bounds, in seconds, of the per-revision
// request duration histogram: fine below 250 ms, where latency objectives
// of a rollout usually sit.
var LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10}

// codeClasses are the response code classes the histogram is split by.
var codeClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// LatencyHistogram counts a revision's answered requests by response code
// class and duration, as the ingress saw them (proxying included). The
// zero value is ready; every method is safe for concurrent use and
// allocates nothing.
type LatencyHistogram struct {
	classes [len(codeClasses)]classHistogram
}

type classHistogram struct {
	buckets [16]atomic.Uint64 // len(LatencyBuckets) + the +Inf bucket, not cumulative
	count   atomic.Uint64
	sumNs   atomic.Uint64
}

// Observe records one answered request.
func (h *LatencyHistogram) Observe(code int, d time.Duration) {
	ci := code/100 - 1
	if ci < 0 || ci >= len(codeClasses) {
		ci = 4 // anything odd counts as a server error
	}
	c := &h.classes[ci]
	s := d.Seconds()
	i := 0
	for i < len(LatencyBuckets) && s > LatencyBuckets[i] {
		i++
	}
	c.buckets[i].Add(1)
	c.sumNs.Add(uint64(max(d, 0)))
	c.count.Add(1)
}

// LatencySnapshot is a LatencyHistogram's cumulative counts at one moment.
type LatencySnapshot struct {
	// Classes are keyed "2xx", "5xx", ...; classes never seen are absent.
	Classes map[string]ClassSnapshot
}

// ClassSnapshot is one code class: Buckets[i] counts requests no slower
// than LatencyBuckets[i] (cumulative, as Prometheus buckets are).
type ClassSnapshot struct {
	Count      uint64
	SumSeconds float64
	Buckets    []uint64
}

// Snapshot reads the histogram.
func (h *LatencyHistogram) Snapshot() LatencySnapshot {
	out := LatencySnapshot{Classes: map[string]ClassSnapshot{}}
	for ci := range h.classes {
		c := &h.classes[ci]
		n := c.count.Load()
		if n == 0 {
			continue
		}
		cs := ClassSnapshot{Count: n, SumSeconds: float64(c.sumNs.Load()) / 1e9, Buckets: make([]uint64, len(LatencyBuckets))}
		var cum uint64
		for i := range LatencyBuckets {
			cum += c.buckets[i].Load()
			cs.Buckets[i] = cum
		}
		out.Classes[codeClasses[ci]] = cs
	}
	return out
}

// track wraps w so that the request's status and duration reach h when
// the recorder's observe runs (serve defers it). One allocation: the
// recorder carries what a closure would capture.
func (h *LatencyHistogram) track(w http.ResponseWriter) *statusRecorder {
	return &statusRecorder{ResponseWriter: w, h: h, start: time.Now()}
}

// statusRecorder remembers the status code; Unwrap keeps Flush and
// friends reachable through http.ResponseController (the reverse proxy
// uses it to stream).
type statusRecorder struct {
	http.ResponseWriter
	code  int
	h     *LatencyHistogram
	start time.Time
}

func (s *statusRecorder) observe() {
	code := s.code
	if code == 0 {
		code = http.StatusOK // nothing written: net/http answers 200
	}
	s.h.Observe(code, time.Since(s.start))
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 && code >= 200 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// LatencyMetricName is the histogram's name on the metrics endpoint, with
// labels namespace, revision and response_code_class.
const LatencyMetricName = "ferry_revision_request_duration_seconds"

// LatencyCollector exports every revision's LatencyHistogram for
// Prometheus.
func (r *Router) LatencyCollector() prometheus.Collector { return latencyCollector{r} }

type latencyCollector struct{ r *Router }

var latencyDesc = prometheus.NewDesc(LatencyMetricName,
	"Duration of requests answered through the ingress, by revision and response code class.",
	[]string{"namespace", "revision", "response_code_class"}, nil)

func (latencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- latencyDesc }

func (c latencyCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.stats.Range(func(k, v any) bool {
		key := k.(string)
		ns, rev := key, ""
		for i := range len(key) {
			if key[i] == '/' {
				ns, rev = key[:i], key[i+1:]
				break
			}
		}
		for class, cs := range v.(*RevisionStats).Latency.Snapshot().Classes {
			b := make(map[float64]uint64, len(LatencyBuckets))
			for i, le := range LatencyBuckets {
				b[le] = cs.Buckets[i]
			}
			ch <- prometheus.MustNewConstHistogram(latencyDesc, cs.Count, cs.SumSeconds, b, ns, rev, class)
		}
		return true
	})
}
