package operator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/cli"
	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/plan"
)

// The pod specs' arguments are only as good as the binary that parses
// them: these tests run the generated container's args through ferry's
// own command line, in process, on loopback ports instead of 8080/8081,
// and infer through the server they start, so a wrong or renamed flag in
// a generated pod spec fails here. The readiness probe's path from the
// pod spec is what they wait on.

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runArgs runs ferry with a container's args, its ports moved to free
// loopback ones, until the test ends; it returns the base URL.
func runArgs(t *testing.T, args []string) string {
	t.Helper()
	return runArgsOn(t, args, freePort(t))
}

// runArgsOn is runArgs with the HTTP port hp.
func runArgsOn(t *testing.T, args []string, hp int) string {
	t.Helper()
	args = slices.Clone(args)
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--http-port":
			args[i+1] = strconv.Itoa(hp)
		case "--grpc-port":
			args[i+1] = strconv.Itoa(freePort(t))
		}
	}
	args = append(args, "--host", "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuf
	done := make(chan int, 1)
	go func() { done <- cli.Main(ctx, args, &out, &out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("ferry did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("ferry %q:\n%s", args, out.String())
		}
	})
	return "http://127.0.0.1:" + strconv.Itoa(hp)
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

// waitReady polls path (the pod's readiness probe) until it answers 200.
func waitReady(t *testing.T, base, path string) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	poll(t, base+path, func() (bool, error) {
		resp, err := hc.Get(base + path)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// predict posts V1 instances and returns the predictions.
func predict(t *testing.T, base, model string, instances [][]float64) []any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"instances": instances})
	resp, err := http.Post(base+"/v1/models/"+model+":predict", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("predict %s: %d %s", model, resp.StatusCode, b)
	}
	var out struct {
		Predictions []any `json:"predictions"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out.Predictions
}

// modelDir copies a scikit-learn test model into a directory of its own.
func modelDir(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../runtime/sklearn/testdata/models/dtc_bin.joblib")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.joblib"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

var rows = [][]float64{{-1.68, 0.49, -2.5, -0.08, -0.99}, {1.34, 0.8, -0.45, -2.02, 0.29}}

func loadAPI(t *testing.T, doc string) *api.InferenceService {
	t.Helper()
	objs, err := api.Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	isvc := objs[0].(*api.InferenceService)
	isvc.Default()
	if err := isvc.Validate(); err != nil {
		t.Fatal(err)
	}
	return isvc
}

func TestGeneratedPredictorArgsServe(t *testing.T) {
	isvc := loadAPI(t, fmt.Sprintf(`apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris, namespace: default}
spec:
  predictor:
    sklearn: {storageUri: "file://%s"}
`, modelDir(t)))
	d, err := operator.PredictorDeployment(isvc, "iris-predictor-00001", "h", "ferry:test")
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	base := runArgs(t, c.Args)
	waitReady(t, base, c.ReadinessProbe.HTTPGet.Path)
	if got := predict(t, base, "iris", rows); len(got) != 2 {
		t.Errorf("predictions = %v, want 2", got)
	}
}

func TestGeneratedMultiModelArgsServeTrainedModels(t *testing.T) {
	isvc := loadAPI(t, `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: mms, namespace: default}
spec:
  predictor:
    sklearn: {}
`)
	d, err := operator.PredictorDeployment(isvc, "mms-predictor-00001", "h", "ferry:test")
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	// The ConfigMap's mount and the emptyDir, as the kubelet would make
	// them, in a temporary root.
	root := t.TempDir()
	cfg, _ := operator.RenderModelConfig([]plan.ModelEntry{{Name: "m1", StorageURI: "file://" + modelDir(t), Framework: "sklearn", Memory: "64Mi"}})
	args := slices.Clone(c.Args)
	for _, m := range c.VolumeMounts {
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, a := range args {
			if rest, ok := strings.CutPrefix(a, m.MountPath); ok {
				args[i] = dir + rest
			}
		}
	}
	if err := os.WriteFile(filepath.Join(root, "/mnt/configs", operator.ModelConfigKey), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	base := runArgs(t, args)
	hc := &http.Client{Timeout: 5 * time.Second}
	poll(t, "m1 loaded from the model-config", func() (bool, error) {
		resp, err := hc.Get(base + "/v2/models/m1/ready")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if got := predict(t, base, "m1", rows); len(got) != 2 {
		t.Errorf("predictions = %v, want 2", got)
	}
}

func TestGeneratedTreeShapArgsServe(t *testing.T) {
	isvc := loadAPI(t, fmt.Sprintf(`apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: trees, namespace: default}
spec:
  predictor:
    sklearn: {storageUri: "file://%s"}
  explainer:
    alibi: {type: TreeShap}
`, modelDir(t)))
	d, err := operator.ComponentDeployment(isvc, "explainer", "trees-explainer-00001", "h", "ferry:test", 1)
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	base := runArgs(t, c.Args)
	waitReady(t, base, c.ReadinessProbe.HTTPGet.Path)
	body, _ := json.Marshal(map[string]any{"instances": rows})
	resp, err := http.Post(base+"/v1/models/trees:explain", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("explain: %d %s", resp.StatusCode, b)
	}
}

// TestGeneratedARTArgsServe runs the ART explainer's `ferry attack`
// arguments against a predictor started from the predictor's own
// generated arguments; the in-cluster predictor host is swapped for the
// loopback one.
func TestGeneratedARTArgsServe(t *testing.T) {
	isvc := loadAPI(t, fmt.Sprintf(`apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: digits, namespace: default}
spec:
  predictor:
    sklearn: {storageUri: "file://%s"}
  explainer:
    art: {type: SquareAttack, config: {nb_classes: "2"}}
`, modelDir(t)))
	pd, err := operator.PredictorDeployment(isvc, "digits-predictor-00001", "h", "ferry:test")
	if err != nil {
		t.Fatal(err)
	}
	pc := pd.Spec.Template.Spec.Containers[0]
	pbase := runArgs(t, pc.Args)
	waitReady(t, pbase, pc.ReadinessProbe.HTTPGet.Path)

	d, err := operator.ComponentDeployment(isvc, "explainer", "digits-explainer-00001", "h", "ferry:test", 1)
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	args := slices.Clone(c.Args)
	i := slices.Index(args, "--predictor-host")
	if i < 0 || args[i+1] != operator.PredictorHost(isvc) {
		t.Fatalf("args %q do not call the predictor's Service", args)
	}
	args[i+1] = strings.TrimPrefix(pbase, "http://")
	base := runArgs(t, args)
	waitReady(t, base, c.ReadinessProbe.HTTPGet.Path)
}

// TestGeneratedQualityArgsServe runs the predictor of a service with the
// quality annotation (its journal's emptyDir mapped to a temporary
// directory, as the kubelet would mount it) and sends a prediction and its
// feedback: the pod's /metrics then reports the labelled rows under the
// revision's name, which is what the rollout runner adds up in Prometheus.
func TestGeneratedQualityArgsServe(t *testing.T) {
	isvc := loadAPI(t, fmt.Sprintf(`apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  namespace: default
  annotations: {serving.ferryserve.io/quality: "true"}
spec:
  predictor:
    sklearn: {storageUri: "file://%s"}
`, modelDir(t)))
	rev := "iris-predictor-00001"
	d, err := operator.PredictorDeployment(isvc, rev, "h", "ferry:test")
	if err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	args := slices.Clone(c.Args)
	mounted := false
	for _, m := range c.VolumeMounts {
		for i, a := range args {
			if a == m.MountPath {
				args[i] = t.TempDir()
				mounted = true
			}
		}
	}
	if !mounted || !slices.Contains(args, "--quality-revision") {
		t.Fatalf("args %q: no --quality-dir on a mounted volume or no --quality-revision", c.Args)
	}
	base := runArgs(t, args)
	waitReady(t, base, c.ReadinessProbe.HTTPGet.Path)

	fb, _ := json.Marshal(map[string]any{"id": "q-1", "truth": predictIris(t, base, "q-1", rows)})
	resp, err := http.Post(base+"/v1/models/iris:feedback", "application/json", bytes.NewReader(fb))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("feedback: %d %s", resp.StatusCode, b)
	}
	want := fmt.Sprintf(`ferry_quality_labelled_rows{model="iris",revision=%q} 2`, rev)
	poll(t, "labelled rows in /metrics", func() (bool, error) {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		m, _ := io.ReadAll(resp.Body)
		return bytes.Contains(m, []byte(want)), nil
	})
}

// TestGeneratedQualityPeersServe runs a stable and a canary revision of a
// service with the quality annotation from their generated pod specs, the
// --quality-peers name standing for both pods as the headless Service's
// DNS name would (every pod it selects: both revisions' pods carry its
// selector's labels). A prediction the canary answered, with feedback sent
// to the stable pod (a Service picks any), is joined in the canary's
// revision.
func TestGeneratedQualityPeersServe(t *testing.T) {
	doc := `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  namespace: default
  annotations: {serving.ferryserve.io/quality: "true"}
spec:
  predictor:
    sklearn: {storageUri: "file://%s"}
`
	isvc := loadAPI(t, fmt.Sprintf(doc, modelDir(t)))
	peers := operator.QualityPeersService(isvc)
	if peers.Spec.ClusterIP != "None" {
		t.Errorf("quality peers Service cluster IP %q, want None (headless)", peers.Spec.ClusterIP)
	}
	revs := []string{"iris-predictor-00001", "iris-predictor-00002"}
	ports := []int{freePort(t), freePort(t)}
	var static []string
	for _, p := range ports {
		static = append(static, "127.0.0.1:"+strconv.Itoa(p))
	}
	bases := make([]string, len(revs))
	for i, rev := range revs {
		d, err := operator.PredictorDeployment(isvc, rev, "h", "ferry:test")
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range peers.Spec.Selector {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("revision %s pod label %s = %q: the quality peers Service (selecting %v) does not list it", rev, k, d.Spec.Template.Labels[k], peers.Spec.Selector)
			}
		}
		c := d.Spec.Template.Spec.Containers[0]
		args := slices.Clone(c.Args)
		j := slices.Index(args, "--quality-peers")
		if j < 0 || args[j+1] != operator.QualityPeersAddr(isvc) || args[j+1] != "iris-predictor-quality.default.svc:8080" {
			t.Fatalf("args %q: want --quality-peers %s", args, operator.QualityPeersAddr(isvc))
		}
		args[j+1] = strings.Join(static, ",")
		for _, m := range c.VolumeMounts {
			if k := slices.Index(args, m.MountPath); k >= 0 {
				args[k] = t.TempDir()
			}
		}
		bases[i] = runArgsOn(t, args, ports[i])
		waitReady(t, bases[i], c.ReadinessProbe.HTTPGet.Path)
	}

	fb, _ := json.Marshal(map[string]any{"id": "canary-1", "truth": predictIris(t, bases[1], "canary-1", rows)})
	resp, err := http.Post(bases[0]+"/v1/models/iris:feedback", "application/json", bytes.NewReader(fb))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Results []struct{ Outcome, Revision string } `json:"results"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || len(got.Results) != 1 || got.Results[0].Outcome != "joined" || got.Results[0].Revision != revs[1] {
		t.Fatalf("feedback to the stable pod for the canary's prediction: %v %+v, want joined in %s", err, got, revs[1])
	}
}

// predictIris sends rows to the iris model's V1 predict at base under
// request id id and returns its two predictions.
func predictIris(t *testing.T, base, id string, rows any) []any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"instances": rows})
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/models/iris:predict", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pred struct {
		Predictions []any `json:"predictions"`
	}
	err = json.NewDecoder(resp.Body).Decode(&pred)
	resp.Body.Close()
	if err != nil || len(pred.Predictions) != 2 {
		t.Fatalf("predict: %v %v", err, pred)
	}
	return pred.Predictions
}
