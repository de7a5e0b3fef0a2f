package graphrouter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/cli"
	"github.com/ferryserve/ferry/internal/graphrouter"
)

// predictor is an httptest model server on loopback: it records the paths
// it was called on and answers with answer(request body).
type predictor struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func newPredictor(t *testing.T, answer func(w http.ResponseWriter, body map[string]any)) *predictor {
	t.Helper()
	p := &predictor{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.paths = append(p.paths, r.URL.Path)
		p.mu.Unlock()
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
			return
		}
		answer(w, body)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *predictor) calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paths...)
}

// scale answers {"predictions": instances × k}.
func scale(k float64) func(http.ResponseWriter, map[string]any) {
	return func(w http.ResponseWriter, body map[string]any) {
		in, _ := body["instances"].([]any)
		out := make([]float64, 0, len(in))
		for _, v := range in {
			f, _ := v.(float64)
			out = append(out, f*k)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"predictions": out})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runRouter runs `ferry router args... --host 127.0.0.1 --http-port P`
// until the test ends, waits for its readiness endpoint and returns its
// base URL.
func runRouter(t *testing.T, args ...string) string {
	t.Helper()
	port := freePort(t)
	args = append([]string{"router"}, append(args, "--host", "127.0.0.1", "--http-port", strconv.Itoa(port), "--log-format", "text")...)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuf
	done := make(chan int, 1)
	go func() { done <- cli.Main(ctx, args, &out, &out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("ferry router exited %d:\n%s", code, out.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("ferry router did not stop within 30s")
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("ferry router exited %d before it was ready:\n%s", code, out.String())
		default:
		}
		resp, err := hc.Get(base + graphrouter.ReadyPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry router not ready after 20s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer %d %q is not a JSON object: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, m
}

func TestRouterSequence(t *testing.T) {
	double := newPredictor(t, scale(2))
	tenfold := newPredictor(t, scale(10))
	graphJSON := `{"apiVersion":"serving.kserve.io/v1alpha1","kind":"InferenceGraph",
"metadata":{"name":"chain","namespace":"models"},
"spec":{"nodes":{"root":{"routerType":"Sequence","steps":[
  {"name":"first","serviceName":"double"},
  {"name":"second","serviceName":"tenfold","data":"$response","mapPredictionsToInstances":true}]}}}}`
	base := runRouter(t, "--graph-json", graphJSON,
		"--service-url", "double="+double.URL+"/v1/models/double:predict",
		"--service-url", "tenfold="+tenfold.URL+"/v2/models/tenfold/infer")
	code, out := post(t, base+"/", `{"instances":[1,2.5]}`)
	if code != http.StatusOK {
		t.Fatalf("status %d: %v", code, out)
	}
	if got := fmt.Sprint(out["predictions"]); got != "[20 50]" {
		t.Errorf("predictions = %s, want [20 50] (×2 then ×10)", got)
	}
	if got := double.calls(); len(got) != 1 || got[0] != "/v1/models/double:predict" {
		t.Errorf("double called on %q", got)
	}
	if got := tenfold.calls(); len(got) != 1 || got[0] != "/v2/models/tenfold/infer" {
		t.Errorf("tenfold called on %q", got)
	}

	// A GET that is not the probe is refused as KServe's router does.
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET / = %d, want 405", resp.StatusCode)
	}
}

func TestRouterSwitchFromSpecFile(t *testing.T) {
	small := newPredictor(t, scale(1))
	big := newPredictor(t, scale(-1))
	// Only the spec, as KServe's router is given it, in a file.
	spec := fmt.Sprintf(`{"nodes":{"root":{"routerType":"Switch","steps":[
  {"serviceUrl":%q,"condition":"instances.#(>10)"},
  {"serviceUrl":%q,"condition":"instances.#(<=10)"}]}}}`, big.URL+"/v1/models/big:predict", small.URL+"/v1/models/small:predict")
	file := filepath.Join(t.TempDir(), "graph.json")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	base := runRouter(t, "--graph-json", file, "--name", "switch", "--namespace", "models")

	if code, out := post(t, base+"/", `{"instances":[42]}`); code != http.StatusOK || fmt.Sprint(out["predictions"]) != "[-42]" {
		t.Errorf("42: %d %v, want the big model's [-42]", code, out)
	}
	if code, out := post(t, base+"/anything", `{"instances":[3]}`); code != http.StatusOK || fmt.Sprint(out["predictions"]) != "[3]" {
		t.Errorf("3: %d %v, want the small model's [3]", code, out)
	}
	code, out := post(t, base+"/", `{"other":[42]}`)
	if code != http.StatusNotFound || !strings.Contains(fmt.Sprint(out["error"]), "models/switch") {
		t.Errorf("no match: %d %v, want 404 naming the graph models/switch", code, out)
	}
	if len(big.calls()) != 1 || len(small.calls()) != 1 {
		t.Errorf("calls: big %q small %q, want one each", big.calls(), small.calls())
	}
}

// TestRouterStepFailures checks the failures a remote step adds: an error
// answer, no answer within routerTimeouts.serviceClient, an answer over
// the body limit, and a service nobody listens on.
func TestRouterStepFailures(t *testing.T) {
	failing := newPredictor(t, func(w http.ResponseWriter, _ map[string]any) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":"model not loaded"}`)
	})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body so the server notices the caller hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	}))
	t.Cleanup(stuck.Close)
	huge := newPredictor(t, func(w http.ResponseWriter, _ map[string]any) {
		_, _ = io.WriteString(w, `{"predictions":"`+strings.Repeat("x", 4096)+`"}`)
	})
	closed := "http://127.0.0.1:" + strconv.Itoa(freePort(t))

	for _, tc := range []struct {
		name, url string
		want      int
		msg       string
	}{
		{"error answer", failing.URL + "/v1/models/m:predict", http.StatusServiceUnavailable, "model not loaded"},
		{"timeout", stuck.URL + "/v1/models/m:predict", http.StatusGatewayTimeout, "deadline exceeded"},
		{"too large", huge.URL + "/v1/models/m:predict", http.StatusBadGateway, "answer too large"},
		{"unreachable", closed + "/v1/models/m:predict", http.StatusBadGateway, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			graphJSON := fmt.Sprintf(`{"metadata":{"name":"g","namespace":"ns"},"spec":{"routerTimeouts":{"serviceClient":1},
"nodes":{"root":{"routerType":"Sequence","steps":[{"name":"only","serviceUrl":%q}]}}}}`, tc.url)
			base := runRouter(t, "--graph-json", graphJSON, "--max-body-bytes", "1024")
			start := time.Now()
			code, out := post(t, base+"/", `{"instances":[1]}`)
			if code != tc.want || out["step"] != "only" || !strings.Contains(fmt.Sprint(out["error"]), tc.msg) {
				t.Errorf("%d %v, want %d naming step only and %q", code, out, tc.want, tc.msg)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("answered after %v: the step's 1 s timeout was not applied", d)
			}
		})
	}
}

func TestRouterRefusesInvalidGraph(t *testing.T) {
	var out bytes.Buffer
	code := cli.Main(t.Context(), []string{"router", "--graph-json", `{"nodes":{"root":{"routerType":"Splitter","steps":[{"serviceName":"a","weight":30}]}}}`,
		"--name", "g", "--host", "127.0.0.1", "--http-port", strconv.Itoa(freePort(t))}, &out, &out)
	if code == 0 || !strings.Contains(out.String(), "must sum to 100") {
		t.Errorf("exit %d, output %q: want the validation message", code, out.String())
	}
	out.Reset()
	code = cli.Main(t.Context(), []string{"router", "--graph-json", `{"nodes":{"root":{"routerType":"Sequence","steps":[{"serviceName":"a"}]}}}`,
		"--host", "127.0.0.1", "--http-port", strconv.Itoa(freePort(t))}, &out, &out)
	if code == 0 || !strings.Contains(out.String(), "--name") {
		t.Errorf("exit %d, output %q: want a spec without a name refused, naming --name", code, out.String())
	}
	out.Reset()
	code = cli.Main(t.Context(), []string{"router", "--graph-json", `{"nodes":{}}`, "--service-url", "nourl",
		"--host", "127.0.0.1", "--http-port", strconv.Itoa(freePort(t))}, &out, &out)
	if code == 0 {
		t.Errorf("exit 0 for an invalid graph, output %q", out.String())
	}
}

func TestResolver(t *testing.T) {
	r := graphrouter.Resolver("prod", "", map[string]string{"known": "https://known.example:8443/v2/models/known/infer?x=1"})
	for _, tc := range []struct {
		step             api.InferenceStep
		service, path    string
		wantErrSubstring string
	}{
		{step: api.InferenceStep{ServiceName: "iris"}, service: "http://iris-predictor.prod.svc.cluster.local", path: "/v1/models/iris:predict"},
		{step: api.InferenceStep{ServiceName: "known"}, service: "https://known.example:8443", path: "/v2/models/known/infer?x=1"},
		{step: api.InferenceStep{ServiceURL: "http://other.team.svc.cluster.local"}, service: "http://other.team.svc.cluster.local", path: "/"},
		{step: api.InferenceStep{ServiceURL: "ftp://x/y"}, wantErrSubstring: "not an absolute http(s) URL"},
	} {
		got, err := r(tc.step)
		switch {
		case tc.wantErrSubstring != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstring) {
				t.Errorf("%+v: err %v, want %q", tc.step, err, tc.wantErrSubstring)
			}
		case err != nil:
			t.Errorf("%+v: %v", tc.step, err)
		case got.Service != tc.service || got.Path != tc.path || got.Namespace != "prod":
			t.Errorf("%+v: %+v, want %s %s", tc.step, got, tc.service, tc.path)
		}
	}
}
