package reqlog

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sink is a real HTTP server on loopback that records CloudEvents and can
// be switched down (answering 503).
type sink struct {
	srv  *httptest.Server
	down atomic.Bool
	mu   sync.Mutex
	got  map[string]map[string]http.Header // ce-id → ce-type → headers
	body map[string]string                 // ce-id/ce-type → body
}

func newSink(t *testing.T) *sink {
	s := &sink{got: map[string]map[string]http.Header{}, body: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		id, typ := r.Header.Get("Ce-Id"), r.Header.Get("Ce-Type")
		s.mu.Lock()
		if s.got[id] == nil {
			s.got[id] = map[string]http.Header{}
		}
		s.got[id][typ] = r.Header.Clone()
		s.body[id+"/"+typ] = string(b)
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.got {
		n += len(m)
	}
	return n
}

// model answers 200 with the body echoed, or 400 for bodies saying "bad".
var model = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	if strings.Contains(string(b), "bad") {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"bad input"}`)
		return
	}
	_, _ = io.WriteString(w, `{"predictions":`+string(b)+`}`)
})

func startLogger(t *testing.T, cfg Config) (*Logger, func()) {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	return l, stop
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // bounded poll
	}
}

func TestEventsAndPassThrough(t *testing.T) {
	s := newSink(t)
	hs, _ := NewSink(s.srv.URL)
	l, stop := startLogger(t, Config{Sink: hs, InferenceService: "iris", Namespace: "default", Component: "predictor", Endpoint: "default", MetadataHeaders: []string{"X-Tenant"}})
	defer stop()
	h := l.Middleware(model)

	for _, tc := range []struct {
		body string
		code int
		ceID string
	}{{`[1,2]`, 200, "my-id"}, {`"bad"`, 400, ""}} {
		req := httptest.NewRequest("POST", "/v1/models/iris:predict", strings.NewReader(tc.body))
		req.Header.Set("X-Tenant", "acme")
		if tc.ceID != "" {
			req.Header.Set("Ce-Id", tc.ceID)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Fatalf("client got %d, want %d: the logger must not change the status", rec.Code, tc.code)
		}
		if tc.code == 200 && rec.Body.String() != `{"predictions":[1,2]}` {
			t.Fatalf("client body %q changed", rec.Body.String())
		}
	}
	waitFor(t, "4 events", func() bool { return s.count() == 4 })
	s.mu.Lock()
	defer s.mu.Unlock()
	pair := s.got["my-id"]
	req, resp := pair[TypeRequest], pair[TypeResponse]
	if req == nil || resp == nil {
		t.Fatalf("the incoming Ce-Id does not pair the events: %v", s.got)
	}
	for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Inferenceservicename": "iris", "Ce-Namespace": "default", "Ce-Component": "predictor", "Ce-Endpoint": "default", "Ce-Metadata": `{"X-Tenant":["acme"]}`} {
		if req.Get(k) != v {
			t.Errorf("request event %s = %q, want %q", k, req.Get(k), v)
		}
	}
	if resp.Get("Ce-Statuscode") != "200" || s.body["my-id/"+TypeResponse] != `{"predictions":[1,2]}` || s.body["my-id/"+TypeRequest] != `[1,2]` {
		t.Errorf("response event: %v %q", resp, s.body["my-id/"+TypeResponse])
	}
	var errorLogged bool
	for id, m := range s.got {
		if r := m[TypeResponse]; r != nil && r.Get("Ce-Statuscode") == "400" && strings.Contains(s.body[id+"/"+TypeResponse], "bad input") {
			errorLogged = true
		}
	}
	if !errorLogged {
		t.Error("the 400 response was not logged with its status")
	}
}

// TestSinkDownThenBack: the sink is down for 10 000 requests, comes back,
// and every event arrives.
func TestSinkDownThenBack(t *testing.T) {
	const n = 2000 // enough to fill the queue (256) many times over; bounded under -race on 2 cores
	s := newSink(t)
	s.down.Store(true)
	hs, _ := NewSink(s.srv.URL)
	l, stop := startLogger(t, Config{Sink: hs, SpoolDir: t.TempDir(), QueueSize: 256})
	defer stop()
	h := l.Middleware(model)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(`[1]`)))
				if rec.Code != 200 {
					t.Errorf("request %d: %d", i, rec.Code)
					return
				}
			}
		}()
	}
	wg.Wait()
	if st := l.Stats(); st.Dropped != 0 || st.Queued != 2*n {
		t.Fatalf("stats while down: %+v", st)
	}
	s.down.Store(false)
	waitFor(t, "every event delivered", func() bool { return s.count() == 2*n })
	if st := l.Stats(); st.Dropped != 0 || st.Retried == 0 {
		t.Fatalf("stats after recovery: %+v", st)
	}
	s.mu.Lock()
	for id, m := range s.got {
		if len(m) != 2 {
			t.Fatalf("event pair %s incomplete: %v", id, m)
		}
	}
	s.mu.Unlock()
}

// TestSpoolSurvivesRestart: events spooled by one logger are delivered by
// the next one using the same spool directory.
func TestSpoolSurvivesRestart(t *testing.T) {
	s := newSink(t)
	s.down.Store(true)
	dir := t.TempDir()
	hs, _ := NewSink(s.srv.URL)
	l, stop := startLogger(t, Config{Sink: hs, SpoolDir: dir})
	h := l.Middleware(model)
	for range 50 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/x", strings.NewReader(`[1]`)))
	}
	waitFor(t, "spooled", func() bool { return l.Stats().Spooled+l.Stats().Sent >= 100 })
	stop()
	s.down.Store(false)
	_, stop2 := startLogger(t, Config{Sink: hs, SpoolDir: dir})
	defer stop2()
	waitFor(t, "delivery after restart", func() bool { return s.count() == 100 })
}

func TestFileSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	fs, err := NewSink("file://" + path)
	if err != nil {
		t.Fatal(err)
	}
	l, stop := startLogger(t, Config{Sink: fs, Mode: "response"})
	l.Middleware(model).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/x", strings.NewReader(`[7]`)))
	waitFor(t, "one event", func() bool { return l.Stats().Sent == 1 })
	stop()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 1 || lines[0]["type"] != TypeResponse || lines[0]["statuscode"] != "200" {
		t.Fatalf("file events: %v", lines)
	}
	if d, _ := json.Marshal(lines[0]["data"]); string(d) != `{"predictions":[7]}` {
		t.Fatalf("data %s", d)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := NewSink("ftp://x"); err == nil {
		t.Error("ftp sink accepted")
	}
	if _, err := New(Config{Sink: &fileSink{}, Mode: "some"}); err == nil {
		t.Error("bad mode accepted")
	}
}
