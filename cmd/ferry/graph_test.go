package main_test

import (
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitGraph polls the API until the graph's Ready condition is status
// (bounded) and returns the graph's status URL.
func (u *upProcess) waitGraph(t *testing.T, name, status string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var g struct {
		Status struct {
			URL        string
			Conditions []struct{ Type, Status, Reason, Message string }
		}
	}
	for {
		resp, err := u.apiGet("/api/v1/namespaces/default/inferencegraphs/" + name)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if json.Unmarshal(b, &g) == nil {
				for _, c := range g.Status.Conditions {
					if c.Type == "Ready" && c.Status == status {
						return g.Status.URL
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for graph %s Ready=%s: %+v\n%s", name, status, g.Status, u.stderr)
		}
		time.Sleep(50 * time.Millisecond) // bounded poll
	}
}

// TestUpInferenceGraphs runs ferry up with the example services and graphs:
// a Sequence called by Host and an Ensemble called by path answer with the
// models' real predictions, a failing step is named in the error, and the
// CLI lists and describes graphs.
func TestUpInferenceGraphs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up and its replicas")
	}
	bin := buildFerry(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	// Graphs first: they are not Ready until their services exist.
	u := startUp(t, bin, dataDir, 0, 0, 0, "-f", "../../examples/inferencegraphs", "-f", "../../examples/inferenceservices/sklearn.yaml")
	u.waitStatus(t, "sklearn-iris", "sklearn Ready", ready)
	u.waitStatus(t, "xgboost-iris-v1", "xgboost Ready", ready)
	if url := u.waitGraph(t, "iris-sequence", "True"); url != "http://iris-sequence.default.example.com" {
		t.Errorf("graph url %q", url)
	}
	u.waitGraph(t, "iris-ensemble", "True")
	iris := readFile(t, "../../examples/requests/iris-v1.json")

	// The Sequence's answer is its last step's: xgboost's V1 predictions.
	code, _, seq := u.infer(t, "iris-sequence.default.example.com", "/", iris)
	_, _, direct := u.infer(t, "xgboost-iris-v1.default.example.com", "/v1/models/xgboost-iris-v1:predict", iris)
	if code != 200 || seq != direct || !strings.Contains(seq, "predictions") {
		t.Fatalf("sequence by host: %d %s (xgboost alone: %s)", code, seq, direct)
	}
	// The Ensemble by path: both answers, keyed by step name.
	code, _, ens := u.infer(t, "", "/graphs/default/iris-ensemble", iris)
	var merged map[string]json.RawMessage
	if code != 200 || json.Unmarshal([]byte(ens), &merged) != nil || string(merged["sklearn"]) != `{"predictions":[1,1]}` || string(merged["xgboost"]) != direct {
		t.Fatalf("ensemble by path: %d %s", code, ens)
	}
	// A V2 body is no V1 request: the first step fails and is named.
	code, _, body := u.infer(t, "iris-sequence.default.example.com", "/", readFile(t, "../../examples/requests/iris-v2.json"))
	if code != 400 || !strings.Contains(body, `"step":"sklearn"`) || !strings.Contains(body, `node \"root\" step \"sklearn\" (service sklearn-iris) failed: answered 400`) {
		t.Fatalf("failing step: %d %s", code, body)
	}

	out := u.ferryCLI(t, bin, "get", "ig")
	for _, want := range []string{"iris-ensemble", "iris-sequence", "http://iris-switch.default.example.com", "True"} {
		if !strings.Contains(out, want) {
			t.Errorf("get ig lacks %q:\n%s", want, out)
		}
	}
	out = u.ferryCLI(t, bin, "describe", "ig", "iris-switch")
	for _, want := range []string{"Path:         /graphs/default/iris-switch", "root (Switch)", "split (Splitter)", "service sklearn-iris  (weight 20)", "condition instances.#(2>5)"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe ig lacks %q:\n%s", want, out)
		}
	}
	// Deleting a service makes the graphs that call it not Ready.
	u.ferryCLI(t, bin, "delete", "isvc", "sklearn-iris")
	u.waitGraph(t, "iris-ensemble", "False")
	out = u.ferryCLI(t, bin, "describe", "ig", "iris-ensemble")
	if !strings.Contains(out, `ServiceNotFound`) || !strings.Contains(out, `spec.nodes.root.steps[0].serviceName`) {
		t.Errorf("describe after delete:\n%s", out)
	}
	if code, _, body := u.infer(t, "", "/graphs/default/iris-ensemble", iris); code != 404 {
		t.Errorf("unpublished graph answered %d %s", code, body)
	}
}
