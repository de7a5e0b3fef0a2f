package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
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
	var st struct {
		Models []struct{ Name, Phase string }
	}
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

// TestAgentBatcher: the agent merges concurrent V1 and V2 requests into
// fewer upstream calls and every caller gets its own answer; the upstream's
// errors reach the caller with their status.
func TestAgentBatcher(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry serve and ferry agent")
	}
	bin := buildFerry(t)
	sp, sg, ap := freePort(t), freePort(t), freePort(t)
	for _, args := range [][]string{
		{"serve", "--model-dir", "../../examples/models/lightgbm-multiclass", "--model-name", "lgb", "--host", "127.0.0.1", "--http-port", fmt.Sprint(sp), "--grpc-port", fmt.Sprint(sg)},
		{"agent", "--port", fmt.Sprint(ap), "--component-port", fmt.Sprint(sp), "--enable-batcher", "--max-batchsize", "64", "--max-latency", "20ms"},
	} {
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	}
	agent := fmt.Sprintf("http://127.0.0.1:%d", ap)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v2/health/ready", sp))
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready")
		}
		time.Sleep(20 * time.Millisecond) // bounded poll
	}
	row := "-0.6879,-0.2959,0.0101,1.2319,-0.2218"
	const n = 48
	errs := make(chan error, n)
	for i := range n {
		go func() {
			var resp *http.Response
			var err error
			for range 50 { // the agent may still be starting
				if i%2 == 0 {
					resp, err = http.Post(agent+"/v1/models/lgb:predict", "application/json", strings.NewReader(`{"instances":[[`+row+`]]}`))
				} else {
					resp, err = http.Post(agent+"/v2/models/lgb/infer", "application/json", strings.NewReader(`{"id":"q","inputs":[{"name":"input-0","shape":[1,5],"datatype":"FP64","data":[`+row+`]}]}`))
				}
				if err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), "0.11981330373300655") {
				errs <- fmt.Errorf("request %d: %d %s", i, resp.StatusCode, b)
				return
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Fewer upstream requests than client requests: they were merged.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", sp))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	upstream := 0
	for _, l := range strings.Split(string(m), "\n") {
		if strings.HasPrefix(l, "ferry_requests_total{") && strings.Contains(l, `code="200"`) {
			var v float64
			fmt.Sscanf(l[strings.LastIndexByte(l, ' ')+1:], "%g", &v)
			upstream += int(v)
		}
	}
	if upstream == 0 || upstream >= n {
		t.Fatalf("%d upstream requests for %d client requests: nothing was batched", upstream, n)
	}
	t.Logf("%d client requests became %d upstream requests", n, upstream)
	// An upstream error keeps its status.
	r2, err := http.Post(agent+"/v2/models/lgb/infer", "application/json", strings.NewReader(`{"inputs":[{"name":"input-0","shape":[1,2],"datatype":"FP64","data":[1,2]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != 400 || !strings.Contains(string(b), "expects 5") {
		t.Fatalf("upstream error through the batcher: %d %s", r2.StatusCode, b)
	}
}
