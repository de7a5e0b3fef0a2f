package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type upProcess struct {
	cmd    *exec.Cmd
	env    []string // the up process's and its CLI's: a config dir of the test's own
	data   string
	api    string
	ingr   string
	grpc   string
	stderr *syncBuffer
	done   chan error
	exited chan struct{} // closed when the process has exited
}

// startUp runs ferry up and returns once it serves (or fails the test
// with its log as soon as it exits). A port given as 0 is picked by ferry
// up itself and read from its "ready" log line, so no other process can
// take it between a test choosing it and ferry up binding it.
func startUp(t *testing.T, bin, dataDir string, hp, gp, ap int, extra ...string) *upProcess {
	t.Helper()
	args := append([]string{"up", "--data-dir", dataDir, "--host", "127.0.0.1", "--http-port", fmt.Sprint(hp), "--grpc-port", fmt.Sprint(gp), "--api-addr", fmt.Sprintf("127.0.0.1:%d", ap), "--log-format", "json"}, extra...)
	u := &upProcess{cmd: exec.Command(bin, args...), api: fmt.Sprintf("http://127.0.0.1:%d", ap), ingr: fmt.Sprintf("http://127.0.0.1:%d", hp), stderr: &syncBuffer{}, done: make(chan error, 1), exited: make(chan struct{})}
	u.data = dataDir
	u.env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(t.TempDir(), "config"))
	u.cmd.Env = u.env
	u.cmd.Stderr = u.stderr
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := u.cmd.Wait()
		close(u.exited)
		u.done <- err
	}()
	t.Cleanup(func() { u.stop(t) })
	deadline := time.After(60 * time.Second)
	for {
		if ready := u.readyLine(); ready != nil {
			// api is a URL (https when not on loopback); the others are addresses.
			u.api, u.ingr, u.grpc = ready.API, "http://"+ready.Ingress, ready.GRPC
			return u
		}
		select {
		case <-u.exited:
			t.Fatalf("ferry up exited before it was ready:\n%s", u.stderr)
		case <-deadline:
			t.Fatalf("ferry up not ready after 60s:\n%s", u.stderr)
		case <-time.After(20 * time.Millisecond): // bounded poll of the log
		}
	}
}

type upReady struct {
	Msg                string
	Ingress, GRPC, API string
}

// readyLine finds ferry up's "ready for commands" log line.
func (u *upProcess) readyLine() *upReady {
	for _, line := range strings.Split(u.stderr.String(), "\n") {
		var r upReady
		if json.Unmarshal([]byte(line), &r) == nil && strings.HasPrefix(r.Msg, "ready for commands") {
			return &r
		}
	}
	return nil
}

func (u *upProcess) stop(t *testing.T) {
	if u.cmd.ProcessState != nil {
		return
	}
	_ = u.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-u.done:
	case <-time.After(30 * time.Second):
		_ = u.cmd.Process.Kill()
		t.Errorf("ferry up did not stop within 30s of SIGTERM")
	}
}

// ferryCLI runs a client command against u.
func (u *upProcess) ferryCLI(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--server", u.api)...)
	cmd.Env = u.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ferry %v: %v\n%s", args, err, out)
	}
	return string(out)
}

type isvcStatus struct {
	Status struct {
		URL        string
		Conditions []struct{ Type, Status, Message string }
		Components map[string]struct {
			LatestReadyRevision, LatestCreatedRevision, LatestRolledoutRevision, PreviousRolledoutRevision string
			Traffic                                                                                        []struct {
				RevisionName string
				Percent      int
				Tag          string
			}
		}
	}
}

// apiGet reads path from the management API with the token ferry up
// keeps in its data dir.
func (u *upProcess) apiGet(path string) (*http.Response, error) {
	tok, err := os.ReadFile(filepath.Join(u.data, "api-token"))
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest("GET", u.api+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	return http.DefaultClient.Do(req)
}

// waitStatus polls the API until ok accepts the service's status (bounded).
func (u *upProcess) waitStatus(t *testing.T, name, what string, ok func(isvcStatus) bool) isvcStatus {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var s isvcStatus
	for {
		resp, err := u.apiGet("/api/v1/namespaces/default/inferenceservices/" + name)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			s = isvcStatus{}
			if json.Unmarshal(b, &s) == nil && ok(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v\n%s", what, s.Status, u.stderr)
		}
		select {
		case <-u.exited:
			t.Fatalf("ferry up exited while waiting for %s:\n%s", what, u.stderr)
		case <-time.After(50 * time.Millisecond): // bounded poll
		}
	}
}

func ready(s isvcStatus) bool {
	for _, c := range s.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// infer posts body through the ingress with a Host header and returns the
// revision that served it.
func (u *upProcess) infer(t *testing.T, host, path, body string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u.ingr+path, strings.NewReader(body))
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Ferry-Revision"), string(b)
}

func writeYAML(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUpEndToEnd drives real `ferry up` processes: apply, infer by host and
// path, canary 10 % checked statistically, promote, roll back, a
// transformer of the test's own, and a restart that resumes everything.
func TestUpEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up and its replicas")
	}
	bin := buildFerry(t)
	tdir := t.TempDir()
	transformer := buildTestProgram(t, "transformer")
	models, _ := filepath.Abs("../../examples/models/lightgbm-multiclass")
	dataDir := filepath.Join(tdir, "data")
	u := startUp(t, bin, dataDir, 0, 0, 0, "-f", "../../examples/inferenceservices")
	const name = "lightgbm-multiclass"
	host := name + ".default.example.com"
	v2body := readFile(t, "../../examples/requests/lightgbm-v2.json")
	v1body := `{"instances":[[-0.6879,-0.2959,0.0101,1.2319,-0.2218]]}`

	s := u.waitStatus(t, name, "Ready", ready)
	if s.Status.URL != "http://"+host {
		t.Fatalf("status url %q", s.Status.URL)
	}
	rev1 := s.Status.Components["predictor"].LatestReadyRevision
	if rev1 != name+"-predictor-00001" {
		t.Fatalf("first revision %q", rev1)
	}
	if code, rev, body := u.infer(t, host, "/v2/models/"+name+"/infer", v2body); code != 200 || rev != rev1 || !strings.Contains(body, "0.11981330373300655") {
		t.Fatalf("infer by host: %d %s %s", code, rev, body)
	}
	if code, _, body := u.infer(t, "", "/v1/models/"+name+":predict", v1body); code != 200 || !strings.Contains(body, "0.11981330373300655") {
		t.Fatalf("infer by path: %d %s", code, body)
	}
	// The other examples: scikit-learn (V1) and XGBoost (V2), by host.
	u.waitStatus(t, "sklearn-iris", "sklearn Ready", ready)
	u.waitStatus(t, "xgboost-iris", "xgboost Ready", ready)
	iris := readFile(t, "../../examples/requests/iris-v1.json")
	if code, _, body := u.infer(t, "sklearn-iris.default.example.com", "/v1/models/sklearn-iris:predict", iris); code != 200 || body != `{"predictions":[1,1]}` {
		t.Fatalf("sklearn example: %d %s", code, body)
	}
	if code, _, body := u.infer(t, "xgboost-iris.default.example.com", "/v2/models/xgboost-iris/infer", readFile(t, "../../examples/requests/iris-v2.json")); code != 200 || !strings.Contains(body, "0.97116977") {
		t.Fatalf("xgboost example: %d %s", code, body)
	}
	if grpcurl, err := exec.LookPath("grpcurl"); err == nil {
		cmd := exec.Command(grpcurl, "-plaintext", "-authority", host, "-d", `{"model_name":"`+name+`","inputs":[{"name":"input-0","datatype":"FP64","shape":[1,5],"contents":{"fp64_contents":[-0.6879,-0.2959,0.0101,1.2319,-0.2218]}}]}`,
			u.grpc, "inference.GRPCInferenceService/ModelInfer")
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "0.11981330373300655") {
			t.Fatalf("gRPC through the ingress: %v\n%s", err, out)
		}
	}
	if out := u.ferryCLI(t, bin, "get", "isvc"); !strings.Contains(out, "PREVROLLEDOUTREVISION") || !strings.Contains(out, rev1) {
		t.Fatalf("ferry get isvc:\n%s", out)
	}

	// Canary: a spec change at 10 %.
	spec := func(extra string) string {
		return fmt.Sprintf("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: %s\nspec:\n  predictor:\n%s    lightgbm:\n      protocolVersion: v2\n      storageUri: %s\n", name, extra, models)
	}
	u.ferryCLI(t, bin, "apply", "-f", writeYAML(t, tdir, "canary.yaml", spec("    canaryTrafficPercent: 10\n")))
	rev2 := name + "-predictor-00002"
	u.waitStatus(t, name, "canary at 10%", func(s isvcStatus) bool {
		tr := s.Status.Components["predictor"].Traffic
		return len(tr) == 2 && tr[0].RevisionName == rev2 && tr[0].Percent == 10
	})
	const n = 2000
	hits := 0
	for range n {
		code, rev, _ := u.infer(t, host, "/v2/models/"+name+"/infer", v2body)
		if code != 200 {
			t.Fatalf("canary request: %d", code)
		}
		if rev == rev2 {
			hits++
		}
	}
	if pct := float64(hits) * 100 / n; pct < 7 || pct > 13 {
		t.Fatalf("canary got %.1f%% of traffic, want 10%% ± 3%%", pct)
	}
	if _, rev, _ := u.infer(t, "prev-"+host, "/v2/models/"+name+"/infer", v2body); rev != rev1 {
		t.Fatalf("prev- tag routed to %q", rev)
	}

	// Promote, then pin back to the previous revision (rollback).
	u.ferryCLI(t, bin, "apply", "-f", writeYAML(t, tdir, "promote.yaml", spec("")))
	u.waitStatus(t, name, "promotion", func(s isvcStatus) bool {
		c := s.Status.Components["predictor"]
		return c.LatestRolledoutRevision == rev2 && c.PreviousRolledoutRevision == rev1 && len(c.Traffic) == 1
	})
	u.ferryCLI(t, bin, "apply", "-f", writeYAML(t, tdir, "pin.yaml", spec("    canaryTrafficPercent: 0\n")))
	u.waitStatus(t, name, "rollback pin", func(s isvcStatus) bool {
		tr := s.Status.Components["predictor"].Traffic
		return len(tr) == 2 && tr[1].RevisionName == rev1 && tr[1].Percent == 100
	})
	for range 20 {
		if _, rev, _ := u.infer(t, host, "/v2/models/"+name+"/infer", v2body); rev != rev1 {
			t.Fatalf("pinned traffic reached %q", rev)
		}
	}

	// A transformer of our own in front of the predictor.
	withTransformer := spec("") + fmt.Sprintf("  transformer:\n    containers:\n    - name: kserve-container\n      image: example/transformer:latest\n      command: [%q]\n", transformer)
	u.ferryCLI(t, bin, "apply", "-f", writeYAML(t, tdir, "transformer.yaml", withTransformer))
	u.waitStatus(t, name, "transformer ready", func(s isvcStatus) bool {
		return ready(s) && s.Status.Components["transformer"].LatestReadyRevision != ""
	})
	code, rev, body := u.infer(t, host, "/v1/models/"+name+":predict", v1body)
	if code != 200 || !strings.Contains(body, `"transformer":"`+name+`"`) || !strings.Contains(rev, "transformer") {
		t.Fatalf("through transformer: %d %s %s", code, rev, body)
	}

	// Restart: everything comes back from the store.
	u.stop(t)
	u2 := startUp(t, bin, dataDir, 0, 0, 0)
	u2.waitStatus(t, name, "Ready after restart", func(s isvcStatus) bool {
		return ready(s) && s.Status.Components["transformer"].LatestReadyRevision != ""
	})
	code, _, body = u2.infer(t, host, "/v1/models/"+name+":predict", v1body)
	if code != 200 || !strings.Contains(body, "transformer") {
		t.Fatalf("after restart: %d %s", code, body)
	}
	if out := u2.ferryCLI(t, bin, "describe", "isvc", name); !strings.Contains(out, "Revisions:") || !strings.Contains(out, rev2) {
		t.Fatalf("describe:\n%s", out)
	}
	u2.ferryCLI(t, bin, "delete", "isvc", name)
	if code, _, _ := u2.infer(t, host, "/v1/models/"+name+":predict", v1body); code != 404 {
		t.Fatalf("deleted service still routed: %d", code)
	}
}

// TestUpTrainedModels: TrainedModels attach to a multi-model
// InferenceService, load through its puller, report their URL, and unload
// when deleted.
func TestUpTrainedModels(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up and its replicas")
	}
	bin := buildFerry(t)
	u := startUp(t, bin, t.TempDir(), 0, 0, 0, "-f", "../../examples/inferenceservices/multimodel.yaml")
	u.waitStatus(t, "mms", "Ready", ready)
	tmReady := func(name string) bool {
		resp, err := u.apiGet("/api/v1/namespaces/default/trainedmodels/" + name)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var tm struct {
			Status struct {
				URL        string
				Conditions []struct{ Type, Status string }
			}
		}
		if json.NewDecoder(resp.Body).Decode(&tm) != nil {
			return false
		}
		for _, c := range tm.Status.Conditions {
			if c.Type == "Ready" && c.Status == "True" {
				return tm.Status.URL == "http://mms.default.example.com/v1/models/"+name+":predict"
			}
		}
		return false
	}
	deadline := time.Now().Add(60 * time.Second)
	for !(tmReady("iris-a") && tmReady("iris-b")) {
		if time.Now().After(deadline) {
			t.Fatalf("trained models not ready\n%s", u.stderr)
		}
		time.Sleep(50 * time.Millisecond) // bounded poll
	}
	body := readFile(t, "../../examples/requests/iris-v1.json")
	if code, _, out := u.infer(t, "", "/v1/models/iris-a:predict", body); code != 200 || out != `{"predictions":[1,1]}` {
		t.Fatalf("iris-a by path: %d %s", code, out)
	}
	if code, _, out := u.infer(t, "mms.default.example.com", "/v1/models/iris-b:predict", body); code != 200 || !strings.Contains(out, "0.97116977") {
		t.Fatalf("iris-b by host: %d %s", code, out)
	}
	if out := u.ferryCLI(t, bin, "get", "tm"); !strings.Contains(out, "iris-b") {
		t.Fatalf("ferry get tm:\n%s", out)
	}
	u.ferryCLI(t, bin, "delete", "tm", "iris-b")
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, _, _ := u.infer(t, "mms.default.example.com", "/v1/models/iris-b:predict", body)
		if code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("iris-b still served after delete: %d", code)
		}
		time.Sleep(50 * time.Millisecond) // bounded poll
	}
}

// TestUpExternalServer: a predictor that is an external V2 server (a process
// of the test's own, as TorchServe or Triton would be) is reached through
// the same ingress, with its readiness probe honoured.
func TestUpExternalServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up and its replicas")
	}
	bin := buildFerry(t)
	tdir := t.TempDir()
	server := buildTestProgram(t, "v2server")
	events := filepath.Join(tdir, "events.jsonl")
	yaml := fmt.Sprintf(`apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: external
spec:
  predictor:
    logger:
      mode: all
      url: file://%s
    containers:
    - name: kserve-container
      image: example/v2server:latest
      command: [%q]
      ports:
      - containerPort: 8080
      readinessProbe:
        httpGet: {path: /v2/health/ready, port: 8080}
        periodSeconds: 1
`, events, server)
	u := startUp(t, bin, t.TempDir(), 0, 0, 0, "-f", writeYAML(t, tdir, "external.yaml", yaml))
	u.waitStatus(t, "external", "Ready", ready)
	code, _, body := u.infer(t, "external.default.example.com", "/v2/models/external/infer", `{"inputs":[{"name":"x","shape":[3],"datatype":"FP64","data":[1,2,3.5]}]}`)
	if code != 200 || !strings.Contains(body, `"data":[6.5]`) {
		t.Fatalf("external V2 server through the ingress: %d %s", code, body)
	}
	if code, _, body := u.infer(t, "external.default.example.com", "/v2/models/external/infer", `{}`); code != 400 {
		t.Fatalf("external server's error status must pass through: %d %s", code, body)
	}
	// The ingress logs the external server's traffic, errors included.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(events)
		if strings.Count(string(b), `"type":"org.kubeflow.serving.inference.response"`) == 2 &&
			strings.Contains(string(b), `"statuscode":"400"`) && strings.Contains(string(b), `"inferenceservicename":"external"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logged events:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond) // bounded poll
	}
}

// TestUpScaleToZero: a minReplicas: 0 service (a small XGBoost model) goes
// to zero when idle, and
// the next request is held by the activator until a replica is ready — it
// gets its answer, never "model not ready".
func TestUpScaleToZero(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up and its replicas")
	}
	bin := buildFerry(t)
	tdir := t.TempDir()
	models, _ := filepath.Abs("../../examples/models/xgboost-iris")
	yaml := fmt.Sprintf("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: sleepy\nspec:\n  predictor:\n    minReplicas: 0\n    xgboost:\n      storageUri: %s\n", models)
	u := startUp(t, bin, t.TempDir(), 0, 0, 0, "-f", writeYAML(t, tdir, "sleepy.yaml", yaml),
		"--stable-window", "2s", "--panic-window", "1s", "--scale-to-zero-after", "1s")
	u.waitStatus(t, "sleepy", "Ready", ready)
	replicas := func() int {
		resp, err := u.apiGet("/api/v1/namespaces/default/inferenceservices/sleepy/replicas")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var r struct{ Revisions map[string][]json.RawMessage }
		if json.NewDecoder(resp.Body).Decode(&r) != nil {
			return -1
		}
		n := 0
		for _, rs := range r.Revisions {
			n += len(rs)
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for replicas() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("never scaled to zero (replicas %d)\n%s", replicas(), u.stderr)
		}
		time.Sleep(100 * time.Millisecond) // bounded poll
	}
	s := u.waitStatus(t, "sleepy", "Ready at zero", ready) // a revision at zero stays routable
	_ = s
	start := time.Now()
	code, rev, body := u.infer(t, "sleepy.default.example.com", "/v1/models/sleepy:predict", `{"instances":[[6.8,2.8,4.8,1.4]]}`)
	cold := time.Since(start)
	if code != 200 || rev != "sleepy-predictor-00001" || !strings.Contains(body, "0.97116977") {
		t.Fatalf("request at zero: %d %s %s", code, rev, body)
	}
	t.Logf("cold start from zero replicas: %v", cold)
	if replicas() != 1 {
		t.Fatalf("replicas after activation: %d", replicas())
	}
	resp, err := http.Get(u.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ferry_autoscaler_desired_replicas{namespace="default",revision="sleepy-predictor-00001",service="sleepy"} 1`,
		`ferry_revision_requests_total{namespace="default",revision="sleepy-predictor-00001",service="sleepy"} 1`,
		`ferry_activator_requests_waiting 0`,
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestUpScaleUpReaction: under concurrent load the panic window scales a
// revision up within seconds; the test reports how long it took until the
// new replicas were ready.
func TestUpScaleUpReaction(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up and its replicas")
	}
	bin := buildFerry(t)
	tdir := t.TempDir()
	server := buildTestProgram(t, "v2server")
	yaml := fmt.Sprintf(`apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: busy
spec:
  predictor:
    minReplicas: 1
    maxReplicas: 3
    scaleMetric: concurrency
    scaleTarget: 1
    containers:
    - name: kserve-container
      image: example/v2server:latest
      command: [%q]
      env:
      - {name: SLEEP_MS, value: "100"}
      readinessProbe:
        httpGet: {path: /v2/health/ready, port: 8080}
`, server)
	u := startUp(t, bin, t.TempDir(), 0, 0, 0, "-f", writeYAML(t, tdir, "busy.yaml", yaml), "--stable-window", "10s", "--panic-window", "2s")
	u.waitStatus(t, "busy", "Ready", ready)
	readyReplicas := func() int {
		resp, err := http.Get(u.api + "/metrics")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "ferry_revision_ready_replicas{") && strings.Contains(l, `service="busy"`) {
				var v float64
				fmt.Sscanf(l[strings.LastIndexByte(l, ' ')+1:], "%g", &v)
				return int(v)
			}
		}
		return -1
	}
	// Three clients keep three requests in flight (target 1 per replica).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				u.infer(t, "busy.default.example.com", "/v2/models/busy/infer", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]}]}`)
			}
		}()
	}
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for readyReplicas() < 3 {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("did not scale to 3 ready replicas (have %d)\n%s", readyReplicas(), u.stderr)
		}
		time.Sleep(50 * time.Millisecond) // bounded poll
	}
	close(stop)
	wg.Wait()
	t.Logf("scale-up reaction: 1 -> 3 ready replicas %v after the load began", time.Since(start).Round(time.Millisecond))
}
