package fairness

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HandlerConfig configures the bias detector's HTTP API.
type HandlerConfig struct {
	// Metrics is the validated fairness configuration.
	Metrics *Config
	// ModelName is the {name} in /v1/models/{name}:predict.
	ModelName string
	// MaxBodyBytes bounds a request body (413 beyond); 0 means 8 MiB.
	MaxBodyBytes int64
	// MaxInstances bounds the instances of one request (consistency is
	// quadratic in them); 0 means 10 000.
	MaxInstances int
	Logger       *slog.Logger
	// Windows, when set, also takes the request logger's CloudEvents at
	// POST / and exports its gauges at GET /metrics.
	Windows *Windows
	// Predict, when set, is asked for the outputs of a request that has
	// none (KServe's bias detector always needs them).
	Predict PredictFunc
}

// Handler serves KServe's V1 protocol as KServe's AIF bias detector does:
// POST /v1/models/{name}:predict (or :explain) with {"instances",
// "outputs"} answers {"predictions": outputs, "metrics": {...}}; GET
// /v1/models/{name} reports readiness, GET /healthz liveness.
func Handler(cfg HandlerConfig) (http.Handler, error) {
	if cfg.Metrics == nil || cfg.ModelName == "" {
		return nil, errors.New("fairness: handler needs metrics configuration and a model name")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 8 << 20
	}
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/models/{call}", h.predict)
	mux.HandleFunc("GET /v1/models/{name}", h.ready)
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string][]string{"models": {cfg.ModelName}})
	})
	if cfg.Windows != nil {
		mux.Handle("POST /{$}", cfg.Windows)
		mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Windows.Registry(), promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	return mux, nil
}

type handler struct{ cfg HandlerConfig }

func (h *handler) ready(w http.ResponseWriter, r *http.Request) {
	if name := r.PathValue("name"); name != h.cfg.ModelName {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q not found (this detector serves %q)", name, h.cfg.ModelName))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": h.cfg.ModelName, "ready": true})
}

func (h *handler) predict(w http.ResponseWriter, r *http.Request) {
	name, verb, ok := strings.Cut(r.PathValue("call"), ":")
	if !ok || (verb != "predict" && verb != "explain") {
		writeError(w, http.StatusNotFound, "want POST /v1/models/{name}:predict or :explain")
		return
	}
	if name != h.cfg.ModelName {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q not found (this detector serves %q)", name, h.cfg.ModelName))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	req, err := decodeRequest(body, len(h.cfg.Metrics.Features), h.cfg.MaxInstances, h.cfg.Predict == nil)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	asked := req.Outputs == nil
	if asked {
		if req.Outputs, err = h.cfg.Predict(r.Context(), req.Instances); err != nil {
			h.cfg.Logger.Error("predictor call failed", "err", err)
			writeError(w, http.StatusBadGateway, err.Error())
			return
		}
	}
	resp, err := Evaluate(h.cfg.Metrics, req)
	if err != nil {
		if asked { // the predictor's labels are not the configured ones
			writeError(w, http.StatusBadGateway, "predictor outputs: "+err.Error())
			return
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	h.cfg.Logger.Debug("fairness computed", "instances", len(req.Instances),
		"statistical_parity_difference", resp.Metrics.StatisticalParityDifference, "disparate_impact", resp.Metrics.DisparateImpact)
	writeJSON(w, http.StatusOK, resp)
}

// Response is the bias detector's answer.
type Response struct {
	Predictions []float64   `json:"predictions"`
	Metrics     WireMetrics `json:"metrics"`
}

// WireMetrics are the metrics under KServe's names. Undefined ratios (a
// group with no instances or no favourable outcome) are null, where AIF360
// would give NaN or Infinity, which JSON cannot carry. Consistency is a
// one-element list, as AIF360's consistency().tolist() is. The
// classification metrics appear only when the request has true labels.
type WireMetrics struct {
	BaseRate                    Num   `json:"base_rate"`
	Consistency                 []Num `json:"consistency"`
	DisparateImpact             Num   `json:"disparate_impact"`
	NumInstances                Num   `json:"num_instances"`
	NumNegatives                Num   `json:"num_negatives"`
	NumPositives                Num   `json:"num_positives"`
	StatisticalParityDifference Num   `json:"statistical_parity_difference"`
	BaseRatePrivileged          Num   `json:"base_rate_privileged"`
	BaseRateUnprivileged        Num   `json:"base_rate_unprivileged"`
	EqualOpportunityDifference  *Num  `json:"equal_opportunity_difference,omitempty"`
	AverageOddsDifference       *Num  `json:"average_odds_difference,omitempty"`
	Accuracy                    *Num  `json:"accuracy,omitempty"`
	AccuracyPrivileged          *Num  `json:"accuracy_privileged,omitempty"`
	AccuracyUnprivileged        *Num  `json:"accuracy_unprivileged,omitempty"`
}

// Num is a metric value; NaN and ±Inf are written as null.
type Num float64

// MarshalJSON writes null for values JSON cannot hold.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// Evaluate computes a request's response.
func Evaluate(c *Config, req Request) (Response, error) {
	d, err := c.Dataset(req.Instances, req.Outputs)
	if err != nil {
		return Response{}, err
	}
	m := WireMetrics{
		BaseRate: Num(d.BaseRate), Consistency: []Num{Num(d.Consistency)}, DisparateImpact: Num(d.DisparateImpact),
		NumInstances: Num(d.NumInstances), NumNegatives: Num(d.NumNegatives), NumPositives: Num(d.NumPositives),
		StatisticalParityDifference: Num(d.StatisticalParityDifference),
		BaseRatePrivileged:          Num(d.BaseRatePrivileged), BaseRateUnprivileged: Num(d.BaseRateUnprivileged),
	}
	if req.Labels != nil {
		cl, err := c.Classification(req.Instances, req.Labels, req.Outputs)
		if err != nil {
			return Response{}, err
		}
		num := func(f float64) *Num { n := Num(f); return &n }
		m.EqualOpportunityDifference = num(cl.EqualOpportunityDifference)
		m.AverageOddsDifference = num(cl.AverageOddsDifference)
		m.Accuracy, m.AccuracyPrivileged, m.AccuracyUnprivileged = num(cl.Accuracy), num(cl.AccuracyPrivileged), num(cl.AccuracyUnprivileged)
	}
	return Response{Predictions: req.Outputs, Metrics: m}, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
