package quality

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// maxClassSeries bounds the per-class series of one revision, so a model
// with thousands of labels does not flood the scrape.
const maxClassSeries = 50

var (
	labelsRev   = []string{"model", "revision"}
	descWindow  = prometheus.NewDesc("ferry_quality_labelled_rows", "Labelled rows in the metrics window of a model revision.", labelsRev, nil)
	descMetric  = map[string]*prometheus.Desc{}
	metricNames = []string{"accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss", "roc_auc", "mae", "rmse", "r2"}
	descClass   = map[string]*prometheus.Desc{}
	descFB      = prometheus.NewDesc("ferry_quality_feedback_total", "Feedback records by outcome: received, joined, duplicate, expired, unknown, invalid.", []string{"model", "result"}, nil)
	descRec     = prometheus.NewDesc("ferry_quality_predictions_total", "Predictions journaled (recorded) or not (not_recorded: journal full, write error, outputs not understood).", []string{"result"}, nil)
	descOut     = prometheus.NewDesc("ferry_quality_predictions_remembered", "Predictions remembered in the journal's index (awaiting feedback, or joined and kept to count duplicates).", nil, nil)
	descBytes   = prometheus.NewDesc("ferry_quality_journal_bytes", "Size of the prediction journal on disk.", nil, nil)
)

func init() {
	for _, n := range metricNames {
		descMetric[n] = prometheus.NewDesc("ferry_quality_"+n, "Model quality over the labelled window: "+n+".", labelsRev, nil)
	}
	for _, n := range []string{"precision", "recall", "f1"} {
		descClass[n] = prometheus.NewDesc("ferry_quality_class_"+n, "Per-class "+n+" over the labelled window.", []string{"model", "revision", "class"}, nil)
	}
}

// Collector exposes a Monitor's metrics to Prometheus.
type Collector struct{ m *Monitor }

var _ prometheus.Collector = Collector{}

// Describe sends the fixed descriptors.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWindow
	for _, d := range descMetric {
		ch <- d
	}
	for _, d := range descClass {
		ch <- d
	}
	ch <- descFB
	ch <- descRec
	ch <- descOut
	ch <- descBytes
}

// Collect computes the windows' metrics now.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	for _, s := range c.m.Snapshots("") {
		gauge(descWindow, float64(s.Labelled), s.Model, s.Revision)
		if cl := s.Classification; cl != nil {
			gauge(descMetric["accuracy"], cl.Accuracy, s.Model, s.Revision)
			gauge(descMetric["precision_macro"], cl.PrecisionMacro, s.Model, s.Revision)
			gauge(descMetric["recall_macro"], cl.RecallMacro, s.Model, s.Revision)
			gauge(descMetric["f1_macro"], cl.F1Macro, s.Model, s.Revision)
			if cl.LogLoss != nil {
				gauge(descMetric["log_loss"], *cl.LogLoss, s.Model, s.Revision)
			}
			if cl.ROCAUC != nil {
				gauge(descMetric["roc_auc"], *cl.ROCAUC, s.Model, s.Revision)
			}
			if len(cl.PerClass) <= maxClassSeries {
				for _, pc := range cl.PerClass {
					gauge(descClass["precision"], pc.Precision, s.Model, s.Revision, pc.Label)
					gauge(descClass["recall"], pc.Recall, s.Model, s.Revision, pc.Label)
					gauge(descClass["f1"], pc.F1, s.Model, s.Revision, pc.Label)
				}
			}
		}
		if rg := s.Regression; rg != nil {
			gauge(descMetric["mae"], rg.MAE, s.Model, s.Revision)
			gauge(descMetric["rmse"], rg.RMSE, s.Model, s.Revision)
			if rg.R2 != nil {
				gauge(descMetric["r2"], *rg.R2, s.Model, s.Revision)
			}
		}
	}
	counter := func(d *prometheus.Desc, v int64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	fb := func(model string, k Counts) {
		counter(descFB, k.Received, model, "received")
		counter(descFB, k.Joined, model, "joined")
		counter(descFB, k.Duplicate, model, "duplicate")
		counter(descFB, k.Expired, model, "expired")
		counter(descFB, k.Unknown, model, "unknown")
		counter(descFB, k.Invalid, model, "invalid")
	}
	c.m.mu.Lock()
	per := make(map[string]Counts, len(c.m.models))
	for name, k := range c.m.models {
		per[name] = *k
	}
	c.m.mu.Unlock()
	total, _ := c.m.Counts("")
	var known Counts
	for name, k := range per {
		fb(name, k)
		known.Received += k.Received
		known.Joined += k.Joined
		known.Duplicate += k.Duplicate
		known.Expired += k.Expired
		known.Unknown += k.Unknown
		known.Invalid += k.Invalid
	}
	// Feedback for models with no recorded predictions: model="".
	fb("", Counts{
		Received: total.Received - known.Received, Joined: total.Joined - known.Joined,
		Duplicate: total.Duplicate - known.Duplicate, Expired: total.Expired - known.Expired,
		Unknown: total.Unknown - known.Unknown, Invalid: total.Invalid - known.Invalid,
	})
	counter(descRec, total.Recorded, "recorded")
	counter(descRec, total.NotRecorded, "not_recorded")
	n, size := c.m.Outstanding()
	gauge(descOut, float64(n))
	gauge(descBytes, float64(size))
}

// serveMetrics answers GET /metrics with the server's own metrics (asked
// of next in the text format and parsed back) and the quality metrics,
// encoded as the scraper asked.
func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request, next http.Handler) {
	inner := r.Clone(r.Context())
	inner.Header.Del("Accept")
	inner.Header.Del("Accept-Encoding")
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, inner)
	if rec.Code != http.StatusOK {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		h.cfg.Logger.Warn("quality: cannot merge the server's metrics", "err", err)
		http.Error(w, fmt.Sprintf("merge metrics: %v", err), http.StatusInternalServerError)
		return
	}
	server := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		out := make([]*dto.MetricFamily, 0, len(fams))
		for _, f := range fams {
			out = append(out, f)
		}
		return out, nil
	})
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(Collector{h.cfg.Monitor}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if h.cfg.Peers != nil {
		if err := reg.Register(h.cfg.Peers); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	promhttp.HandlerFor(prometheus.Gatherers{server, reg}, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}
