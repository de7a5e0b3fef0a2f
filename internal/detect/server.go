package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferryserve/ferry/internal/detect/drift"
	"github.com/ferryserve/ferry/internal/detect/outlier"
)

// CloudEvent types: what the request logger sends, and what the detector
// replies with (the names alibi-detect's server uses under KServe).
const (
	TypeRequest  = "org.kubeflow.serving.inference.request"
	TypeResponse = "org.kubeflow.serving.inference.response"
	TypeOutlier  = "org.kubeflow.serving.inference.outlier"
	TypeDrift    = "org.kubeflow.serving.inference.drift"
)

// Config configures a Server. At least one of Drift and Outlier is set.
type Config struct {
	// Addr is the listen address (e.g. ":8080"); Listener, when set, is
	// used instead.
	Addr     string
	Listener net.Listener
	// ReplyURL receives a CloudEvent per verdict; empty sends none.
	ReplyURL string
	Drift    drift.Detector
	Outlier  outlier.Detector
	// WindowSize is the number of rows per drift test (default 500).
	WindowSize int
	// WindowDuration, when positive, also tests a window once its first
	// row is this old, however few rows it holds (at least MinWindow).
	WindowDuration time.Duration
	// MinWindow is the fewest rows a time-closed window is tested with
	// (default 2); smaller ones are dropped and counted.
	MinWindow int
	// MaxBodyBytes bounds an event body (default 8 MiB); MaxValues bounds
	// the numbers in it (default 1 million).
	MaxBodyBytes int64
	MaxValues    int
	// ReplyTimeout bounds one reply delivery (default 10 s).
	ReplyTimeout time.Duration
	Client       *http.Client
	Logger       *slog.Logger
	// Version is reported in replies' meta.
	Version string
}

// Validate fills defaults and checks cfg.
func (c *Config) Validate() error {
	if c.Drift == nil && c.Outlier == nil {
		return errors.New("detect: configure a drift or an outlier detector")
	}
	if c.Drift != nil && c.Outlier != nil && c.Drift.Features() != c.Outlier.Features() {
		return fmt.Errorf("detect: drift reference has %d features, outlier reference %d", c.Drift.Features(), c.Outlier.Features())
	}
	if c.WindowSize == 0 {
		c.WindowSize = 500
	}
	if c.MinWindow == 0 {
		c.MinWindow = 2
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 8 << 20
	}
	if c.MaxValues == 0 {
		c.MaxValues = 1 << 20
	}
	if c.ReplyTimeout == 0 {
		c.ReplyTimeout = 10 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.WindowSize < 2:
		return fmt.Errorf("detect: window size %d: want at least 2", c.WindowSize)
	case c.WindowDuration < 0:
		return fmt.Errorf("detect: window duration %v: want ≥ 0", c.WindowDuration)
	case c.MaxBodyBytes < 0 || c.MaxValues < 0:
		return errors.New("detect: limits must be positive")
	}
	return nil
}

// Server is the detector's HTTP sink.
type Server struct {
	cfg     Config
	metrics *metrics
	width   int

	mu      sync.Mutex // guards windows
	windows map[string]*window
}

// window is the rows collected for one service since its last test.
type window struct {
	rows    [][]float64
	started time.Time
	lastID  string
	ext     http.Header
}

// New validates cfg and returns a Server; Run serves it.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, metrics: newMetrics(), windows: map[string]*window{}}
	if cfg.Drift != nil {
		s.width = cfg.Drift.Features()
	} else {
		s.width = cfg.Outlier.Features()
	}
	return s, nil
}

// Registry holds the detector's metrics.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// Handler serves events on POST /, metrics on /metrics and health on
// /healthz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", s.handleEvent)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return mux
}

// Run serves until ctx is done, then stops accepting events, lets
// in-flight ones finish (up to 10 s) and logs the rows left in partial
// windows, which are dropped. The window timer runs in Run's own loop.
func (s *Server) Run(ctx context.Context) error {
	ln := s.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.Addr); err != nil {
			return fmt.Errorf("detect: listen: %w", err)
		}
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.cfg.Logger.Info("detector listening", "addr", ln.Addr().String(), "reply_url", s.cfg.ReplyURL, "window", s.cfg.WindowSize, "window_duration", s.cfg.WindowDuration)

	var tick <-chan time.Time
	if s.cfg.WindowDuration > 0 {
		t := time.NewTicker(max(s.cfg.WindowDuration/10, 10*time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err := <-errc:
			return fmt.Errorf("detect: serve: %w", err)
		case now := <-tick:
			s.flushExpired(ctx, now)
		case <-ctx.Done():
			shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := srv.Shutdown(shut)
			cancel()
			<-errc
			s.logDropped()
			if err != nil {
				return fmt.Errorf("detect: shutdown: %w", err)
			}
			return nil
		}
	}
}

func (s *Server) logDropped() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for svc, w := range s.windows {
		if len(w.rows) > 0 {
			s.cfg.Logger.Warn("dropping partial drift window on shutdown", "service", svc, "rows", len(w.rows))
		}
	}
}

// httpError is an error with the status it maps to.
type httpError struct {
	code int
	err  error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &httpError{code: http.StatusBadRequest, err: fmt.Errorf(format, args...)}
}

// writeError maps an error to its status: the one place that does.
func (s *Server) writeError(w http.ResponseWriter, err error, service string) {
	code := http.StatusInternalServerError
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		code = http.StatusRequestEntityTooLarge
	case errors.As(err, &he):
		code = he.code
	case errors.Is(err, ErrBadBody), errors.Is(err, drift.ErrShape), errors.Is(err, outlier.ErrShape):
		code = http.StatusBadRequest
	}
	s.metrics.rejected.WithLabelValues(service, strconv.Itoa(code)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
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

// handleEvent: decode → validate → detect → acknowledge.
func (s *Server) handleEvent(w http.ResponseWriter, r *http.Request) {
	svc := serviceOf(r.Header)
	id, typ, err := checkHeaders(r.Header)
	if err != nil {
		s.writeError(w, err, svc)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		s.writeError(w, err, svc)
		return
	}
	s.metrics.events.WithLabelValues(svc, typ).Inc()
	if typ == TypeResponse {
		w.WriteHeader(http.StatusOK) // responses carry no features
		return
	}
	rows, err := Rows(body, s.cfg.MaxValues)
	if err == nil && len(rows[0]) != s.width {
		err = badRequest("detect: instances have %d features, the reference %d", len(rows[0]), s.width)
	}
	if err != nil {
		s.writeError(w, err, svc)
		return
	}
	if err := s.detect(r.Context(), svc, id, r.Header, rows); err != nil {
		s.writeError(w, err, svc)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, "{\"counted\":%d}\n", len(rows))
}

func checkHeaders(h http.Header) (id, typ string, err error) {
	if v := h.Get("Ce-Specversion"); v != "1.0" {
		return "", "", badRequest("detect: ce-specversion %q: want a binary-mode CloudEvent 1.0", v)
	}
	id, typ = h.Get("Ce-Id"), h.Get("Ce-Type")
	if id == "" {
		return "", "", badRequest("detect: missing ce-id")
	}
	if typ != TypeRequest && typ != TypeResponse {
		return "", "", badRequest("detect: ce-type %q: want %s or %s", typ, TypeRequest, TypeResponse)
	}
	return id, typ, nil
}

// detect scores rows for outliers and adds them to the service's drift
// window, testing every window they complete.
func (s *Server) detect(ctx context.Context, svc, id string, h http.Header, rows [][]float64) error {
	if s.cfg.Outlier != nil {
		res, err := s.cfg.Outlier.Score(rows)
		if err != nil {
			return err
		}
		s.metrics.observeOutliers(svc, res)
		s.reply(ctx, id, TypeOutlier, h, outlierBody(res, s.cfg.Version))
	}
	if s.cfg.Drift == nil {
		return nil
	}
	for _, full := range s.collect(svc, id, h, rows) {
		s.testWindow(ctx, svc, full)
	}
	return nil
}

// collect appends rows to svc's window and returns the windows they fill.
func (s *Server) collect(svc, id string, h http.Header, rows [][]float64) []*window {
	s.mu.Lock()
	defer s.mu.Unlock()
	var full []*window
	for len(rows) > 0 {
		w := s.windows[svc]
		if w == nil {
			w = &window{started: time.Now()}
			s.windows[svc] = w
		}
		n := min(s.cfg.WindowSize-len(w.rows), len(rows))
		w.rows = append(w.rows, rows[:n]...)
		w.lastID, w.ext = id, h
		rows = rows[n:]
		if len(w.rows) == s.cfg.WindowSize {
			full = append(full, w)
			delete(s.windows, svc)
		}
	}
	if w := s.windows[svc]; w != nil {
		s.metrics.windowRows.WithLabelValues(svc).Set(float64(len(w.rows)))
	} else {
		s.metrics.windowRows.WithLabelValues(svc).Set(0)
	}
	return full
}

// flushExpired tests every window whose first row is older than the
// window duration.
func (s *Server) flushExpired(ctx context.Context, now time.Time) {
	s.mu.Lock()
	var due []*window
	var svcs []string
	for svc, w := range s.windows {
		if now.Sub(w.started) >= s.cfg.WindowDuration {
			delete(s.windows, svc)
			s.metrics.windowRows.WithLabelValues(svc).Set(0)
			if len(w.rows) < s.cfg.MinWindow {
				s.metrics.droppedRows.WithLabelValues(svc).Add(float64(len(w.rows)))
				continue
			}
			due, svcs = append(due, w), append(svcs, svc)
		}
	}
	s.mu.Unlock()
	for i, w := range due {
		s.testWindow(ctx, svcs[i], w)
	}
}

func (s *Server) testWindow(ctx context.Context, svc string, w *window) {
	res, err := s.cfg.Drift.Test(w.rows)
	if err != nil {
		s.cfg.Logger.Error("drift test failed", "service", svc, "rows", len(w.rows), "err", err)
		s.metrics.droppedRows.WithLabelValues(svc).Add(float64(len(w.rows)))
		return
	}
	s.metrics.observeDrift(svc, res)
	s.cfg.Logger.Info("drift window tested", "service", svc, "rows", res.N, "is_drift", res.IsDrift, "threshold", res.Threshold)
	s.reply(ctx, w.lastID, TypeDrift, w.ext, driftBody(res, s.cfg.Version))
}

// reply posts a binary-mode CloudEvent carrying the verdict. A failed
// delivery is logged and counted; the verdict stays in the metrics.
func (s *Server) reply(ctx context.Context, id, typ string, in http.Header, body []byte) {
	if s.cfg.ReplyURL == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ReplyTimeout)
	defer cancel()
	outcome := "ok"
	defer func() { s.metrics.replies.WithLabelValues(typ, outcome).Inc() }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.ReplyURL, bytes.NewReader(body))
	if err != nil {
		outcome = "error"
		s.cfg.Logger.Error("reply failed", "type", typ, "id", id, "err", err)
		return
	}
	h := req.Header
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", id)
	h.Set("Ce-Type", typ)
	h.Set("Ce-Source", "ferry-detect")
	h.Set("Ce-Time", time.Now().UTC().Format(time.RFC3339Nano))
	h.Set("Content-Type", "application/json")
	for _, k := range []string{"Ce-Inferenceservicename", "Ce-Namespace", "Ce-Endpoint", "Ce-Component"} {
		if v := in.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		outcome = "error"
		s.cfg.Logger.Error("reply failed", "type", typ, "id", id, "err", err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		outcome = "error"
		s.cfg.Logger.Error("reply refused", "type", typ, "id", id, "status", resp.StatusCode)
	}
}
