package fairness

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryserve/ferry/internal/detect"
)

// WindowConfig configures continuous fairness over logged traffic.
type WindowConfig struct {
	// Metrics is the validated fairness configuration.
	Metrics *Config
	// Size is the instances per window (500 when 0).
	Size int
	// MaxPending bounds the events waiting for their other half (a request
	// for its response or the reverse); the oldest is dropped beyond it.
	// 10 000 when 0.
	MaxPending int
	// MaxBodyBytes bounds an event body (413 beyond); 8 MiB when 0.
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// Windows joins the request logger's request and response CloudEvents by
// ce-id (the instances come with the request, the predictions with the
// response), collects the pairs per InferenceService into windows of
// Size instances and publishes each full window's metrics as Prometheus
// gauges. State is in memory: a restart drops open windows and unjoined
// events.
type Windows struct {
	cfg WindowConfig
	reg *prometheus.Registry

	mu      sync.Mutex // guards the fields below
	pending map[string]*half
	order   []string // pending keys, oldest first; may hold joined keys
	open    map[string]*window

	events, dropped, windows *prometheus.CounterVec
	spd, di, consistency     *prometheus.GaugeVec
	baseRate, filling        *prometheus.GaugeVec
}

type half struct {
	rows    [][]float64
	outputs []float64
}

type window struct {
	rows    [][]float64
	outputs []float64
}

// NewWindows validates cfg and registers the gauges in a new registry.
func NewWindows(cfg WindowConfig) (*Windows, error) {
	if cfg.Metrics == nil {
		return nil, errors.New("fairness: windows need a metrics configuration")
	}
	if cfg.Size == 0 {
		cfg.Size = 500
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 10000
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 8 << 20
	}
	if cfg.Size < 1 || cfg.MaxPending < 1 {
		return nil, fmt.Errorf("fairness: window size %d and pending bound %d must be positive", cfg.Size, cfg.MaxPending)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, append([]string{"service"}, labels...))
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append([]string{"service"}, labels...))
	}
	w := &Windows{
		cfg: cfg, reg: prometheus.NewRegistry(),
		pending: map[string]*half{}, open: map[string]*window{},
		events:      counter("ferry_fairness_events_total", "CloudEvents received, by ce-type.", "type"),
		dropped:     counter("ferry_fairness_unjoined_dropped_total", "Events dropped before their request or response arrived (pending bound)."),
		windows:     counter("ferry_fairness_windows_total", "Windows evaluated."),
		spd:         gauge("ferry_fairness_statistical_parity_difference", "Statistical parity difference of the last full window (unprivileged minus privileged base rate)."),
		di:          gauge("ferry_fairness_disparate_impact", "Disparate impact of the last full window (NaN or +Inf when undefined)."),
		consistency: gauge("ferry_fairness_consistency", "k-NN consistency of the last full window."),
		baseRate:    gauge("ferry_fairness_base_rate", "Base rate of the last full window, overall and per group.", "group"),
		filling:     gauge("ferry_fairness_window_instances", "Instances in the open window."),
	}
	w.reg.MustRegister(w.events, w.dropped, w.windows, w.spd, w.di, w.consistency, w.baseRate, w.filling)
	return w, nil
}

// Registry holds the fairness gauges.
func (w *Windows) Registry() *prometheus.Registry { return w.reg }

// ServeHTTP takes one binary-mode CloudEvent and acknowledges it (200)
// once it is held: as a pending half, or joined into a window.
func (w *Windows) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	h := r.Header
	svc := serviceOf(h)
	id, typ := h.Get("Ce-Id"), h.Get("Ce-Type")
	switch {
	case h.Get("Ce-Specversion") != "1.0":
		writeError(rw, http.StatusBadRequest, fmt.Sprintf("ce-specversion %q: want a binary-mode CloudEvent 1.0", h.Get("Ce-Specversion")))
		return
	case id == "":
		writeError(rw, http.StatusBadRequest, "missing ce-id")
		return
	case typ != detect.TypeRequest && typ != detect.TypeResponse:
		writeError(rw, http.StatusBadRequest, fmt.Sprintf("ce-type %q: want %s or %s", typ, detect.TypeRequest, detect.TypeResponse))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, w.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(rw, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooBig.Limit))
			return
		}
		writeError(rw, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	var part half
	if typ == detect.TypeRequest {
		part.rows, err = detect.Rows(body, 1<<24)
		if err == nil && len(part.rows[0]) != len(w.cfg.Metrics.Features) {
			err = fmt.Errorf("%w: instances have %d values, want %d (one per feature name)", ErrBadInput, len(part.rows[0]), len(w.cfg.Metrics.Features))
		}
	} else {
		part.outputs, err = Predictions(body)
		if err == nil {
			err = w.cfg.Metrics.checkLabels("predictions", part.outputs)
		}
	}
	if err != nil {
		writeError(rw, http.StatusBadRequest, err.Error())
		return
	}
	w.events.WithLabelValues(svc, typ).Inc()
	if err := w.add(svc, id, part); err != nil {
		writeError(rw, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(rw, http.StatusOK, map[string]string{"held": id})
}

// add keeps a half until its partner comes, then adds the pair to the
// service's window and evaluates the window when full (outside the lock:
// consistency is quadratic).
func (w *Windows) add(svc, id string, part half) error {
	key := svc + "\x00" + id
	w.mu.Lock()
	other, ok := w.pending[key]
	if !ok {
		w.pending[key] = &part
		w.order = append(w.order, key)
		w.evictLocked()
		w.mu.Unlock()
		return nil
	}
	delete(w.pending, key)
	rows, outputs := part.rows, part.outputs
	if rows == nil {
		rows = other.rows
	}
	if outputs == nil {
		outputs = other.outputs
	}
	if len(rows) != len(outputs) || (part.rows != nil) == (other.rows != nil) {
		w.mu.Unlock()
		return fmt.Errorf("%w: event %s: %d instances and %d predictions (or two events of one type)", ErrBadInput, id, len(rows), len(outputs))
	}
	win := w.open[svc]
	if win == nil {
		win = &window{}
		w.open[svc] = win
	}
	win.rows = append(win.rows, rows...)
	win.outputs = append(win.outputs, outputs...)
	var full *window
	if len(win.rows) >= w.cfg.Size {
		full = win
		delete(w.open, svc)
		w.filling.WithLabelValues(svc).Set(0)
	} else {
		w.filling.WithLabelValues(svc).Set(float64(len(win.rows)))
	}
	w.mu.Unlock()
	if full != nil {
		w.evaluate(svc, full)
	}
	return nil
}

// evictLocked drops the oldest pending halves beyond the bound and
// compacts the order queue when it is mostly joined keys.
func (w *Windows) evictLocked() {
	for len(w.pending) > w.cfg.MaxPending && len(w.order) > 0 {
		k := w.order[0]
		w.order = w.order[1:]
		if _, ok := w.pending[k]; ok {
			delete(w.pending, k)
			svc, _, _ := strings.Cut(k, "\x00")
			w.dropped.WithLabelValues(svc).Inc()
		}
	}
	if len(w.order) > 2*w.cfg.MaxPending {
		kept := w.order[:0]
		for _, k := range w.order {
			if _, ok := w.pending[k]; ok {
				kept = append(kept, k)
			}
		}
		w.order = kept
	}
}

func (w *Windows) evaluate(svc string, win *window) {
	m, err := w.cfg.Metrics.Dataset(win.rows, win.outputs)
	if err != nil {
		w.cfg.Logger.Warn("fairness window dropped", "service", svc, "instances", len(win.rows), "err", err)
		return
	}
	w.windows.WithLabelValues(svc).Inc()
	w.spd.WithLabelValues(svc).Set(m.StatisticalParityDifference)
	w.di.WithLabelValues(svc).Set(m.DisparateImpact)
	w.consistency.WithLabelValues(svc).Set(m.Consistency)
	w.baseRate.WithLabelValues(svc, "all").Set(m.BaseRate)
	w.baseRate.WithLabelValues(svc, "privileged").Set(m.BaseRatePrivileged)
	w.baseRate.WithLabelValues(svc, "unprivileged").Set(m.BaseRateUnprivileged)
	w.cfg.Logger.Info("fairness window", "service", svc, "instances", len(win.rows),
		"statistical_parity_difference", m.StatisticalParityDifference, "disparate_impact", m.DisparateImpact)
}

// Pending reports the halves waiting for their partner and the instances
// in open windows, as a restart would drop them.
func (w *Windows) Pending() (events, instances int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, win := range w.open {
		instances += len(win.rows)
	}
	return len(w.pending), instances
}

func serviceOf(h http.Header) string {
	svc := h.Get("Ce-Inferenceservicename")
	if svc == "" {
		svc = "unknown"
	}
	if ns := h.Get("Ce-Namespace"); ns != "" {
		svc = ns + "/" + svc
	}
	return svc
}

// Predictions reads one label per instance from a response body: V1
// {"predictions": [...]} (numbers or one-number arrays) or V2 {"outputs":
// [...]} (the first output's data, flat or nested).
func Predictions(body []byte) ([]float64, error) {
	var resp struct {
		Predictions []json.RawMessage `json:"predictions"`
		Outputs     []struct {
			Name string          `json:"name"`
			Data json.RawMessage `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("%w: response body: %w", ErrBadInput, err)
	}
	switch {
	case len(resp.Predictions) > 0:
		return scalars("predictions", resp.Predictions, len(resp.Predictions))
	case len(resp.Outputs) > 0:
		var flat []json.RawMessage
		if err := json.Unmarshal(resp.Outputs[0].Data, &flat); err != nil {
			return nil, fmt.Errorf("%w: output %q: data is not an array", ErrBadInput, resp.Outputs[0].Name)
		}
		return scalars("outputs[0].data", flat, len(flat))
	}
	return nil, fmt.Errorf("%w: response has neither \"predictions\" (V1) nor \"outputs\" (V2)", ErrBadInput)
}

var _ http.Handler = (*Windows)(nil)
