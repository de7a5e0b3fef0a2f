package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

type upReplica struct {
	Name      string
	Phase     string
	PID       int
	HTTPPort  int
	InProcess bool
}

// replicas reads a service's replicas by revision from the management API.
func (u *upProcess) replicas(t *testing.T, name string) map[string][]upReplica {
	t.Helper()
	resp, err := u.apiGet("/api/v1/namespaces/default/inferenceservices/" + name + "/replicas")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Revisions map[string][]upReplica }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Revisions
}

// v2Outputs is a V2 answer's outputs, decoded.
func v2Outputs(t *testing.T, body string) any {
	t.Helper()
	var a struct{ Outputs any }
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.Outputs == nil {
		t.Fatalf("V2 answer %q: %v", body, err)
	}
	return a.Outputs
}

// TestUpInProcessPredictors runs ferry up --in-process-predictors: the
// xgboost-iris example served inside ferry up answers exactly as the same
// model in a ferry serve process; a canary splits between an in-process
// and a process revision; a replaced revision's server stops and unloads
// its model; a model that does not load is never Ready; and ferry up stops
// cleanly.
func TestUpInProcessPredictors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up and its replicas")
	}
	bin := buildFerry(t)
	tdir := t.TempDir()
	model, _ := filepath.Abs("../../examples/models/xgboost-iris")
	spec := func(name, annotations, extra, uri string) string {
		md := "metadata:\n  name: " + name + "\n"
		if annotations != "" {
			md += "  annotations:\n    " + annotations + "\n"
		}
		return "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n" + md +
			"spec:\n  predictor:\n" + extra + "    xgboost:\n      protocolVersion: v2\n      storageUri: " + uri + "\n"
	}
	dataDir := filepath.Join(tdir, "data")
	u := startUp(t, bin, dataDir, 0, 0, 0, "--in-process-predictors")
	u.ferryCLI(t, bin, "apply", "-f", writeYAML(t, tdir, "in.yaml", spec("xgboost-iris", "", "", model)))
	u.ferryCLI(t, bin, "apply", "-f", writeYAML(t, tdir, "proc.yaml", spec("xgboost-proc", `serving.ferryserve.io/in-process: "false"`, "", model)))
	u.waitStatus(t, "xgboost-iris", "in-process Ready", ready)
	u.waitStatus(t, "xgboost-proc", "process Ready", ready)

	const rev1 = "xgboost-iris-predictor-00001"
	in := u.replicas(t, "xgboost-iris")[rev1]
	if len(in) != 1 || !in[0].InProcess || in[0].PID != u.cmd.Process.Pid {
		t.Fatalf("%s replicas %+v: want one in ferry up's process (pid %d)", rev1, in, u.cmd.Process.Pid)
	}
	proc := u.replicas(t, "xgboost-proc")["xgboost-proc-predictor-00001"]
	if len(proc) != 1 || proc[0].InProcess || proc[0].PID == u.cmd.Process.Pid {
		t.Fatalf("opted-out replicas %+v: want one process of its own", proc)
	}

	// Golden: identical answers from the in-process and the process path.
	v1s := []string{readFile(t, "../../examples/requests/iris-v1.json"), `{"instances":[[6.8,2.8,4.8,1.4]]}`, `{"instances":[[5.1,3.5,1.4,0.2],[7.7,3.0,6.1,2.3]]}`}
	golden := map[string]string{}
	for _, body := range v1s {
		code, rev, got := u.infer(t, "xgboost-iris.default.example.com", "/v1/models/xgboost-iris:predict", body)
		pcode, _, want := u.infer(t, "xgboost-proc.default.example.com", "/v1/models/xgboost-proc:predict", body)
		if code != 200 || pcode != 200 || rev != rev1 || got != want {
			t.Fatalf("V1 %s: in-process %d %q (%s), process %d %q", body, code, got, rev, pcode, want)
		}
		golden[body] = got
	}
	if !strings.Contains(golden[v1s[1]], "0.97116977") {
		t.Fatalf("V1 answer %s lacks the example's known probability", golden[v1s[1]])
	}
	v2 := readFile(t, "../../examples/requests/iris-v2.json")
	_, _, got := u.infer(t, "xgboost-iris.default.example.com", "/v2/models/xgboost-iris/infer", v2)
	_, _, want := u.infer(t, "xgboost-proc.default.example.com", "/v2/models/xgboost-proc/infer", v2)
	if !reflect.DeepEqual(v2Outputs(t, got), v2Outputs(t, want)) || !strings.Contains(got, "0.97116977") {
		t.Fatalf("V2: in-process %s, process %s", got, want)
	}
	// The in-process server also listens on its port, as a replica does.
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/models/xgboost-iris:predict", in[0].HTTPPort), "application/json", strings.NewReader(v1s[1]))
	if err != nil {
		t.Fatal(err)
	}
	direct, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(direct) != golden[v1s[1]] {
		t.Fatalf("the in-process replica's own port answered %q", direct)
	}
	if out := u.ferryCLI(t, bin, "describe", "isvc", "xgboost-iris"); !strings.Contains(out, "Ready in-process pid="+fmt.Sprint(u.cmd.Process.Pid)) {
		t.Fatalf("describe does not show the in-process replica:\n%s", out)
	}

	// A canary with a batcher runs as a process beside the in-process revision.
	const rev2, rev3 = "xgboost-iris-predictor-00002", "xgboost-iris-predictor-00003"
	batcher := "    batcher:\n      maxBatchSize: 4\n"
	u.ferryCLI(t, bin, "apply", "-f", writeYAML(t, tdir, "canary.yaml", spec("xgboost-iris", "", "    canaryTrafficPercent: 30\n"+batcher, model)))
	u.waitStatus(t, "xgboost-iris", "canary at 30%", func(s isvcStatus) bool {
		tr := s.Status.Components["predictor"].Traffic
		return ready(s) && len(tr) == 2 && tr[0].RevisionName == rev2 && tr[0].Percent == 30
	})
	if r := u.replicas(t, "xgboost-iris")[rev2]; len(r) != 1 || r[0].InProcess {
		t.Fatalf("canary replicas %+v: want a process", r)
	}
	const n = 600
	hits := map[string]int{}
	for i := range n {
		body := v1s[i%len(v1s)]
		code, rev, got := u.infer(t, "xgboost-iris.default.example.com", "/v1/models/xgboost-iris:predict", body)
		if code != 200 || got != golden[body] {
			t.Fatalf("canary request to %s: %d %q, want %q", rev, code, got, golden[body])
		}
		hits[rev]++
	}
	if pct := hits[rev2] * 100 / n; pct < 23 || pct > 37 {
		t.Fatalf("the process canary got %d%% of traffic, want 30 ± 7: %v", pct, hits)
	}

	// Promote the canary (revision 1 is kept for a rollback), then a third
	// revision, without the batcher, runs in-process again and revision 1,
	// replaced, stops: its port closes and its model is unloaded.
	u.ferryCLI(t, bin, "apply", "-f", writeYAML(t, tdir, "promote.yaml", spec("xgboost-iris", "", batcher, model)))
	u.waitStatus(t, "xgboost-iris", "promotion", func(s isvcStatus) bool {
		return s.Status.Components["predictor"].LatestRolledoutRevision == rev2
	})
	u.ferryCLI(t, bin, "apply", "-f", writeYAML(t, tdir, "third.yaml", spec("xgboost-iris", "", "", model)))
	u.waitStatus(t, "xgboost-iris", "third revision rolled out", func(s isvcStatus) bool {
		c := s.Status.Components["predictor"]
		return ready(s) && c.LatestRolledoutRevision == rev3 && c.PreviousRolledoutRevision == rev2
	})
	reps := u.replicas(t, "xgboost-iris")
	if r := reps[rev3]; len(r) != 1 || !r[0].InProcess {
		t.Fatalf("revision 3 replicas %+v: want in-process", r)
	}
	if code, rev, got := u.infer(t, "xgboost-iris.default.example.com", "/v1/models/xgboost-iris:predict", v1s[0]); code != 200 || rev != rev3 || got != golden[v1s[0]] {
		t.Fatalf("revision 3: %d %s %q", code, rev, got)
	}
	rev1Log := filepath.Join(dataDir, "logs", "default", "xgboost-iris", rev1+"-0.log")
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, running := u.replicas(t, "xgboost-iris")[rev1]
		b, _ := os.ReadFile(rev1Log)
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", in[0].HTTPPort), time.Second)
		if err == nil {
			c.Close()
		}
		if !running && err != nil && strings.Contains(string(b), `"msg":"model unloaded"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revision 1 not released: listed %v, port open %v, log:\n%s", running, err == nil, b)
		}
		time.Sleep(50 * time.Millisecond) // bounded poll
	}

	// A model that does not load: the revision is never Ready.
	broken := filepath.Join(tdir, "broken")
	if err := os.MkdirAll(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "model.json"), []byte(`{"learner": 42}`), 0o644); err != nil {
		t.Fatal(err)
	}
	u.ferryCLI(t, bin, "apply", "-f", writeYAML(t, tdir, "broken.yaml", spec("broken", "", "", broken)))
	u.waitStatus(t, "broken", "a replica", func(isvcStatus) bool { return len(u.replicas(t, "broken")) == 1 })
	time.Sleep(2 * time.Second) // the load has failed by now
	s := u.waitStatus(t, "broken", "a status", func(isvcStatus) bool { return true })
	for _, r := range u.replicas(t, "broken") {
		if len(r) != 1 || !r[0].InProcess || r[0].Phase == "Ready" || ready(s) {
			t.Fatalf("broken model: replicas %+v, status %+v", r, s.Status.Conditions)
		}
	}
	if code, _, body := u.infer(t, "broken.default.example.com", "/v1/models/broken:predict", v1s[1]); code != http.StatusServiceUnavailable {
		t.Fatalf("a service whose model did not load answered %d %s", code, body)
	}

	// Graceful shutdown: ferry up drains and exits 0, the in-process
	// replica's server stopped.
	u.stop(t)
	if st := u.cmd.ProcessState; st == nil || !st.Success() {
		t.Fatalf("ferry up exit: %v\n%s", st, u.stderr)
	}
	b, _ := os.ReadFile(filepath.Join(dataDir, "logs", "default", "xgboost-iris", rev3+"-0.log"))
	if !strings.Contains(string(b), `"msg":"stopped"`) {
		t.Fatalf("revision 3's server did not stop cleanly:\n%s", b)
	}
}
