package quality

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	v2 "github.com/ferryserve/ferry/internal/protocol/v2"
)

// HandlerConfig configures the HTTP side.
type HandlerConfig struct {
	Monitor *Monitor
	// Revision labels every recorded prediction (e.g. the revision this
	// process serves); empty: the V2 response's model_version, else
	// "default".
	Revision string
	// Tasks forces a model's task where its outputs are ambiguous.
	Tasks map[string]Task
	// MaxBodyBytes bounds a feedback body (default 8 MiB).
	MaxBodyBytes int64
	// Events, if set, receives every joined feedback record (e.g.
	// LoggerEvents, to emit it as a CloudEvent).
	Events FeedbackEvents
	// Peers, if set, are the other replicas: feedback a client sends
	// here for ids this journal does not know is forwarded to them
	// (peers.go).
	Peers  *Peers
	Logger *slog.Logger
}

// Handler serves the feedback and quality routes and records predictions.
type Handler struct {
	cfg  HandlerConfig
	held sync.Pool // of *held, with their buffers
}

// NewHandler returns the Handler of cfg.Monitor.
func NewHandler(cfg HandlerConfig) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 8 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg}
	h.held.New = func() any { return &held{body: new(bytes.Buffer)} }
	return h
}

// PathAllQuality answers GET with the windows of every model and
// revision this process journals (a QualityResponse without a model): an
// ingress reads its replicas here.
const PathAllQuality = "/v2/quality"

// HeaderRequestID carries the id a prediction is journaled under.
const HeaderRequestID = "X-Request-Id"

// Middleware answers POST /v1/models/{name}:feedback, POST
// /v2/models/{name}/feedback, GET /v2/models/{name}/quality and GET
// /v2/quality, adds the
// quality metrics to GET /metrics, and journals the answers of V1 predict
// and V2 infer requests. Like :explain, the V1 route shares its path
// segment with :predict, so it is a middleware rather than a mux route.
func (h *Handler) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch r.Method {
		case http.MethodPost:
			if name, ok := FeedbackPath(p); ok {
				h.serveFeedback(w, r, name)
				return
			}
			if name, v1, ok := predictPath(p); ok {
				h.record(w, r, next, name, v1)
				return
			}
		case http.MethodGet:
			if name, ok := qualityPath(p); ok {
				h.serveQuality(w, name)
				return
			}
			if p == PathAllQuality {
				c, _ := h.cfg.Monitor.Counts("")
				v2.WriteJSON(w, http.StatusOK, QualityResponse{Counts: c, Revisions: h.cfg.Monitor.Snapshots("")})
				return
			}
			if p == "/metrics" {
				h.serveMetrics(w, r, next)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// FeedbackPath reports whether path is a feedback route and of which model.
func FeedbackPath(path string) (string, bool) {
	if rest, ok := strings.CutPrefix(path, "/v1/models/"); ok {
		if name, ok := strings.CutSuffix(rest, ":feedback"); ok && validName(name) {
			return name, true
		}
	}
	if rest, ok := strings.CutPrefix(path, "/v2/models/"); ok {
		if name, ok := strings.CutSuffix(rest, "/feedback"); ok && validName(name) {
			return name, true
		}
	}
	return "", false
}

func qualityPath(path string) (string, bool) {
	if rest, ok := strings.CutPrefix(path, "/v2/models/"); ok {
		if name, ok := strings.CutSuffix(rest, "/quality"); ok && validName(name) {
			return name, true
		}
	}
	return "", false
}

// predictPath matches V1 :predict and V2 infer (with or without a version).
func predictPath(path string) (name string, v1, ok bool) {
	if rest, ok := strings.CutPrefix(path, "/v1/models/"); ok {
		if name, ok := strings.CutSuffix(rest, ":predict"); ok && validName(name) {
			return name, true, true
		}
		return "", false, false
	}
	if rest, ok := strings.CutPrefix(path, "/v2/models/"); ok {
		if rest, ok := strings.CutSuffix(rest, "/infer"); ok {
			name, _, _ := strings.Cut(rest, "/versions/")
			if validName(name) {
				return name, false, true
			}
		}
	}
	return "", false, false
}

func validName(name string) bool { return name != "" && !strings.Contains(name, "/") }

// FeedbackResponse is the answer to a feedback request.
type FeedbackResponse struct {
	Model    string   `json:"model"`
	Counts   Counts   `json:"counts"`
	Outcomes []Result `json:"results"`
}

// HeaderQuality marks every answer of the feedback routes (errors
// included), so that an ingress fanning feedback out can tell a replica
// that monitors quality from one that does not (whose server answers the
// path with its own 404 or 400).
const HeaderQuality = "Ferry-Quality"

func (h *Handler) serveFeedback(w http.ResponseWriter, r *http.Request, name string) {
	w.Header().Set(HeaderQuality, "on")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			v2.WriteJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("feedback body larger than %d bytes", mbe.Limit)})
			return
		}
		v2.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "read feedback body: " + err.Error()})
		return
	}
	fb, err := DecodeFeedback(body)
	if err != nil {
		v2.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	// Forwarded feedback is counted by the replica that forwarded it;
	// with peers, each record is counted once merged with their answers.
	_, forwarded := r.Header[HeaderForwarded]
	var res []Result
	if forwarded || h.cfg.Peers != nil {
		res = h.cfg.Monitor.JoinUncounted(name, fb)
	} else {
		res = h.cfg.Monitor.Join(name, fb)
	}
	if h.cfg.Events != nil {
		// Each replica emits the records its own journal joined.
		if evs := feedbackEvents(name, fb, res); len(evs) > 0 {
			h.cfg.Events.Feedback(evs)
		}
	}
	if !forwarded && h.cfg.Peers != nil {
		res = h.cfg.Peers.Forward(r, name, fb, res)
		h.cfg.Monitor.CountFeedback(name, res)
	}
	out := FeedbackResponse{Model: name, Outcomes: res}
	for _, x := range res {
		out.Counts.add(x.Outcome)
	}
	h.cfg.Logger.Debug("feedback", "model", name, "received", out.Counts.Received, "joined", out.Counts.Joined,
		"unknown", out.Counts.Unknown, "expired", out.Counts.Expired, "duplicate", out.Counts.Duplicate, "invalid", out.Counts.Invalid)
	v2.WriteJSON(w, http.StatusOK, out)
}

// QualityResponse is the answer to GET /v2/models/{name}/quality.
type QualityResponse struct {
	Model     string     `json:"model,omitempty"`
	Counts    Counts     `json:"counts"`
	Revisions []Snapshot `json:"revisions"`
}

func (h *Handler) serveQuality(w http.ResponseWriter, name string) {
	c, ok := h.cfg.Monitor.Counts(name)
	if !ok {
		v2.WriteJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("model %q has no recorded predictions", name)})
		return
	}
	v2.WriteJSON(w, http.StatusOK, QualityResponse{Model: name, Counts: c, Revisions: h.cfg.Monitor.Snapshots(name)})
}

// record passes a predict request on, holds its response back, journals
// the prediction's outputs under its id, and then lets the response leave
// (with the id in X-Request-Id): a client that has its answer can always
// send feedback for it, even across a crash.
//
// It runs on every prediction, so it reads and sets headers by their
// canonical keys (net/http canonicalises what it reads off the wire) rather
// than through Header.Get and Set, which canonicalise again, and the
// response is held in a pooled writer.
func (h *Handler) record(w http.ResponseWriter, r *http.Request, next http.Handler, name string, v1 bool) {
	id := firstHeader(r.Header, HeaderRequestID)
	ceID := firstHeader(r.Header, headerCeID)
	if id == "" {
		id = ceID
	}
	if id == "" {
		id = newID()
	}
	// vals backs both headers the middleware sets: one allocation.
	vals := new([2]string)
	if ceID == "" {
		// The request logger (inside this middleware) names its events by
		// Ce-Id: give it the id the prediction is journaled under, so its
		// events join the feedback too. A V2 response echoes the request's
		// body id, which wins (see journal); with a logger, read it now.
		vals[0] = id
		if !v1 && h.cfg.Events != nil {
			if bid := bodyID(r); bid != "" {
				vals[0] = bid
			}
		}
		r.Header[headerCeID] = vals[0:1:1]
	}
	rec := h.held.Get().(*held)
	*rec = held{w: w, code: http.StatusOK, body: rec.body}
	rec.body.Reset()
	defer h.putHeld(rec)
	next.ServeHTTP(rec, r)
	if rec.code == http.StatusOK {
		id = h.journal(name, id, v1, rec.body.Bytes())
	}
	vals[1] = id
	w.Header()[HeaderRequestID] = vals[1:2:2]
	w.WriteHeader(rec.code)
	_, _ = w.Write(rec.body.Bytes())
}

// headerCeID is the canonical key of the CloudEvents id header.
const headerCeID = "Ce-Id"

// firstHeader is hdr.Get(key) for a key already in canonical form.
func firstHeader(hdr http.Header, key string) string {
	if v := hdr[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// maxHeldBytes bounds the response buffer a held writer keeps for reuse.
const maxHeldBytes = 1 << 20

func (h *Handler) putHeld(rec *held) {
	if rec.body.Cap() > maxHeldBytes {
		return
	}
	rec.w = nil
	h.held.Put(rec)
}

// bodyID reads the top-level "id" of a V2 request body, as the V2
// service's decoder does (exact name, escapes decoded), and puts the body
// back for the handlers inside.
func bodyID(r *http.Request) string {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		// The handler sees the same error (e.g. the body limit's).
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
		return ""
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return ""
	}
	for dec.PeekKind() == '"' {
		k, err := dec.ReadToken()
		if err != nil {
			return ""
		}
		if k.String() == "id" {
			v, err := dec.ReadToken()
			if err != nil || v.Kind() != '"' {
				return ""
			}
			return v.String()
		}
		if dec.SkipValue() != nil {
			return ""
		}
	}
	return ""
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// journal records a prediction and returns its id (a V2 response's own id
// wins). Failures are counted and logged, never returned to the client.
//
// A response up to maxRawBytes is journaled as it is (RawOutput), its rows
// read only if feedback joins it; a V2 response's id and model version are
// still read here, by a scan that skips the outputs. A larger response, or
// a V2 one the scan cannot vouch for, is read now and journaled as rows.
func (h *Handler) journal(name, id string, v1 bool, body []byte) string {
	task := h.cfg.Tasks[name]
	if len(body) <= maxRawBytes {
		version, ok := "", v1
		if !v1 {
			var rid string
			if rid, version, ok = scanV2Head(body); ok && rid != "" {
				id = rid
			}
		}
		if ok {
			h.recordPrediction(&Prediction{Model: name, ID: id, Output: &RawOutput{V1: v1, Task: task, Body: body}}, version)
			return id
		}
	}
	var (
		rows    []Row
		version string
		err     error
	)
	if v1 {
		rows, err = ParseV1(body, task)
	} else {
		var rid string
		rows, rid, version, err = ParseV2(body, task)
		if rid != "" {
			id = rid
		}
	}
	if err != nil {
		h.cfg.Monitor.NotRecorded()
		h.cfg.Logger.Debug("prediction not journaled", "model", name, "id", id, "err", err)
		return id
	}
	h.recordRows(name, id, version, rows)
	return id
}

// recordRows journals a prediction's rows.
func (h *Handler) recordRows(name, id, version string, rows []Row) {
	h.recordPrediction(&Prediction{Model: name, ID: id, Rows: rows}, version)
}

// recordPrediction journals p under the configured revision, else the
// response's model version, else "default", at the present time.
func (h *Handler) recordPrediction(p *Prediction, version string) {
	p.Revision = h.cfg.Revision
	if p.Revision == "" {
		p.Revision = version
	}
	if p.Revision == "" {
		p.Revision = "default"
	}
	p.Time = h.cfg.Monitor.cfg.Now().UnixNano()
	if err := h.cfg.Monitor.Record(p); err != nil {
		h.cfg.Logger.Warn("prediction not journaled", "model", p.Model, "id", p.ID, "err", err)
	}
}

// held keeps a response back until the prediction is journaled.
type held struct {
	w           http.ResponseWriter
	code        int
	wroteHeader bool
	body        *bytes.Buffer
}

func (h *held) Header() http.Header { return h.w.Header() }

func (h *held) WriteHeader(code int) {
	if !h.wroteHeader {
		h.code, h.wroteHeader = code, true
	}
}

func (h *held) Write(b []byte) (int, error) {
	h.wroteHeader = true
	return h.body.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (h *held) Unwrap() http.ResponseWriter { return h.w }

// newID returns a random UUIDv4-formatted id, as the request logger makes,
// with one allocation (the string). Its bits come from the runtime's
// per-thread ChaCha8 generator (seeded from the system's entropy, so ids
// are no easier to guess than crypto/rand's): 16 bytes from crypto/rand
// took ~0.9 µs on the development VM, two Uint64 ~0.1 µs.
func newID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hexDigits[c>>4], hexDigits[c&0x0f]
		j += 2
	}
	return string(s[:])
}

const hexDigits = "0123456789abcdef"
