package explain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/protocol"
	v2 "github.com/ferryserve/ferry/internal/protocol/v2"
	"github.com/ferryserve/ferry/internal/runtime"
)

// Handler serves POST /v1/models/{name}:explain and POST
// /v2/models/{name}/explain with an Explainer.
type Handler struct {
	x            *Explainer
	maxBodyBytes int64
	timeout      time.Duration
	log          *slog.Logger
}

// NewHandler wraps x; maxBodyBytes <= 0 means 100 MiB, timeout 0 none.
func NewHandler(x *Explainer, maxBodyBytes int64, timeout time.Duration, log *slog.Logger) *Handler {
	if maxBodyBytes <= 0 {
		maxBodyBytes = 100 << 20
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{x: x, maxBodyBytes: maxBodyBytes, timeout: timeout, log: log}
}

// Middleware answers the explain routes and passes every other request to
// next. The V1 route is "{name}:explain" in one path segment, which a
// ServeMux pattern cannot match beside V1's own "{name}:predict", hence a
// middleware rather than a route.
func (h *Handler) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, ok := ExplainPath(r.URL.Path); ok && r.Method == http.MethodPost {
			h.serve(w, r, name)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ExplainPath reports whether path is an explain route and of which model.
func ExplainPath(path string) (string, bool) {
	if rest, ok := strings.CutPrefix(path, "/v1/models/"); ok {
		if name, ok := strings.CutSuffix(rest, ":explain"); ok && name != "" && !strings.Contains(name, "/") {
			return name, true
		}
	}
	if rest, ok := strings.CutPrefix(path, "/v2/models/"); ok {
		if name, ok := strings.CutSuffix(rest, "/explain"); ok && name != "" && !strings.Contains(name, "/") {
			return name, true
		}
	}
	return "", false
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, name string) {
	start := time.Now()
	ctx := r.Context()
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBodyBytes))
	if err != nil {
		writeError(w, fmt.Errorf("%w: %w", protocol.ErrTooLarge, err))
		return
	}
	exp, err := h.explain(ctx, name, body)
	if err != nil {
		h.log.Warn("explain failed", "model", name, "type", h.x.cfg.Options.Type, "err", err)
		writeError(w, err)
		return
	}
	h.log.Debug("explained", "model", name, "type", h.x.cfg.Options.Type, "duration", time.Since(start))
	writeJSON(w, exp)
}

// explain decodes the body as the explainer's type takes it (images,
// texts or rows of numbers) and explains it.
func (h *Handler) explain(ctx context.Context, name string, body []byte) (any, error) {
	if IsImage(h.x.cfg.Options.Type) {
		req, err := DecodeImageRequest(body)
		if err != nil {
			return nil, err
		}
		return h.x.ExplainImage(ctx, name, req)
	}
	if IsText(h.x.cfg.Options.Type) {
		texts, err := DecodeTextRequest(body)
		if err != nil {
			return nil, err
		}
		return h.x.ExplainText(ctx, name, texts)
	}
	rows, err := DecodeRequest(body)
	if err != nil {
		return nil, err
	}
	if on, ok, err := RequestInteractions(body); err != nil {
		return nil, err
	} else if ok {
		return h.x.ExplainInteractions(ctx, name, rows, on)
	}
	return h.x.Explain(ctx, name, rows)
}

// writeJSON writes v without HTML escaping, so that anchors read
// "age <= 28.00" as Alibi writes them.
func writeJSON(w http.ResponseWriter, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeError(w, fmt.Errorf("encode explanation: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// writeError maps explain errors to statuses: predictor failures are 502
// (the explainer is a gateway to the predictor), bad requests 400, the
// rest as every Ferry protocol does.
func writeError(w http.ResponseWriter, err error) {
	var code int
	switch {
	case errors.Is(err, ErrBadInput), errors.Is(err, runtime.ErrInvalidInput):
		code = http.StatusBadRequest
	case errors.Is(err, ErrPredictor):
		code = http.StatusBadGateway
	case errors.Is(err, ErrConfig):
		code = http.StatusInternalServerError
	default:
		v2.WriteError(w, err)
		return
	}
	v2.WriteJSON(w, code, map[string]string{"error": err.Error()})
}
