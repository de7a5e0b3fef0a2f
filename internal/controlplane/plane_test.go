package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/router"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestPlaneServesAndStops runs the whole plane on port-0 listeners with a
// fake runner whose replicas are one real HTTP server: an apply through
// the management API becomes a Ready service that the ingress routes to,
// and cancelling the context stops every listener and replica.
func TestPlaneServesAndStops(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"predictions":[1],"path":"`+r.URL.Path+`"}`)
	}))
	defer backend.Close()
	db, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runner := &fakeRunner{loadTime: 20 * time.Millisecond, backend: strings.TrimPrefix(backend.URL, "http://")}
	ingress, grpcLn, apiLn := listen(t), listen(t), listen(t)
	up := make(chan struct{})
	p, err := New(PlaneConfig{
		Controller:        Config{Store: db, DataDir: t.TempDir(), Runner: runner, Resync: time.Second},
		Autoscaler:        AutoscalerConfig{StableWindow: time.Minute, PanicWindow: 6 * time.Second, ScaleToZeroAfter: time.Minute},
		ActivationTimeout: time.Second,
		Ingress:           ingress, GRPC: grpcLn, API: apiLn,
		OnReady: func() { close(up) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-up:
	case err := <-done:
		t.Fatalf("Run ended before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("plane not ready after 10s")
	}

	apiURL := "http://" + apiLn.Addr().String()
	yml := "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: ok-iris}\nspec:\n  predictor:\n    sklearn: {storageUri: file:///models/iris}\n"
	resp, err := http.Post(apiURL+"/api/v1/apply", "application/yaml", strings.NewReader(yml))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("apply: %s", resp.Status)
	}

	deadline := time.Now().Add(10 * time.Second)
	var isvc api.InferenceService
	for {
		resp, err := http.Get(apiURL + "/api/v1/namespaces/default/inferenceservices/ok-iris")
		if err != nil {
			t.Fatal(err)
		}
		isvc = api.InferenceService{}
		_ = json.NewDecoder(resp.Body).Decode(&isvc)
		resp.Body.Close()
		if isvc.Status != nil && ready(isvc.Status) == "True" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not Ready after 10s: %+v", isvc.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if want := "http://" + ingress.Addr().String(); isvc.Status.Address == nil || isvc.Status.Address.URL != want {
		t.Errorf("status.address %+v, want %s", isvc.Status.Address, want)
	}

	req, _ := http.NewRequest(http.MethodPost, "http://"+ingress.Addr().String()+"/v1/models/ok-iris:predict", strings.NewReader(`{"instances":[[1,2,3,4]]}`))
	req.Host = "ok-iris.default.example.com"
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"path":"/v1/models/ok-iris:predict"`) {
		t.Fatalf("through the ingress: %s %s", resp.Status, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	for _, s := range runner.setsOf("default/ok-iris") {
		if !s.isClosed() {
			t.Errorf("replica set %s still running after Run returned", s.spec.Revision)
		}
	}
	if _, err := net.DialTimeout("tcp", ingress.Addr().String(), time.Second); err == nil {
		t.Error("the ingress still accepts connections after Run returned")
	}
}

func TestNewNeedsListeners(t *testing.T) {
	if _, err := New(PlaneConfig{}); err == nil || !strings.Contains(err.Error(), "listeners are required") {
		t.Fatalf("New without listeners: %v", err)
	}
}

func TestReachableAddr(t *testing.T) {
	for in, want := range map[string]string{"[::]:8080": "127.0.0.1:8080", "0.0.0.0:81": "127.0.0.1:81", "127.0.0.1:9": "127.0.0.1:9", "[::1]:7": "[::1]:7"} {
		addr, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := ReachableAddr(addr); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// TestAffinityAnnotations: A/B routing annotations reach the router; a
// malformed one is refused at apply, naming the annotation.
func TestAffinityAnnotations(t *testing.T) {
	db, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rt := router.New("example.com", nil)
	ctl := NewController(Config{Store: db, Router: rt, DataDir: t.TempDir(), Runner: &fakeRunner{}})
	yml := func(ann string) []byte {
		return []byte("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: ok-ab\n  annotations:\n" + ann +
			"spec:\n  predictor:\n    sklearn: {storageUri: gs://b/m}\n")
	}
	err = ctl.ApplyYAML(yml("    serving.ferryserve.io/affinity: ip\n"))
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "serving.ferryserve.io/affinity") {
		t.Fatalf("bad affinity: %v", err)
	}
	if err := ctl.ApplyYAML(yml("    serving.ferryserve.io/affinity: header:X-User-Id\n    serving.ferryserve.io/route-rules: header:X-Group=beta=>latest\n")); err != nil {
		t.Fatal(err)
	}
	if err := ctl.ReconcileAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctl.routesMu.Lock()
	a := ctl.routes["default/ok-ab"].Affinity
	ctl.routesMu.Unlock()
	if a == nil || a.Mode != "key" || a.Header != "X-User-Id" || len(a.Rules) != 1 || a.Rules[0].Tag != "latest" {
		t.Fatalf("routes carry affinity %+v", a)
	}
	ctl.stopAll()
}

// TestSameRoutesWithLoggers: a route whose request logger is the same
// (same MiddlewareID, a fresh func value) is unchanged, so resyncs do not
// republish the table; a replaced logger is a change.
func TestSameRoutesWithLoggers(t *testing.T) {
	mk := func(id string) *router.Service {
		return &router.Service{Name: "a", Namespace: "default", Components: map[string]*router.Component{
			router.Predictor: {Targets: []router.Target{{Revision: "a-1", Percent: 100}},
				Middleware: func(h http.Handler) http.Handler { return h }, MiddlewareID: id},
			router.Transformer: nil,
		}}
	}
	if !sameRoutes(mk("0xc1"), mk("0xc1")) {
		t.Error("same logger: routes differ")
	}
	if sameRoutes(mk("0xc1"), mk("0xc2")) {
		t.Error("replaced logger: routes equal")
	}
	b := mk("0xc1")
	b.Components[router.Predictor].Targets[0].Percent = 90
	if sameRoutes(mk("0xc1"), b) {
		t.Error("changed split: routes equal")
	}
}

// TestApplyChecksAttackConfig: an art explainer's config is refused at
// apply, naming the key; HopSkipJump is accepted (KServe admits only
// SquareAttack).
func TestApplyChecksAttackConfig(t *testing.T) {
	db, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctl := NewController(Config{Store: db, Router: router.New("example.com", nil), DataDir: t.TempDir(), Runner: &fakeRunner{}})
	yml := func(typ, cfg string) []byte {
		return []byte("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: digits}\nspec:\n  predictor:\n    onnx: {storageUri: gs://b/m}\n  explainer:\n    art:\n      type: " + typ + "\n      config: {" + cfg + "}\n")
	}
	err = ctl.ApplyYAML(yml("SquareAttack", `max_samples: "3"`))
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), `spec.explainer.art`) || !strings.Contains(err.Error(), "max_samples") {
		t.Fatalf("bad key: %v", err)
	}
	if err := ctl.ApplyYAML(yml("HopSkipJump", `max_iter: "10"`)); err != nil {
		t.Fatalf("HopSkipJump: %v", err)
	}
}

// TestApplyChecksExplainerConfig: a misspelt alibi or aix key is refused
// by ferry apply, naming the block and the key.
func TestApplyChecksExplainerConfig(t *testing.T) {
	db, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctl := NewController(Config{Store: db, Router: router.New("example.com", nil), DataDir: t.TempDir(), Runner: &fakeRunner{}})
	yml := func(block, typ, cfg string) []byte {
		return []byte("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\nspec:\n  predictor:\n    onnx: {storageUri: gs://b/m}\n  explainer:\n    " + block + ":\n      type: " + typ + "\n      storageUri: gs://b/d\n      config: {" + cfg + "}\n")
	}
	for _, tc := range []struct{ block, typ, cfg, want string }{
		{"alibi", "AnchorTabular", `max_samples_start: "5"`, "spec.explainer.alibi.config: AnchorTabular does not take \"max_samples_start\""},
		{"aix", "LimeImages", `num_sample: "5"`, "spec.explainer.aix.config:"},
	} {
		err := ctl.ApplyYAML(yml(tc.block, tc.typ, tc.cfg))
		if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: %v, want %q", tc.block, tc.typ, err, tc.want)
		}
	}
	if err := ctl.ApplyYAML(yml("alibi", "AnchorTabular", `threshold: "0.9"`)); err != nil {
		t.Errorf("a good config: %v", err)
	}
}
