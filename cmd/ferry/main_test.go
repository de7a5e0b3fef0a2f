package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeExamples serves examples/models with the real binary and checks
// the answers against the reference libraries' (examples/requests/expected.json),
// over V1 REST, V2 REST and (with grpcurl, which CI installs) V2 gRPC; then
// SIGTERM must stop it cleanly.
func TestServeExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildFerry(t)
	c := startServe(t, bin, "--model-dir", "../../examples/models")

	var expected struct {
		XGB [][]float64 `json:"xgboost-iris"`
		SKL []int64     `json:"sklearn-iris"`
	}
	if err := json.Unmarshal([]byte(readFile(t, "../../examples/requests/expected.json")), &expected); err != nil {
		t.Fatal(err)
	}

	code, body := post(t, c.http+"/v2/models/xgboost-iris/infer", readFile(t, "../../examples/requests/iris-v2.json"))
	if code != 200 {
		t.Fatalf("V2 infer: %d %s", code, body)
	}
	var v2 struct {
		ID      string
		Outputs []struct {
			Shape []int64
			Data  []float64
		}
	}
	if err := json.Unmarshal(body, &v2); err != nil {
		t.Fatal(err)
	}
	if v2.ID != "demo-1" || len(v2.Outputs) != 1 || len(v2.Outputs[0].Data) != 6 {
		t.Fatalf("V2 response %s", body)
	}
	for i, row := range expected.XGB {
		for j, want := range row {
			if got := v2.Outputs[0].Data[i*3+j]; math.Abs(got-want) > 1e-6 {
				t.Fatalf("xgboost-iris[%d][%d] = %v, xgboost says %v", i, j, got, want)
			}
		}
	}

	code, body = post(t, c.http+"/v1/models/xgboost-iris:predict", readFile(t, "../../examples/requests/iris-v1.json"))
	var v1 struct{ Predictions [][]float64 }
	if code != 200 || json.Unmarshal(body, &v1) != nil || len(v1.Predictions) != 2 || math.Abs(v1.Predictions[1][1]-expected.XGB[1][1]) > 1e-6 {
		t.Fatalf("V1 xgboost predict: %d %s", code, body)
	}

	code, body = post(t, c.http+"/v1/models/sklearn-iris:predict", readFile(t, "../../examples/requests/iris-v1.json"))
	var skl struct{ Predictions []int64 }
	if code != 200 || json.Unmarshal(body, &skl) != nil || fmt.Sprint(skl.Predictions) != fmt.Sprint(expected.SKL) {
		t.Fatalf("V1 sklearn predict: %d %s (want %v)", code, body, expected.SKL)
	}

	if grpcurl, err := exec.LookPath("grpcurl"); err == nil {
		out, err := exec.Command(grpcurl, "-plaintext", c.grpc, "list").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "inference.GRPCInferenceService") {
			t.Fatalf("grpcurl list: %v\n%s", err, out)
		}
		cmd := exec.Command(grpcurl, "-plaintext", "-d", "@", c.grpc, "inference.GRPCInferenceService/ModelInfer")
		cmd.Stdin = strings.NewReader(readFile(t, "../../examples/requests/iris-grpc.json"))
		out, err = cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "fp32Contents") {
			t.Fatalf("grpcurl ModelInfer: %v\n%s", err, out)
		}
	} else if os.Getenv("CI") != "" {
		t.Fatal("grpcurl is not installed; .ci/run installs it")
	}

	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, c.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15s of SIGTERM")
	}
	if !strings.Contains(c.stderr.String(), `"msg":"stopped"`) {
		t.Fatalf("log lacks the shutdown record:\n%s", c.stderr)
	}
}

// TestServeReportsBrokenModel: a corrupt model file is reported by name with
// its cause while the good model serves.
func TestServeReportsBrokenModel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildFerry(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	bad := filepath.Join(dir, "bad")
	for _, d := range []string{good, bad} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(good, "model.json"), []byte(readFile(t, "../../examples/models/xgboost-iris/model.json")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "model.json"), []byte(`{"learner": {"gradient_booster": 12`), 0o644); err != nil {
		t.Fatal(err)
	}
	hp, gp := freePort(t), freePort(t)
	cmd := exec.Command(bin, "serve", "--host", "127.0.0.1", "--http-port", fmt.Sprint(hp), "--grpc-port", fmt.Sprint(gp), "--model-dir", dir)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	url := fmt.Sprintf("http://127.0.0.1:%d", hp)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		resp, err := http.Post(url+"/v2/repository/index", "application/json", nil)
		if err != nil {
			time.Sleep(20 * time.Millisecond) // not listening yet; bounded poll
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(string(body), `"FAILED"`) && strings.Contains(string(body), `"READY"`) {
			if !strings.Contains(string(body), `"name":"bad"`) {
				t.Fatalf("index does not name the failed model: %s", body)
			}
			break
		}
		time.Sleep(20 * time.Millisecond) // bounded poll
	}
	if ctx.Err() != nil {
		t.Fatalf("models never settled\n%s", stderr.String())
	}
	resp, err := http.Get(url + "/v2/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("ready = %d with a failed model, want 503", resp.StatusCode)
	}
	code, body := post(t, url+"/v2/models/good/infer", readFile(t, "../../examples/requests/iris-v2.json"))
	if code != 200 {
		t.Fatalf("good model: %d %s", code, body)
	}
	code, body = post(t, url+"/v2/models/bad/infer", readFile(t, "../../examples/requests/iris-v2.json"))
	if code != 503 || !strings.Contains(string(body), "FAILED") {
		t.Fatalf("bad model: %d %s", code, body)
	}
	if !strings.Contains(stderr.String(), `"model":"bad"`) {
		t.Fatalf("log does not name the failed model:\n%s", stderr.String())
	}
}

// TestServeModelURI pulls a model over HTTP into the storage cache and
// serves it under the name its URI implies.
func TestServeModelURI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildFerry(t)
	model := readFile(t, "../../examples/models/xgboost-iris/model.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/store/iris/model.json" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, model)
	}))
	defer srv.Close()
	c := startServe(t, bin, "--model-uri", srv.URL+"/store/iris/model.json", "--storage-cache-dir", t.TempDir())
	code, body := post(t, c.http+"/v2/models/iris/infer", readFile(t, "../../examples/requests/iris-v2.json"))
	if code != 200 || !strings.Contains(string(body), "0.97116977") {
		t.Fatalf("model pulled over HTTP: %d %s", code, body)
	}
}
