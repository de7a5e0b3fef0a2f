package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAgentPullerAndLogger runs `ferry agent` as a sidecar in front of a
// multi-model `ferry serve`: a models.json change makes the agent place the
// model and ask the server to load it, and requests through the agent are
// logged as CloudEvents.
func TestAgentPullerAndLogger(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry serve and ferry agent")
	}
	bin := buildFerry(t)
	tdir := t.TempDir()
	modelDir, configDir := filepath.Join(tdir, "models"), filepath.Join(tdir, "configs")
	for _, d := range []string{modelDir, configDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	events := filepath.Join(tdir, "events.jsonl")
	sp, sg, ap := freePort(t), freePort(t), freePort(t)
	start := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("%v:\n%s", args[:1], stderr.String())
			}
		})
		return cmd
	}
	start("serve", "--multi-model", "--model-dir", modelDir, "--host", "127.0.0.1", "--http-port", fmt.Sprint(sp), "--grpc-port", fmt.Sprint(sg))
	start("agent", "--port", fmt.Sprint(ap), "--component-port", fmt.Sprint(sp), "--enable-puller", "--config-dir", configDir, "--model-dir", modelDir,
		"--log-url", "file://"+events, "--inference-service", "iris", "--namespace", "default")

	src, _ := filepath.Abs("../../examples/models/sklearn-iris")
	cfg := fmt.Sprintf(`[{"modelName":"iris","modelSpec":{"storageUri":"file://%s","framework":"sklearn","memory":"64Mi"}}]`, src)
	if err := os.WriteFile(filepath.Join(configDir, "models.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	agent := fmt.Sprintf("http://127.0.0.1:%d", ap)
	body := readFile(t, "../../examples/requests/iris-v1.json")
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Post(agent+"/v1/models/iris:predict", "application/json", strings.NewReader(body))
		if err == nil {
			var out struct{ Predictions []int }
			ok := resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&out) == nil && fmt.Sprint(out.Predictions) == "[1 1]"
			resp.Body.Close()
			if ok {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the model never became servable through the agent")
		}
		time.Sleep(50 * time.Millisecond) // bounded poll
	}
	// The agent reports the puller's view of each model.
	resp, err := http.Get(agent + "/v2/repository/puller")
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Models []struct{ Name, Phase string } }
	if json.NewDecoder(resp.Body).Decode(&st) != nil || len(st.Models) != 1 || st.Models[0].Phase != "Loaded" {
		t.Fatalf("puller status %+v", st)
	}
	resp.Body.Close()
	// The successful request and its response reach the file sink.
	deadline = time.Now().Add(10 * time.Second)
	for {
		f, err := os.Open(events)
		if err == nil {
			types := map[string]bool{}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var ev struct{ Type, Inferenceservicename, Statuscode string }
				if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Inferenceservicename == "iris" {
					types[ev.Type+"/"+ev.Statuscode] = true
				}
			}
			f.Close()
			if types["org.kubeflow.serving.inference.request/"] && types["org.kubeflow.serving.inference.response/200"] {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the logged events never arrived")
		}
		time.Sleep(50 * time.Millisecond) // bounded poll
	}
}
