package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// backend is a real HTTP server that answers with its own name and the path.
func backend(t *testing.T, name string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sleep") != "" {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, name+" "+r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func get(t *testing.T, h http.Handler, host, path string) (int, string, string) {
	t.Helper()
	req := httptest.NewRequest("POST", "http://"+host+path, strings.NewReader("{}"))
	req.Host = host
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String(), rec.Header().Get(HeaderRevision)
}

func TestRouting(t *testing.T) {
	pred1, pred2 := backend(t, "pred-r1"), backend(t, "pred-r2")
	tr, ex := backend(t, "trans"), backend(t, "expl")
	r := New("example.com", nil)
	err := r.Update(&Table{Domain: "example.com", Services: []*Service{
		{Name: "iris", Namespace: "default", Components: map[string]*Component{
			Predictor: {Targets: []Target{{Revision: "iris-predictor-2", Percent: 100, Latest: true, Backends: []string{pred2}}, {Revision: "iris-predictor-1", Tag: "prev", Percent: 0, Backends: []string{pred1}}}},
		}},
		{Name: "flowers", Namespace: "team", Components: map[string]*Component{
			Predictor:   {Targets: []Target{{Revision: "flowers-predictor-1", Percent: 100, Latest: true, Backends: []string{pred1}}}},
			Transformer: {Targets: []Target{{Revision: "flowers-transformer-1", Percent: 100, Latest: true, Backends: []string{tr}}}},
			Explainer:   {Targets: []Target{{Revision: "flowers-explainer-1", Percent: 100, Latest: true, Backends: []string{ex}}}},
		}},
		{Name: "cold", Namespace: "default", Components: map[string]*Component{
			Predictor: {Targets: []Target{{Revision: "cold-predictor-1", Percent: 100}}},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, host, path string
		code             int
		body, rev        string
	}{
		{"by host", "iris.default.example.com", "/v1/models/iris:predict", 200, "pred-r2 /v1/models/iris:predict", "iris-predictor-2"},
		{"host with port", "iris.default.example.com:8080", "/v2/models/iris/infer", 200, "pred-r2 /v2/models/iris/infer", "iris-predictor-2"},
		{"prev tag", "prev-iris.default.example.com", "/v1/models/iris:predict", 200, "pred-r1 /v1/models/iris:predict", "iris-predictor-1"},
		{"latest tag", "latest-iris.default.example.com", "/v1/models/iris:predict", 200, "pred-r2 /v1/models/iris:predict", "iris-predictor-2"},
		{"by path", "127.0.0.1:8080", "/v2/models/iris/infer", 200, "pred-r2 /v2/models/iris/infer", "iris-predictor-2"},
		{"transformer first", "flowers.team.example.com", "/v1/models/flowers:predict", 200, "trans /v1/models/flowers:predict", "flowers-transformer-1"},
		{"explain", "flowers.team.example.com", "/v1/models/flowers:explain", 200, "expl /v1/models/flowers:explain", "flowers-explainer-1"},
		{"unknown host", "nope.default.example.com", "/", 404, "no service for host", ""},
		{"unknown path model", "127.0.0.1", "/v1/models/nope:predict", 404, `no InferenceService named \"nope\"`, ""},
		{"no explainer", "iris.default.example.com", "/v1/models/iris:explain", 404, "has no explainer", ""},
		{"no replica", "cold.default.example.com", "/v1/models/cold:predict", 503, "no ready replica", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, rev := get(t, r, tc.host, tc.path)
			if code != tc.code || !strings.Contains(body, tc.body) || rev != tc.rev {
				t.Fatalf("got %d %q rev %q; want %d %q rev %q", code, body, rev, tc.code, tc.body, tc.rev)
			}
		})
	}
	// The component port skips the transformer.
	code, body, _ := get(t, r.ComponentHandler(Predictor), "127.0.0.1:9000", "/v1/models/flowers:predict")
	if code != 200 || !strings.HasPrefix(body, "pred-r1") {
		t.Fatalf("component handler: %d %s", code, body)
	}
}

func TestCanarySplitIsStatisticallyRight(t *testing.T) {
	newRev, oldRev := backend(t, "new"), backend(t, "old")
	r := New("example.com", nil)
	if err := r.Update(&Table{Domain: "example.com", Services: []*Service{{Name: "m", Namespace: "default", Components: map[string]*Component{
		Predictor: {Targets: []Target{{Revision: "m-predictor-2", Percent: 10, Latest: true, Backends: []string{newRev}}, {Revision: "m-predictor-1", Tag: "prev", Percent: 90, Backends: []string{oldRev}}}},
	}}}}); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	hits := 0
	for range n {
		_, _, rev := get(t, r, "m.default.example.com", "/v1/models/m:predict")
		if rev == "m-predictor-2" {
			hits++
		}
	}
	if pct := float64(hits) * 100 / n; pct < 7 || pct > 13 {
		t.Fatalf("canary got %.1f%% of %d requests, want 10%% ± 3%%", pct, n)
	}
}

func TestTimeoutAndDeadBackend(t *testing.T) {
	slow := backend(t, "slow")
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := strings.TrimPrefix(dead.URL, "http://")
	dead.Close()
	r := New("example.com", nil)
	if err := r.Update(&Table{Domain: "example.com", Services: []*Service{
		{Name: "slow", Namespace: "default", Components: map[string]*Component{Predictor: {Timeout: 50 * time.Millisecond, Targets: []Target{{Revision: "s-1", Percent: 100, Backends: []string{slow}}}}}},
		{Name: "dead", Namespace: "default", Components: map[string]*Component{Predictor: {Targets: []Target{{Revision: "d-1", Percent: 100, Backends: []string{deadAddr}}}}}},
	}}); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := get(t, r, "slow.default.example.com", "/v1/models/slow:predict?sleep=1"); code != 504 {
		t.Fatalf("timeout: %d %s", code, body)
	}
	if code, body, _ := get(t, r, "dead.default.example.com", "/v1/models/dead:predict"); code != 502 {
		t.Fatalf("dead backend: %d %s", code, body)
	}
}

func TestTableValidate(t *testing.T) {
	bad := &Table{Services: []*Service{{Name: "m", Namespace: "d", Components: map[string]*Component{Predictor: {Targets: []Target{{Revision: "a", Percent: 60}, {Revision: "b", Percent: 30}}}}}}}
	if err := New("x", nil).Update(bad); err == nil || !strings.Contains(err.Error(), "sum to 90") {
		t.Fatalf("bad split accepted: %v", err)
	}
}

// TestContainerConcurrency: with containerConcurrency 1 and one replica,
// one request runs, ten queue, and the next is refused at once with 503.
func TestContainerConcurrency(t *testing.T) {
	release := make(chan struct{})
	var running atomic.Int32
	var peak atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		_, _ = io.WriteString(w, "ok")
	}))
	defer slow.Close()
	r := New("example.com", nil)
	if err := r.Update(&Table{Domain: "example.com", Services: []*Service{{Name: "m", Namespace: "d", Components: map[string]*Component{
		Predictor: {Targets: []Target{{Revision: "m-1", Percent: 100, Backends: []string{strings.TrimPrefix(slow.URL, "http://")}, Concurrency: 1}}},
	}}}}); err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(r)
	defer front.Close()
	codes := make(chan int, 12)
	for range 11 {
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
	// Wait until one runs and ten wait.
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := r.limiter("d", "m-1")
		l.mu.Lock()
		queued := len(l.waiters)
		l.mu.Unlock()
		if running.Load() == 1 && queued == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("running %d, queued %d", running.Load(), queued)
		}
		time.Sleep(5 * time.Millisecond) // bounded poll
	}
	resp, err := http.Post(front.URL+"/v1/models/m:predict", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "overloaded") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("12th request: %d %s", resp.StatusCode, body)
	}
	close(release)
	for range 11 {
		if c := <-codes; c != 200 {
			t.Fatalf("queued request got %d", c)
		}
	}
	if peak.Load() != 1 {
		t.Fatalf("%d requests ran at once, want containerConcurrency 1", peak.Load())
	}
}

func TestIngressRefusesRepositoryAPI(t *testing.T) {
	r := New("example.com", nil)
	for _, path := range []string{"/v2/repository/index", "/v2/repository/models/m/unload", "/v2/repository/models/m/load"} {
		for _, h := range []http.Handler{r, r.ComponentHandler(Predictor)} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", path, nil)
			req.Host = "m.default.example.com"
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "not served through the ingress") {
				t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
			}
		}
	}
}

// TestStartingServiceAnswers503: a known service with no ready revision
// yet answers 503 with Retry-After (clients retry), not 404.
func TestStartingServiceAnswers503(t *testing.T) {
	r := New("example.com", nil)
	if err := r.Update(&Table{Domain: "example.com", Services: []*Service{{Name: "starting", Namespace: "default", Components: map[string]*Component{Predictor: {}}}}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host, path string
		want       int
	}{
		{"starting.default.example.com", "/v1/models/starting:predict", 503},
		{"", "/v2/models/starting/infer", 503},
		{"starting.default.example.com", "/v1/models/starting:explain", 404},
		{"nope.default.example.com", "/v1/models/nope:predict", 404},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", c.path, strings.NewReader("{}"))
		req.Host = c.host
		r.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s%s: %d %s, want %d", c.host, c.path, rec.Code, rec.Body, c.want)
		}
		if c.want == 503 && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", c.path)
		}
	}
}

// TestBodiesReachTheReplica: small bodies (read whole by the ingress),
// large ones and ones of unknown length (streamed) arrive intact, with
// their length.
func TestBodiesReachTheReplica(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("X-Length", strconv.FormatInt(r.ContentLength, 10))
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	r := New("example.com", nil)
	err := r.Update(&Table{Domain: "example.com", Services: []*Service{
		{Name: "iris", Namespace: "default", Components: map[string]*Component{
			Predictor: {Targets: []Target{{Revision: "iris-predictor-1", Percent: 100, Backends: []string{strings.TrimPrefix(s.URL, "http://")}}}},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		size   int
		length int64 // -1: unknown (chunked)
	}{
		{"small", 37, 37},
		{"at the limit", maxBufferedBody, maxBufferedBody},
		{"large", maxBufferedBody + 1, maxBufferedBody + 1},
		{"unknown length", 1000, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Repeat("x", tc.size)
			req := httptest.NewRequest("POST", "http://iris.default.example.com/v1/models/iris:predict", io.NopCloser(strings.NewReader(body)))
			req.ContentLength = tc.length
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != 200 || rec.Body.String() != body {
				t.Fatalf("got %d, %d bytes back; want 200 and the %d sent", rec.Code, rec.Body.Len(), tc.size)
			}
			if got := rec.Header().Get("X-Length"); got != strconv.FormatInt(tc.length, 10) {
				t.Fatalf("replica saw Content-Length %s, want %d", got, tc.length)
			}
		})
	}
}
