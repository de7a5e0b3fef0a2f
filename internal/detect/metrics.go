package detect

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryserve/ferry/internal/detect/drift"
	"github.com/ferryserve/ferry/internal/detect/outlier"
)

type metrics struct {
	reg                       *prometheus.Registry
	events, rejected, replies *prometheus.CounterVec
	pval, distance            *prometheus.GaugeVec
	isDrift, windowRows       *prometheus.GaugeVec
	windows, droppedRows      *prometheus.CounterVec
	instances, outliers       *prometheus.CounterVec
	outlierRate               *prometheus.GaugeVec

	rateMu                      sync.Mutex // guards the two totals below
	seenInstances, seenOutliers map[string]float64
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_detect_events_total",
			Help: "CloudEvents received, by service and ce-type."}, []string{"service", "type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_detect_rejected_total",
			Help: "Events refused, by HTTP status."}, []string{"service", "code"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_detect_replies_total",
			Help: "Reply CloudEvents sent, by type and outcome."}, []string{"type", "outcome"}),
		pval: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_detect_drift_p_value",
			Help: "P-value of the last drift test, per feature (MMD: feature \"all\")."}, []string{"service", "feature"}),
		distance: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_detect_drift_distance",
			Help: "Statistic of the last drift test, per feature."}, []string{"service", "feature"}),
		isDrift: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_detect_drift",
			Help: "1 when the last tested window drifted, else 0."}, []string{"service"}),
		windowRows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_detect_window_rows",
			Help: "Rows collected in the open drift window."}, []string{"service"}),
		windows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_detect_drift_windows_total",
			Help: "Drift windows tested, by verdict."}, []string{"service", "drift"}),
		droppedRows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_detect_dropped_rows_total",
			Help: "Rows dropped without a drift test (time-closed windows below the minimum, failed tests)."}, []string{"service"}),
		instances: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_detect_instances_total",
			Help: "Instances scored for outliers."}, []string{"service"}),
		outliers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_detect_outliers_total",
			Help: "Instances flagged as outliers."}, []string{"service"}),
		outlierRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_detect_outlier_rate",
			Help: "Share of scored instances flagged as outliers since start."}, []string{"service"}),
		seenInstances: map[string]float64{}, seenOutliers: map[string]float64{},
	}
	m.reg.MustRegister(m.events, m.rejected, m.replies, m.pval, m.distance, m.isDrift, m.windowRows, m.windows, m.droppedRows, m.instances, m.outliers, m.outlierRate)
	return m
}

func (m *metrics) observeDrift(svc string, r drift.Result) {
	for i, p := range r.PVal {
		f := strconv.Itoa(i)
		if r.Name == "MMDDrift" {
			f = "all"
		}
		m.pval.WithLabelValues(svc, f).Set(p)
		m.distance.WithLabelValues(svc, f).Set(r.Distance[i])
	}
	v := 0.0
	if r.IsDrift {
		v = 1
	}
	m.isDrift.WithLabelValues(svc).Set(v)
	m.windows.WithLabelValues(svc, strconv.FormatBool(r.IsDrift)).Inc()
}

// observeOutliers counts one event's verdicts; the rate gauge divides
// running totals kept beside the counters, which cannot be read back.
func (m *metrics) observeOutliers(svc string, r outlier.Result) {
	var k float64
	for _, o := range r.IsOutlier {
		if o {
			k++
		}
	}
	m.instances.WithLabelValues(svc).Add(float64(len(r.IsOutlier)))
	m.outliers.WithLabelValues(svc).Add(k)
	m.rateMu.Lock()
	m.seenInstances[svc] += float64(len(r.IsOutlier))
	m.seenOutliers[svc] += k
	if n := m.seenInstances[svc]; n > 0 {
		m.outlierRate.WithLabelValues(svc).Set(m.seenOutliers[svc] / n)
	}
	m.rateMu.Unlock()
}
