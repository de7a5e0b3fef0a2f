package v2

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ferryserve/ferry/internal/protocol"
)

const protoREST = "v2-rest"

// Register adds the V2 REST routes to mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v2/health/live", s.live)
	mux.HandleFunc("GET /v2/health/ready", s.ready)
	mux.HandleFunc("GET /v2", s.serverMetadata)
	mux.HandleFunc("GET /v2/{$}", s.serverMetadata)
	mux.HandleFunc("GET /v2/models", s.listModels)
	mux.HandleFunc("GET /v2/models/{name}", s.modelMetadata)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}", s.modelMetadata)
	mux.HandleFunc("GET /v2/models/{name}/ready", s.modelReady)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", s.modelReady)
	mux.HandleFunc("POST /v2/models/{name}/infer", s.infer)
	mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", s.infer)
	mux.HandleFunc("POST /v2/repository/index", s.index)
	mux.HandleFunc("POST /v2/repository/models/{name}/load", s.load)
	mux.HandleFunc("POST /v2/repository/models/{name}/unload", s.unload)
}

func (s *Service) live(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]bool{"live": true})
}

func (s *Service) ready(w http.ResponseWriter, r *http.Request) {
	ok := s.cfg.Repository.Ready()
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	WriteJSON(w, code, map[string]bool{"ready": ok})
}

func (s *Service) serverMetadata(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]any{
		"name":       s.cfg.ServerName,
		"version":    s.cfg.ServerVersion,
		"extensions": Extensions,
	})
}

func (s *Service) listModels(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]any{"models": s.cfg.Repository.Names()})
}

func (s *Service) modelMetadata(w http.ResponseWriter, r *http.Request) {
	md, err := s.Metadata(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, md)
}

func (s *Service) modelReady(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ok, err := s.cfg.Repository.ModelReady(name, r.PathValue("version"))
	if err != nil {
		WriteError(w, err)
		return
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	WriteJSON(w, code, map[string]any{"name": name, "ready": ok})
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// putBuf returns a buffer to the pool unless it grew too large to keep.
func putBuf(b *[]byte) {
	if cap(*b) <= 4<<20 {
		bufPool.Put(b)
	}
}

func (s *Service) infer(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	model := r.PathValue("name")
	err := s.serveInfer(w, r, model)
	if err != nil {
		WriteError(w, err)
	}
	s.observe(model, protoREST, err, start)
}

// serveInfer decodes, runs and encodes one request; it writes the response
// itself only on success.
func (s *Service) serveInfer(w http.ResponseWriter, r *http.Request, model string) error {
	bp := bufPool.Get().(*[]byte)
	defer putBuf(bp)
	body, err := ReadBody(r, s.cfg.MaxBodyBytes, (*bp)[:0])
	*bp = body[:0]
	if err != nil {
		return err
	}
	jsonLen, err := headerLength(r)
	if err != nil {
		return err
	}
	req, err := DecodeRequestWithin(body, jsonLen, protocol.LimitsFrom(r.Context(), s.cfg.Limits))
	if err != nil {
		return err
	}
	resp, err := s.Infer(r.Context(), model, r.PathValue("version"), req)
	if err != nil {
		return err
	}
	out := bufPool.Get().(*[]byte)
	defer putBuf(out)
	js, bin := EncodeResponse((*out)[:0], nil, resp, req.wantsBinary)
	*out = js[:0]
	h := w.Header()
	if len(bin) > 0 {
		h.Set(HeaderInferenceLength, strconv.Itoa(len(js)))
		h.Set("Content-Type", "application/octet-stream")
	} else {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(js)+len(bin)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(js)
	if len(bin) > 0 {
		_, _ = w.Write(bin)
	}
	return nil
}

func headerLength(r *http.Request) (int, error) {
	v := r.Header.Get(HeaderInferenceLength)
	if v == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: header %s must be a non-negative integer, got %q", protocol.ErrBadRequest, HeaderInferenceLength, v)
	}
	return n, nil
}

// ReadBody reads a request body of at most limit bytes into buf.
func ReadBody(r *http.Request, limit int64, buf []byte) ([]byte, error) {
	if r.ContentLength > limit {
		return buf, fmt.Errorf("%w: body is %d bytes, the limit is %d (raise --max-body-bytes)", protocol.ErrTooLarge, r.ContentLength, limit)
	}
	if r.ContentLength > 0 && int64(cap(buf)) < r.ContentLength {
		buf = make([]byte, 0, r.ContentLength)
	}
	lr := io.LimitReader(r.Body, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, fmt.Errorf("%w: body exceeds the limit of %d bytes (raise --max-body-bytes)", protocol.ErrTooLarge, limit)
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, fmt.Errorf("%w: reading body: %w", protocol.ErrBadRequest, err)
		}
	}
}

func (s *Service) index(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Ready bool `json:"ready"`
	}
	raw, err := ReadBody(r, 1<<20, nil)
	if err != nil {
		WriteError(w, err)
		return
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			WriteError(w, fmt.Errorf("%w: index request: %w", protocol.ErrBadRequest, err))
			return
		}
	}
	WriteJSON(w, http.StatusOK, s.Index(body.Ready))
}

func (s *Service) load(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.cfg.Repository.Load(r.Context(), name); err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"name": name, "load": true})
}

func (s *Service) unload(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.cfg.Repository.Unload(r.Context(), name); err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"name": name, "unload": true})
}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(w, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// WriteError writes {"error": "..."} with the status protocol.Status picks.
func WriteError(w http.ResponseWriter, err error) {
	code, _ := protocol.Status(err)
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del(HeaderInferenceLength)
	if code == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
