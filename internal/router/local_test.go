package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLocalBackend: a backend with a handler registered in this process is
// served by calling it, with the router's per-request work kept (split,
// counters, latency histogram, timeout, revision header); with the
// handler removed, the same address is reached over the network again.
func TestLocalBackend(t *testing.T) {
	var calls atomic.Int64
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("sleep") != "" {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done(): // the component timeout reaches the handler
				http.Error(w, "timed out", http.StatusGatewayTimeout)
				return
			}
		}
		_, _ = io.WriteString(w, "local "+string(b))
	})
	// The in-process replica also listens on its address (gRPC, feedback,
	// direct clients); the router must not use it while a handler is set.
	listening := backend(t, "network")
	other := backend(t, "process")
	rt := New("example.com", nil)
	rt.SetLocal(listening, local)
	if err := rt.Update(&Table{Domain: "example.com", Services: []*Service{{Name: "m", Namespace: "default", Components: map[string]*Component{
		Predictor: {Timeout: 100 * time.Millisecond, Targets: []Target{
			{Revision: "m-2", Percent: 30, Latest: true, Backends: []string{listening}},
			{Revision: "m-1", Percent: 70, Tag: "prev", Backends: []string{other}},
		}},
	}}}}); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	got := map[string]int{}
	for range n {
		code, body, rev := get(t, rt, "m.default.example.com", "/v1/models/m:predict")
		if code != 200 {
			t.Fatalf("code %d: %s", code, body)
		}
		switch {
		case rev == "m-2" && body == "local {}":
		case rev == "m-1" && strings.HasPrefix(body, "process "):
		default:
			t.Fatalf("revision %s answered %q", rev, body)
		}
		got[rev]++
	}
	if pct := got["m-2"] * 100 / n; pct < 26 || pct > 34 {
		t.Fatalf("in-process revision got %d%% of traffic, want 30 ± 4: %v", pct, got)
	}
	if c := calls.Load(); c != int64(got["m-2"]) {
		t.Fatalf("handler called %d times, %d requests routed to it", c, got["m-2"])
	}
	st := rt.Stats("default", "m-2")
	if st.Requests.Load() != uint64(got["m-2"]) || st.InFlight.Load() != 0 {
		t.Fatalf("counters: %d requests, %d in flight", st.Requests.Load(), st.InFlight.Load())
	}
	if c := st.Latency.Snapshot().Classes["2xx"].Count; c != uint64(got["m-2"]) {
		t.Fatalf("latency histogram counted %d answers, want %d", c, got["m-2"])
	}

	code, _, rev := get(t, rt, "latest-m.default.example.com", "/v1/models/m:predict?sleep=1")
	if code != http.StatusGatewayTimeout || rev != "m-2" {
		t.Fatalf("component timeout: %d from %q", code, rev)
	}

	rt.SetLocal(listening, nil)
	if code, body, _ := get(t, rt, "latest-m.default.example.com", "/v1/models/m:predict"); code != 200 || !strings.HasPrefix(body, "network ") {
		t.Fatalf("after SetLocal(nil): %d %q", code, body)
	}
}

// TestLocalBackendConcurrencyLimit: containerConcurrency bounds an
// in-process backend as it bounds a process one.
func TestLocalBackendConcurrencyLimit(t *testing.T) {
	release := make(chan struct{})
	var running, peak atomic.Int32
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		running.Add(-1)
		_, _ = io.WriteString(w, "ok")
	})
	rt := New("example.com", nil)
	rt.SetLocal("127.0.0.1:1", local) // nothing listens there: only the handler can answer
	if err := rt.Update(&Table{Domain: "example.com", Services: []*Service{{Name: "m", Namespace: "d", Components: map[string]*Component{
		Predictor: {Targets: []Target{{Revision: "m-1", Percent: 100, Backends: []string{"127.0.0.1:1"}, Concurrency: 2}}},
	}}}}); err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(rt)
	defer front.Close()
	codes := make(chan int, 5)
	for range 5 {
		go func() {
			resp, err := http.Post(front.URL+"/v1/models/m:predict", "application/json", strings.NewReader("{}"))
			if err != nil {
				codes <- -1
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := rt.limiter("d", "m-1")
		l.mu.Lock()
		queued := len(l.waiters)
		l.mu.Unlock()
		if running.Load() == 2 && queued == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("running %d, queued %d", running.Load(), queued)
		}
		time.Sleep(5 * time.Millisecond) // bounded poll
	}
	close(release)
	for range 5 {
		if c := <-codes; c != 200 {
			t.Fatalf("request got %d", c)
		}
	}
	if peak.Load() != 2 {
		t.Fatalf("%d requests ran at once, want containerConcurrency 2", peak.Load())
	}
}
