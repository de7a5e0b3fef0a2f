package controlplane

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/router"
)

// sinkEvent is one CloudEvent a test sink received (binary mode).
type sinkEvent struct {
	header http.Header
	body   string
}

// newEventSink is an HTTP CloudEvents sink on loopback; received events
// arrive on the channel. Start it before the harness, so that it outlives
// the controller's loggers (cleanups run last-in first-out).
func newEventSink(t *testing.T) (*httptest.Server, <-chan sinkEvent) {
	t.Helper()
	ch := make(chan sinkEvent, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case ch <- sinkEvent{header: r.Header.Clone(), body: string(b)}:
		default: // the test has what it needs
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// newModelBackend answers every request with a fixed prediction and the
// path it was asked.
func newModelBackend(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"predictions":[7],"path":"`+r.URL.Path+`"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// loggedISVC is a custom-container predictor (it does not log itself)
// with an ingress logger to url, or none when url is empty.
func loggedISVC(name, url string) string {
	logger := ""
	if url != "" {
		logger = "    logger:\n      mode: all\n      url: " + url + "\n      metadataHeaders: [X-Tenant]\n"
	}
	return "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: " + name + "\nspec:\n  predictor:\n" + logger +
		"    containers:\n    - name: kserve-container\n      command: [my-server]\n"
}

// predict sends one request through the ingress router.
func predict(t *testing.T, rt *router.Router, host, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), "POST", "/v1/models/m:predict", strings.NewReader(body))
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Tenant", "acme")
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// awaitEvents returns the next n events from ch, failing after 10s.
func awaitEvents(t *testing.T, ch <-chan sinkEvent, n int) []sinkEvent {
	t.Helper()
	var out []sinkEvent
	deadline := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case ev := <-ch:
			out = append(out, ev)
		case <-deadline:
			t.Fatalf("after 10s the sink has %d of %d events", len(out), n)
		}
	}
	return out
}

func (h *harness) ingressLoggerOf(key string) *componentLogger {
	h.ctl.mu.Lock()
	defer h.ctl.mu.Unlock()
	return h.ctl.loggers[key]
}

func stopped(l *componentLogger) bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// TestIngressLoggerDeliversCloudEvents: a predictor that does not log
// itself has its traffic logged by the ingress: each request and response
// reaches the sink as a CloudEvent pair. The logger follows the spec: kept
// while unchanged, replaced when its URL changes, stopped when removed.
func TestIngressLoggerDeliversCloudEvents(t *testing.T) {
	sink1, events1 := newEventSink(t)
	sink2, events2 := newEventSink(t)
	backend := newModelBackend(t)
	h := newHarness(t)
	h.runner.backend = strings.TrimPrefix(backend.URL, "http://")
	const host, key = "ok-log.default.example.com", "default/ok-log/predictor"

	h.apply(loggedISVC("ok-log", sink1.URL))
	if st := h.status("ok-log"); ready(st) != "True" {
		t.Fatalf("not ready: %+v", st.Conditions)
	}
	code, body := predict(t, h.rt, host, `{"instances":[[1,2]]}`)
	if code != 200 || !strings.Contains(body, `"predictions":[7]`) {
		t.Fatalf("through the logger: %d %s", code, body)
	}
	evs := awaitEvents(t, events1, 2)
	byType := map[string]sinkEvent{}
	for _, ev := range evs {
		byType[ev.header.Get("Ce-Type")] = ev
	}
	req, resp := byType["org.kubeflow.serving.inference.request"], byType["org.kubeflow.serving.inference.response"]
	if req.header == nil || resp.header == nil {
		t.Fatalf("want one request and one response event, got types %v", []string{evs[0].header.Get("Ce-Type"), evs[1].header.Get("Ce-Type")})
	}
	if id := req.header.Get("Ce-Id"); id == "" || id != resp.header.Get("Ce-Id") {
		t.Errorf("request and response ids %q %q, want one shared id", id, resp.header.Get("Ce-Id"))
	}
	if req.body != `{"instances":[[1,2]]}` || !strings.Contains(resp.body, `"predictions":[7]`) {
		t.Errorf("event bodies %q / %q", req.body, resp.body)
	}
	for hdr, want := range map[string]string{
		"Ce-Source": "ferry-ingress", "Ce-Specversion": "1.0", "Ce-Inferenceservicename": "ok-log",
		"Ce-Namespace": "default", "Ce-Component": "predictor", "Ce-Metadata": `{"X-Tenant":["acme"]}`,
	} {
		if got := req.header.Get(hdr); got != want {
			t.Errorf("request event %s = %q, want %q", hdr, got, want)
		}
	}
	if got := resp.header.Get("Ce-Statuscode"); got != "200" {
		t.Errorf("response event statuscode %q", got)
	}

	// Reconciling an unchanged spec keeps the running logger.
	first := h.ingressLoggerOf(key)
	if first == nil {
		t.Fatal("no ingress logger recorded")
	}
	h.reconcile()
	if cur := h.ingressLoggerOf(key); cur != first || stopped(first) {
		t.Fatal("an unchanged logger was replaced or stopped")
	}

	// A new URL replaces it: the old one has stopped, the new sink gets
	// the traffic.
	h.apply(loggedISVC("ok-log", sink2.URL))
	second := h.ingressLoggerOf(key)
	if second == nil || second == first || !stopped(first) {
		t.Fatalf("after a URL change: logger %p (first %p, stopped %v)", second, first, stopped(first))
	}
	if code, _ := predict(t, h.rt, host, `{"instances":[[3,4]]}`); code != 200 {
		t.Fatalf("through the new logger: %d", code)
	}
	var sawNew bool
	for !sawNew {
		ev := awaitEvents(t, events2, 1)[0]
		sawNew = ev.body == `{"instances":[[3,4]]}`
	}

	// Without a logger in the spec, it stops and traffic still flows.
	h.apply(loggedISVC("ok-log", ""))
	if cur := h.ingressLoggerOf(key); cur != nil || !stopped(second) {
		t.Fatalf("after removing the logger: %p, stopped %v", cur, stopped(second))
	}
	if code, _ := predict(t, h.rt, host, `{}`); code != 200 {
		t.Fatalf("without a logger: %d", code)
	}
}

// TestIngressLoggerStopsWithItsService: deleting the service stops its
// logger; a built-in predictor never gets one (it logs in its replicas).
func TestIngressLoggerStopsWithItsService(t *testing.T) {
	sink, _ := newEventSink(t)
	h := newHarness(t)
	h.apply(loggedISVC("ok-del", sink.URL) + "---\n" +
		"apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: ok-builtin\nspec:\n  predictor:\n    logger:\n      url: " + sink.URL + "\n    sklearn:\n      storageUri: gs://b/m\n")
	l := h.ingressLoggerOf("default/ok-del/predictor")
	if l == nil {
		t.Fatal("no ingress logger for a custom container")
	}
	if h.ingressLoggerOf("default/ok-builtin/predictor") != nil {
		t.Fatal("a built-in predictor got an ingress logger")
	}
	if code, _ := apiCall(t, NewAPIServer(h.ctl).Handler(), "DELETE", "/api/v1/namespaces/default/inferenceservices/ok-del", ""); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if h.ingressLoggerOf("default/ok-del/predictor") != nil || !stopped(l) {
		t.Fatal("the deleted service's logger still runs")
	}
}

// TestIngressLoggerFailureIsAnEvent: a logger that cannot start (its
// spool cannot be created) is reported, and the service is still routed,
// unlogged.
func TestIngressLoggerFailureIsAnEvent(t *testing.T) {
	sink, _ := newEventSink(t)
	backend := newModelBackend(t)
	h := newHarness(t)
	h.runner.backend = strings.TrimPrefix(backend.URL, "http://")
	// The spool lives under DATA/spool: make that a file.
	if err := os.WriteFile(filepath.Join(h.ctl.cfg.DataDir, "spool"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.apply(loggedISVC("ok-nolog", sink.URL))
	var found bool
	for _, e := range h.ctl.Events("default", "ok-nolog") {
		if e.Reason == "LoggerFailed" && e.Type == "Warning" && strings.Contains(e.Message, "predictor") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no LoggerFailed event: %+v", h.ctl.Events("default", "ok-nolog"))
	}
	if h.ingressLoggerOf("default/ok-nolog/predictor") != nil {
		t.Fatal("a failed logger was recorded")
	}
	if code, body := predict(t, h.rt, "ok-nolog.default.example.com", `{}`); code != 200 {
		t.Fatalf("a service whose logger failed is not served: %d %s", code, body)
	}
}
