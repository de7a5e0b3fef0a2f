package controlplane

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestModelProberNeverBlocksTheReconcile: a replica that hangs on one
// model's readiness costs only that model's probe; loaded answers at once
// ("checking"), the answer arrives through onChange, and a model that is
// loaded elsewhere is reported loaded meanwhile.
func TestModelProberNeverBlocksTheReconcile(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	var asksForB atomic.Int32
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/models/b/") {
			asksForB.Add(1)
		}
		if strings.Contains(r.URL.Path, "/missing/") {
			http.Error(w, "not found", http.StatusNotFound)
		}
	}))
	defer ok.Close()

	var changes atomic.Int32
	changed := make(chan struct{}, 16)
	p := newModelProber(func() { changes.Add(1); changed <- struct{}{} })
	p.timeout = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); p.wait() }()

	hungAddr, okAddr := strings.TrimPrefix(hung.URL, "http://"), strings.TrimPrefix(ok.URL, "http://")
	start := time.Now()
	for _, m := range []string{"a", "b", "missing"} {
		be := okAddr
		if m == "a" {
			be = hungAddr
		}
		if loaded, why := p.loaded(ctx, "ns/"+m, m, []string{be}); loaded || !strings.Contains(why, "checking") {
			t.Fatalf("%s before any answer: %v %q", m, loaded, why)
		}
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("loaded waited %v for probes; it must only read the last answer", d)
	}
	for range 3 {
		select {
		case <-changed:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of 3 probes answered", changes.Load())
		}
	}
	if loaded, why := p.loaded(ctx, "ns/b", "b", []string{okAddr}); !loaded {
		t.Errorf("b: not loaded: %s", why)
	}
	// A fresh "loaded" answer stands: passes in a row do not ask again.
	before := asksForB.Load()
	for range 5 {
		p.loaded(ctx, "ns/b", "b", []string{okAddr})
	}
	time.Sleep(50 * time.Millisecond)
	if n := asksForB.Load() - before; n != 0 {
		t.Errorf("a loaded model was asked %d more times within %v", n, reaskLoaded)
	}
	if loaded, why := p.loaded(ctx, "ns/missing", "missing", []string{okAddr}); loaded || !strings.Contains(why, "(404)") {
		t.Errorf("missing: %v %q", loaded, why)
	}
	if loaded, why := p.loaded(ctx, "ns/a", "a", []string{hungAddr}); loaded || !strings.Contains(why, "replica "+hungAddr) {
		t.Errorf("a on the hung replica: %v %q", loaded, why)
	}
	// Other replicas: the old answer is not theirs.
	if loaded, why := p.loaded(ctx, "ns/b", "b", []string{okAddr, hungAddr}); loaded || !strings.Contains(why, "checking") {
		t.Errorf("b on new replicas: %v %q", loaded, why)
	}
	if loaded, why := p.loaded(ctx, "ns/b", "b", nil); loaded || why != "no ready predictor replica" {
		t.Errorf("b with no replicas: %v %q", loaded, why)
	}
	p.forget(map[string]bool{"ns/a": true})
	p.mu.Lock()
	_, kept := p.results["ns/a"]
	_, dropped := p.results["ns/missing"]
	p.mu.Unlock()
	if !kept || dropped {
		t.Errorf("forget kept a=%v missing=%v", kept, dropped)
	}
}
