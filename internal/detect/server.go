package detect

import (
	"bytes"
	"context"
	"encoding/binary"
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
	"github.com/ferryserve/ferry/internal/frame"
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
	// StateDir, when set, keeps open windows across restarts (state.go);
	// StateSync also syncs each record before the acknowledgement
	// (surviving power loss, at the cost of one fsync per event); the
	// snapshot is rewritten once the log exceeds CompactBytes (default
	// 16 MiB).
	StateDir     string
	StateSync    bool
	CompactBytes int64
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
	if c.CompactBytes == 0 {
		c.CompactBytes = 16 << 20
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
	case c.StateDir != "" && c.Drift == nil:
		return errors.New("detect: a state dir keeps drift windows: configure a drift detector, or drop the state dir")
	}
	return nil
}

// Server is the detector's HTTP sink.
type Server struct {
	cfg     Config
	metrics *metrics
	width   int

	mu      sync.Mutex // guards windows, pending, ords and the journal
	windows map[string]*window
	// pending holds windows closed but not yet tested; ords numbers each
	// service's windows, so that the log can name one.
	pending map[windowKey]*window
	ords    map[string]uint64
	journal *journal // nil without a state dir
	// recovered are windows closed before a restart whose test was not
	// recorded; Run tests them first.
	recovered []*window
}

type windowKey struct {
	svc string
	ord uint64
}

// window is the rows collected for one service since its last test.
type window struct {
	svc     string
	ord     uint64
	rows    [][]float64
	started time.Time
	lastID  string
	ext     map[string]string // the reply extensions of the last event
}

// New validates cfg and returns a Server; Run serves it.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, metrics: newMetrics(), windows: map[string]*window{},
		pending: map[windowKey]*window{}, ords: map[string]uint64{}}
	if cfg.Drift != nil {
		s.width = cfg.Drift.Features()
	} else {
		s.width = cfg.Outlier.Features()
	}
	if cfg.StateDir != "" {
		if err := s.recover(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close releases the state log; Run calls it on return.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return nil
	}
	err := s.journal.close()
	s.journal = nil
	return err
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
			_ = s.Close()
			return fmt.Errorf("detect: listen: %w", err)
		}
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.cfg.Logger.Info("detector listening", "addr", ln.Addr().String(), "reply_url", s.cfg.ReplyURL, "window", s.cfg.WindowSize, "window_duration", s.cfg.WindowDuration, "state_dir", s.cfg.StateDir)
	s.testRecovered(ctx)

	var tick <-chan time.Time
	if s.cfg.WindowDuration > 0 {
		t := time.NewTicker(max(s.cfg.WindowDuration/10, 10*time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err := <-errc:
			_ = s.Close()
			return fmt.Errorf("detect: serve: %w", err)
		case now := <-tick:
			s.flushExpired(ctx, now)
		case <-ctx.Done():
			shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := srv.Shutdown(shut)
			cancel()
			<-errc
			s.saveOrDrop()
			if err != nil {
				return fmt.Errorf("detect: shutdown: %w", err)
			}
			return nil
		}
	}
}

// saveOrDrop writes the open windows to the snapshot when there is a
// state dir, and otherwise logs the rows of partial windows, which are
// dropped.
func (s *Server) saveOrDrop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal != nil {
		rows := 0
		for _, w := range s.windows {
			rows += len(w.rows)
		}
		if err := s.journal.writeSnapshot(s.windows, s.pendingList(), s.ords); err != nil {
			s.cfg.Logger.Error("saving drift windows failed; the log still holds them", "err", err)
		} else {
			s.cfg.Logger.Info("drift windows saved", "dir", s.cfg.StateDir, "windows", len(s.windows), "rows", rows)
		}
		_ = s.journal.close()
		s.journal = nil
		return
	}
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
	if err := s.detect(r.Context(), svc, id, extOf(r.Header), rows); err != nil {
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
func (s *Server) detect(ctx context.Context, svc, id string, h map[string]string, rows [][]float64) error {
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
	full, err := s.collect(svc, id, h, rows)
	if err != nil {
		return err
	}
	for _, w := range full {
		s.testWindow(ctx, w)
	}
	return nil
}

// extOf keeps the event headers a reply carries back.
func extOf(h http.Header) map[string]string {
	m := make(map[string]string, len(replyHeaders))
	for _, k := range replyHeaders {
		if v := h.Get(k); v != "" {
			m[k] = v
		}
	}
	return m
}

// collect logs rows (with a state dir), appends them to svc's window and
// returns the windows they fill. Nothing is counted when the log fails.
func (s *Server) collect(svc, id string, h map[string]string, rows [][]float64) ([]*window, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.journal != nil {
		err := s.journal.append(recRows, func(b []byte) []byte {
			b = frame.AppendString(b, svc)
			b = binary.AppendVarint(b, now.UnixNano())
			b = frame.AppendString(b, id)
			b = appendExt(b, h)
			return appendRows(b, rows)
		})
		if err != nil {
			return nil, err
		}
	}
	full := s.fill(svc, id, h, now, rows)
	if w := s.windows[svc]; w != nil {
		s.metrics.windowRows.WithLabelValues(svc).Set(float64(len(w.rows)))
	} else {
		s.metrics.windowRows.WithLabelValues(svc).Set(0)
	}
	return full, nil
}

// fill is the window logic itself, shared by live events and recovery:
// it appends rows to svc's window, closing each window that reaches the
// window size (moved to pending). The caller holds s.mu.
func (s *Server) fill(svc, id string, h map[string]string, at time.Time, rows [][]float64) []*window {
	var full []*window
	for len(rows) > 0 {
		w := s.windows[svc]
		if w == nil {
			w = &window{svc: svc, ord: s.ords[svc], started: at}
			s.ords[svc]++
			s.windows[svc] = w
		}
		n := min(s.cfg.WindowSize-len(w.rows), len(rows))
		w.rows = append(w.rows, rows[:n]...)
		w.lastID, w.ext = id, h
		rows = rows[n:]
		if len(w.rows) == s.cfg.WindowSize {
			full = append(full, w)
			delete(s.windows, svc)
			s.pending[windowKey{svc, w.ord}] = w
		}
	}
	return full
}

// closeWindow ends svc's open window w by time: pending when it has rows
// enough, else dropped. The caller holds s.mu.
func (s *Server) closeWindow(w *window) (test bool) {
	delete(s.windows, w.svc)
	if len(w.rows) < s.cfg.MinWindow {
		return false
	}
	s.pending[windowKey{w.svc, w.ord}] = w
	return true
}

// flushExpired tests every window whose first row is older than the
// window duration.
func (s *Server) flushExpired(ctx context.Context, now time.Time) {
	s.mu.Lock()
	var due []*window
	for svc, w := range s.windows {
		if now.Sub(w.started) < s.cfg.WindowDuration {
			continue
		}
		if s.journal != nil {
			err := s.journal.append(recClose, func(b []byte) []byte {
				return binary.AppendUvarint(frame.AppendString(b, svc), w.ord)
			})
			if err != nil {
				s.cfg.Logger.Error("closing a drift window failed; it stays open", "service", svc, "err", err)
				continue
			}
		}
		s.metrics.windowRows.WithLabelValues(svc).Set(0)
		if !s.closeWindow(w) {
			s.metrics.droppedRows.WithLabelValues(svc).Add(float64(len(w.rows)))
			continue
		}
		due = append(due, w)
	}
	s.mu.Unlock()
	for _, w := range due {
		s.testWindow(ctx, w)
	}
}

// testWindow tests a closed window, replies, and records that it did.
func (s *Server) testWindow(ctx context.Context, w *window) {
	defer s.tested(w)
	svc := w.svc
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

// tested forgets a pending window, logs that it is done, and rewrites the
// snapshot once the log has grown past CompactBytes.
func (s *Server) tested(w *window) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, windowKey{w.svc, w.ord})
	if s.journal == nil {
		return
	}
	err := s.journal.append(recTested, func(b []byte) []byte {
		return binary.AppendUvarint(frame.AppendString(b, w.svc), w.ord)
	})
	if err != nil {
		s.cfg.Logger.Error("recording a tested window failed; it may be tested again after a restart", "service", w.svc, "err", err)
	}
	if s.journal.size > s.cfg.CompactBytes {
		if err := s.journal.writeSnapshot(s.windows, s.pendingList(), s.ords); err != nil {
			s.cfg.Logger.Error("rewriting the drift snapshot failed", "err", err)
		}
	}
}

func (s *Server) pendingList() []*window {
	out := make([]*window, 0, len(s.pending))
	for _, w := range s.pending {
		out = append(out, w)
	}
	return out
}

// reply posts a binary-mode CloudEvent carrying the verdict. A failed
// delivery is logged and counted; the verdict stays in the metrics.
func (s *Server) reply(ctx context.Context, id, typ string, in map[string]string, body []byte) {
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
	for k, v := range in {
		h.Set(k, v)
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
