package attack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// HandlerConfig configures the HTTP side of the attack explainer.
type HandlerConfig struct {
	// Model is the {name} in the paths; Attack is the configuration every
	// request runs with.
	Model  string
	Attack Config
	// Predictor is the template of the predictor client: each request
	// copies it and sets the input shape.
	Predictor Predictor
	// MaxBodyBytes (default 8 MiB), MaxValues (numbers in one request,
	// default 1 million) and MaxInstances (default 100) bound a request;
	// Timeout (default 10 min) bounds one attack.
	MaxBodyBytes int64
	MaxValues    int
	MaxInstances int
	Timeout      time.Duration
	Logger       *slog.Logger
}

func (c *HandlerConfig) defaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 8 << 20
	}
	if c.MaxValues <= 0 {
		c.MaxValues = 1 << 20
	}
	if c.MaxInstances <= 0 {
		c.MaxInstances = 100
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// NewHandler serves the attack as KServe's explainer paths do:
// POST /v1/models/{name}:explain and /v2/models/{name}/explain (same body),
// model readiness on GET /v1/models/{name}, and health on /v2/health/live,
// /v2/health/ready and /healthz.
func NewHandler(cfg HandlerConfig) http.Handler {
	cfg.defaults()
	h := &handler{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/models/{op}", h.explainV1)
	mux.HandleFunc("POST /v2/models/{name}/explain", func(w http.ResponseWriter, r *http.Request) {
		h.explain(w, r, r.PathValue("name"))
	})
	mux.HandleFunc("GET /v1/models/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != cfg.Model {
			h.writeError(w, errNotFound(r.PathValue("name")))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": cfg.Model, "ready": true})
	})
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"models": []string{cfg.Model}})
	})
	alive := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "alive"})
	}
	mux.HandleFunc("GET /v2/health/live", alive)
	mux.HandleFunc("GET /v2/health/ready", alive)
	mux.HandleFunc("GET /healthz", alive)
	return mux
}

type handler struct{ cfg HandlerConfig }

var errUnknownModel = errors.New("model not found")

func errNotFound(name string) error { return fmt.Errorf("%w: %q", errUnknownModel, name) }

func (h *handler) explainV1(w http.ResponseWriter, r *http.Request) {
	op := r.PathValue("op")
	name, ok := cutSuffix(op, ":explain")
	if !ok {
		h.writeError(w, fmt.Errorf("%w: %s: an attack answers :explain only", ErrBadRequest, op))
		return
	}
	h.explain(w, r, name)
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

// explain: decode → validate → attack → encode.
func (h *handler) explain(w http.ResponseWriter, r *http.Request, name string) {
	if name != h.cfg.Model {
		h.writeError(w, errNotFound(name))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		h.writeError(w, err)
		return
	}
	req, err := DecodeRequest(body, h.cfg.MaxValues)
	if err != nil {
		h.writeError(w, err)
		return
	}
	if len(req.Inputs) > h.cfg.MaxInstances {
		h.writeError(w, fmt.Errorf("%w: %d instances, at most %d", ErrBadRequest, len(req.Inputs), h.cfg.MaxInstances))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	pred := h.cfg.Predictor // a copy per request: Shape differs
	pred.Shape = req.Shape
	start := time.Now()
	res, err := Run(ctx, &pred, h.cfg.Attack, req.Shape, req.Inputs, req.Labels, h.cfg.Logger)
	if err != nil {
		h.writeError(w, err)
		return
	}
	ok, queries := 0, 0
	for _, x := range res {
		queries += x.Queries
		if x.Success {
			ok++
		}
	}
	h.cfg.Logger.Info("attack served", "model", name, "type", h.cfg.Attack.Type, "instances", len(res), "succeeded", ok, "queries", queries, "duration", time.Since(start))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(EncodeResponse(req, h.cfg.Attack, res))
}

// writeError maps an error to its status: the one place that does.
func (h *handler) writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, errUnknownModel):
		code = http.StatusNotFound
	case errors.Is(err, ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	case errors.Is(err, ErrPredictor):
		code = http.StatusBadGateway
	}
	if code >= 500 {
		h.cfg.Logger.Error("attack failed", "status", code, "err", err)
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
