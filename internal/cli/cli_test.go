package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferryserve/ferry/internal/mgmt"
)

func TestApplyEnvAndConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ferry.yaml")
	if err := os.WriteFile(cfg, []byte("http-port: 9000\ngrpc-port: 9001\nlog-level: debug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	newFlags := func() (*pflag.FlagSet, *int, *int, *string) {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		h := fs.Int("http-port", 8080, "")
		g := fs.Int("grpc-port", 8081, "")
		l := fs.String("log-level", "info", "")
		fs.String("config", "", "")
		return fs, h, g, l
	}

	// Precedence: command line > environment > file > default.
	fs, h, g, l := newFlags()
	if err := fs.Parse([]string{"--http-port=7000"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRY_GRPC_PORT", "7001")
	if err := applyEnvAndConfig(fs, cfg); err != nil {
		t.Fatal(err)
	}
	if *h != 7000 || *g != 7001 || *l != "debug" {
		t.Fatalf("got http=%d grpc=%d log=%s; want 7000 (flag), 7001 (env), debug (file)", *h, *g, *l)
	}

	// Bad values name their source.
	fs, _, _, _ = newFlags()
	t.Setenv("FERRY_GRPC_PORT", "abc")
	if err := applyEnvAndConfig(fs, ""); err == nil || !strings.Contains(err.Error(), "FERRY_GRPC_PORT") {
		t.Fatalf("bad env value: err = %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("htp-port: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, _, _, _ = newFlags()
	t.Setenv("FERRY_GRPC_PORT", "1")
	if err := applyEnvAndConfig(fs, bad); err == nil || !strings.Contains(err.Error(), `unknown key "htp-port"`) {
		t.Fatalf("unknown key: err = %v", err)
	}
}

func TestServeErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "--model-dir is required"},
		{[]string{"serve", "--model-dir", "/does/not/exist"}, "no such file"},
		{[]string{"serve", "--model-dir", t.TempDir()}, "no models in"},
		{[]string{"serve", "--model-dir", ".", "--model-format", "caffe"}, `--model-format "caffe"`},
		{[]string{"serve", "--model-dir", ".", "--log-level", "loud"}, "--log-level"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		code := Main(t.Context(), tc.args, &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want non-zero and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

func TestURIBaseName(t *testing.T) {
	for in, want := range map[string]string{
		"s3://bucket/models/iris/":             "iris",
		"gs://b/iris":                          "iris",
		"https://h/models/iris.tar.gz?sig=abc": "iris",
		"https://h/iris/model.json":            "iris",
		"file:///tmp/models/fraud.zip":         "fraud",
		"pvc://claim/xgb":                      "xgb",
	} {
		if got := uriBaseName(in); got != want {
			t.Errorf("uriBaseName(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeUp answers like ferry up's management API from fixed objects, and
// records what its ingress is asked.
type fakeUp struct {
	api, ingress *httptest.Server
	objects      map[string]string // "inferenceservices/NAME" → JSON
	logs         map[string][]string
	mu           sync.Mutex
	asked        []string // "HOST PATH" of each ingress request
}

func newFakeUp(t *testing.T) *fakeUp {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no token record of the user's own
	t.Setenv("FERRY_TOKEN", "")
	f := &fakeUp{objects: map[string]string{}, logs: map[string][]string{"mms-predictor-00001-0": {"line one", "line two"}}}
	f.ingress = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.asked = append(f.asked, r.Host+" "+r.URL.Path)
		f.mu.Unlock()
		_, _ = io.WriteString(w, `{"predictions":[1]}`)
	}))
	t.Cleanup(f.ingress.Close)
	isvc := func(name, protocol, extra string) string {
		return fmt.Sprintf(`{"metadata":{"name":%q,"namespace":"default"},"spec":{"predictor":{"sklearn":{%s}}%s},
			"status":{"url":"http://%s.default.example.com","address":{"url":%q}}}`, name, protocol, extra, name, f.ingress.URL)
	}
	f.objects["inferenceservices/mms"] = isvc("mms", `"protocolVersion":"v1"`, `,"transformer":{"containers":[{"name":"t","image":"x"}]}`)
	f.objects["inferenceservices/v2iris"] = isvc("v2iris", `"protocolVersion":"v2","storageUri":"file:///m"`, "")
	f.objects["trainedmodels/tm-iris"] = `{"metadata":{"name":"tm-iris"},"spec":{"inferenceService":"mms","model":{"storageUri":"file:///x","framework":"sklearn","memory":"1Mi"}}}`
	f.objects["trainedmodels/orphan"] = `{"metadata":{"name":"orphan"},"spec":{"inferenceService":"gone","model":{"storageUri":"file:///x","framework":"sklearn","memory":"1Mi"}}}`
	mux := http.NewServeMux()
	notFound := func(w http.ResponseWriter) {
		w.WriteHeader(404)
		_, _ = io.WriteString(w, `{"error":"not found"}`)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"status":"ok"}`) })
	mux.HandleFunc("GET /api/v1/{kind}", func(w http.ResponseWriter, r *http.Request) {
		var items []string
		for k, v := range f.objects {
			if strings.HasPrefix(k, r.PathValue("kind")+"/") {
				items = append(items, v)
			}
		}
		_, _ = io.WriteString(w, `{"items":[`+strings.Join(items, ",")+`]}`)
	})
	mux.HandleFunc("GET /api/v1/namespaces/default/{kind}/{name}", func(w http.ResponseWriter, r *http.Request) {
		o, ok := f.objects[r.PathValue("kind")+"/"+r.PathValue("name")]
		if !ok {
			notFound(w)
			return
		}
		_, _ = io.WriteString(w, o)
	})
	mux.HandleFunc("GET /api/v1/namespaces/default/inferenceservices/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		out := mgmt.Logs{Replicas: map[string][]string{}}
		if r.PathValue("name") == "mms" && r.URL.Query().Get("component") == "predictor" {
			out.Replicas = f.logs
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	f.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			_, _ = io.WriteString(w, `{"error":"missing or wrong API token"}`)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.api.Close)
	return f
}

// run runs the ferry command line against f.
func (f *fakeUp) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(t.Context(), append(args, "--server", f.api.URL, "--token", "tok"), &out, &errb)
	return code, out.String(), errb.String()
}

func TestInferResolvesTrainedModels(t *testing.T) {
	f := newFakeUp(t)
	tests := []struct {
		args      []string
		wantCode  int
		wantAsked string // host and path the ingress saw
		wantErr   []string
	}{
		{[]string{"infer", "mms", "-d", `{"instances":[[1]]}`}, 0, "mms.default.example.com /v1/models/mms:predict", nil},
		{[]string{"infer", "tm-iris", "-d", `{"instances":[[1]]}`}, 0, "mms.default.example.com /v1/models/tm-iris:predict", nil},
		{[]string{"infer", "mms", "--model", "iris-b", "-d", `{"instances":[[1]]}`}, 0, "mms.default.example.com /v1/models/iris-b:predict", nil},
		{[]string{"infer", "v2iris", "-d", `{"inputs":[]}`}, 0, "v2iris.default.example.com /v2/models/v2iris/infer", nil},
		{[]string{"infer", "mms", "-d", `{"inputs":[{"name":"x","datatype":"FP32"}]}`}, 0, "mms.default.example.com /v2/models/mms/infer", nil},
		{[]string{"infer", "nope", "-d", `{}`}, 1, "", []string{`no inferenceservice or trainedmodel "nope" in namespace default`, "inferenceservices there: mms, v2iris", "trainedmodels there: orphan, tm-iris"}},
		{[]string{"infer", "tm-iris", "--model", "other", "-d", `{}`}, 1, "", []string{`--model "other"`, `inferenceservice "mms"`}},
		{[]string{"infer", "orphan", "-d", `{}`}, 1, "", []string{`trainedmodel "orphan": inferenceservice "gone" not found`}},
	}
	for _, tc := range tests {
		f.mu.Lock()
		f.asked = nil
		f.mu.Unlock()
		code, out, errs := f.run(t, tc.args...)
		if code != tc.wantCode {
			t.Errorf("%v: exit %d (stderr %q); want %d", tc.args, code, errs, tc.wantCode)
			continue
		}
		f.mu.Lock()
		asked := strings.Join(f.asked, "; ")
		f.mu.Unlock()
		if asked != tc.wantAsked {
			t.Errorf("%v: ingress asked %q; want %q", tc.args, asked, tc.wantAsked)
		}
		if tc.wantCode == 0 && out != "{\"predictions\":[1]}\n" {
			t.Errorf("%v: stdout %q", tc.args, out)
		}
		for _, w := range tc.wantErr {
			if !strings.Contains(errs, w) {
				t.Errorf("%v: stderr %q lacks %q", tc.args, errs, w)
			}
		}
	}
}

func TestLogsNotFound(t *testing.T) {
	f := newFakeUp(t)
	tests := []struct {
		args                []string
		wantCode            int
		wantOut, wantStderr string
	}{
		{[]string{"logs", "isvc", "mms"}, 0, "[mms-predictor-00001-0] line one\n[mms-predictor-00001-0] line two\n", ""},
		{[]string{"logs", "isvc", "nope"}, 1, "", `inferenceservice "nope" not found in namespace default (inferenceservices there: mms, v2iris)`},
		{[]string{"logs", "isvc", "mms", "--component", "bogus"}, 1, "", `inferenceservice "mms" has no component "bogus" (it has: predictor, transformer)`},
		{[]string{"logs", "isvc", "v2iris", "--component", "explainer"}, 1, "", `(it has: predictor)`},
		{[]string{"logs", "isvc", "mms", "--component", "transformer"}, 0, "", "no running replicas of mms's transformer"},
		{[]string{"logs", "tm", "tm-iris"}, 1, "", "logs supports isvc"},
		{[]string{"describe", "isvc", "nope"}, 1, "", `inferenceservice "nope" not found`},
		{[]string{"get", "tm", "nope"}, 1, "", `trainedmodel "nope" not found in namespace default (trainedmodels there: orphan, tm-iris)`},
	}
	for _, tc := range tests {
		code, out, errs := f.run(t, tc.args...)
		if code != tc.wantCode || out != tc.wantOut || !strings.Contains(errs, tc.wantStderr) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, out, errs, tc.wantCode, tc.wantOut, tc.wantStderr)
		}
	}
}

func TestClientCommandWaitsForStartingServer(t *testing.T) {
	f := newFakeUp(t)
	// A port where nothing listens yet: the command starts first, the
	// server after it, as with `ferry up -f DIR & ferry get isvc`.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	done := make(chan struct{})
	var code int
	var out, errb bytes.Buffer
	go func() {
		defer close(done)
		code = Main(t.Context(), []string{"get", "isvc", "--server", "http://" + addr, "--token", "tok"}, &out, &errb)
	}()
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	srv := &http.Server{Handler: f.api.Config.Handler}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	<-done
	if code != 0 || !strings.Contains(out.String(), "v2iris.default.example.com") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

func TestClientCommandGivesUpOnNoServer(t *testing.T) {
	newFakeUp(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out, errb bytes.Buffer
	start := time.Now()
	code := Main(t.Context(), []string{"get", "isvc", "--server", "http://" + addr, "--server-wait", "300ms"}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "cannot reach ferry up") || !strings.Contains(errb.String(), "set --server or FERRY_SERVER") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 10*time.Second {
		t.Fatalf("gave up after %s; want about --server-wait", took)
	}
}

func TestLoggerFormats(t *testing.T) {
	var b bytes.Buffer
	log, err := newLogger(&b, "info", "auto") // a buffer is no terminal: JSON
	if err != nil {
		t.Fatal(err)
	}
	log.Info("model loaded", "took", 1500*time.Millisecond, slog.Group("pull", slog.Duration("took", 2*time.Second)))
	var rec struct {
		Msg  string
		Took string
		Pull struct{ Took string }
	}
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
		t.Fatalf("auto on a buffer is not JSON: %v: %s", err, b.String())
	}
	if rec.Took != "1.5s" || rec.Pull.Took != "2s" {
		t.Fatalf("durations %q, %q in %s; want 1.5s, 2s", rec.Took, rec.Pull.Took, b.String())
	}
	b.Reset()
	if log, err = newLogger(&b, "info", "text"); err != nil {
		t.Fatal(err)
	}
	log.Info("model loaded", "took", 1500*time.Millisecond)
	if !strings.Contains(b.String(), "took=1.5s") {
		t.Fatalf("text: %s", b.String())
	}
	if _, err := newLogger(&b, "info", "xml"); err == nil || !strings.Contains(err.Error(), "want auto, json or text") {
		t.Fatalf("bad format: %v", err)
	}
}

// TestGetAsV1alpha2: get shows a stored InferenceService as KFServing
// 0.5's v1alpha2, by kind suffix or --api-version; other kinds and
// versions are refused by name.
func TestGetAsV1alpha2(t *testing.T) {
	f := newFakeUp(t)
	for _, args := range [][]string{
		{"get", "isvc.v1alpha2.serving.kubeflow.org", "v2iris", "-o", "yaml"},
		{"get", "isvc", "v2iris", "-o", "yaml", "--api-version", "serving.kubeflow.org/v1alpha2"},
	} {
		code, out, errs := f.run(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		for _, want := range []string{"apiVersion: serving.kubeflow.org/v1alpha2", "default:\n", "predictor:\n", "sklearn:\n", "storageUri: file:///m"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: output lacks %q:\n%s", args, want, out)
			}
		}
	}
	code, out, _ := f.run(t, "get", "isvc", "v2iris", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "predictor:\n    sklearn:") || strings.Contains(out, "default:") {
		t.Errorf("plain get: exit %d:\n%s", code, out)
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"get", "tm.v1alpha2", "-o", "yaml"}},
		{[]string{"get", "isvc", "--api-version", "v2"}},
	} {
		if code, _, errs := f.run(t, tc.args...); code == 0 || !strings.Contains(errs, "version") {
			t.Errorf("%v: exit %d, stderr %q; want a refusal naming the version", tc.args, code, errs)
		}
	}
}
