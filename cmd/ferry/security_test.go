package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUpManagementAPIRefusesStrangers replays the remote-code-execution
// report: a web page (a cross-origin "simple" request, DNS rebinding) or
// anyone without the token must not get an InferenceService whose custom
// container command runs as the user of ferry up.
func TestUpManagementAPIRefusesStrangers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up")
	}
	bin := buildFerry(t)
	hp, gp, ap := freePort(t), freePort(t), freePort(t)
	u := startUp(t, bin, t.TempDir(), hp, gp, ap, "--api-max-body", "256Ki")
	waitAPI(t, u)
	marker := filepath.Join(t.TempDir(), "pwned")
	evil := fmt.Sprintf(`apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: evil
spec:
  predictor:
    containers:
    - name: kserve-container
      image: x
      command: ["/bin/sh", "-c", "touch %s; sleep 60"]
`, marker)
	tok, err := os.ReadFile(filepath.Join(u.data, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(u.data, "api-token"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v", st.Mode().Perm())
	}
	bearer := "Bearer " + strings.TrimSpace(string(tok))
	for _, c := range []struct {
		name, host, origin, auth, ctype string
		want                            int
	}{
		{"browser simple request", "", "http://attacker.example", "", "text/plain", 403},
		{"no token", "", "", "", "application/yaml", 401},
		{"no token, text/plain", "", "", "", "text/plain", 401},
		{"dns rebinding", "attacker.example:" + fmt.Sprint(ap), "", bearer, "application/yaml", 403},
		{"token but text/plain", "", "", bearer, "text/plain", 415},
	} {
		req, _ := http.NewRequest("POST", u.api+"/api/v1/apply", strings.NewReader(evil))
		if c.host != "" {
			req.Host = c.host
		}
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		req.Header.Set("Content-Type", c.ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
	// Reads need the token too (logs can hold secrets).
	if resp, err := http.Get(u.api + "/api/v1/inferenceservices"); err != nil || resp.StatusCode != 401 {
		t.Errorf("list without token: %v %v", resp.StatusCode, err)
	}
	// The CLI of the same user finds the token by itself.
	out := u.ferryCLI(t, bin, "get", "isvc")
	if strings.Contains(out, "evil") {
		t.Fatalf("evil service was created:\n%s", out)
	}
	// A wrong token given explicitly is refused with a message naming the fix.
	cmd := exec.Command(bin, "get", "isvc", "--server", u.api, "--token", strings.Repeat("0", 64))
	cmd.Env = u.env
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "unauthorized") {
		t.Errorf("wrong token: %v\n%s", err, b)
	}
	// Over the body limit: 413 with the flag named, nothing applied.
	big := filepath.Join(t.TempDir(), "big.yaml")
	pad := strings.Repeat("x", 300<<10)
	if err := os.WriteFile(big, []byte("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: big\n  annotations:\n    pad: "+pad+"\nspec:\n  predictor:\n    sklearn:\n      storageUri: file:///nonexistent\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(bin, "apply", "-f", big, "--server", u.api)
	cmd.Env = u.env
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "--api-max-body") {
		t.Errorf("oversized apply: %v\n%s", err, b)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the custom container's command ran")
	}
}

// TestUpNonLoopbackAPIUsesTLS: on a non-loopback address the API serves a
// self-signed certificate, says so loudly with its fingerprint, and the
// CLI of the same user pins it and talks TLS without extra flags.
func TestUpNonLoopbackAPIUsesTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up")
	}
	bin := buildFerry(t)
	hp, gp, ap := freePort(t), freePort(t), freePort(t)
	u := startUp(t, bin, t.TempDir(), hp, gp, ap, "--api-addr", fmt.Sprintf("0.0.0.0:%d", ap))
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(u.stderr.String(), "fingerprint") {
		if time.Now().After(deadline) {
			t.Fatalf("no TLS fingerprint printed:\n%s", u.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(u.stderr.String(), "WARNING") {
		t.Errorf("no warning for a non-loopback API:\n%s", u.stderr)
	}
	// Plain HTTP to the TLS port gets nothing useful.
	if resp, err := http.Get(u.api + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Fatal("plain HTTP served on a non-loopback API")
	}
	var out []byte
	for {
		cmd := exec.Command(bin, "get", "isvc", "--server", u.api)
		cmd.Env = u.env
		b, err := cmd.CombinedOutput()
		if err == nil {
			out = b
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry get over TLS: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(string(out), "NAME") {
		t.Errorf("unexpected output %s", out)
	}
}

// waitAPI waits until the management API answers its health check.
func waitAPI(t *testing.T, u *upProcess) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(u.api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-u.done:
			t.Fatalf("ferry up exited: %v\n%s", err, u.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("management API not up:\n%s", u.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUpKill9KeepsNoOrphans: kill -9 of ferry up takes its replica
// processes with it; the next ferry up on the same data dir starts no
// duplicates and leaves a scaled-to-zero service at zero until a request
// wakes it. The predictor runs as a process (--in-process-predictors=false):
// in-process, the default, there would be no process to orphan.
func TestUpKill9KeepsNoOrphans(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up and its replicas")
	}
	bin := buildFerry(t)
	models, _ := filepath.Abs("../../examples/models/xgboost-iris")
	yaml := fmt.Sprintf("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: sleepy\nspec:\n  predictor:\n    minReplicas: 0\n    xgboost:\n      storageUri: %s\n", models)
	dataDir := t.TempDir()
	hp, gp, ap := freePort(t), freePort(t), freePort(t)
	u := startUp(t, bin, dataDir, hp, gp, ap, "-f", writeYAML(t, t.TempDir(), "sleepy.yaml", yaml), "--in-process-predictors=false")
	u.waitStatus(t, "sleepy", "Ready", ready)
	pids := replicaPIDs(t, u, "sleepy")
	if len(pids) == 0 {
		t.Fatal("no replica running")
	}
	if slices.Contains(pids, u.cmd.Process.Pid) {
		t.Fatalf("replica pids %v include ferry up's own: the replica is not a process", pids)
	}
	if err := u.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-u.done
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range pids {
		for processAlive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("replica %d outlived kill -9 of ferry up", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	u2 := startUp(t, bin, dataDir, hp, gp, ap, "--in-process-predictors=false")
	waitAPI(t, u2)
	if got := replicaPIDs(t, u2, "sleepy"); len(got) != 0 {
		t.Fatalf("scaled-to-zero-able service started %d replica(s) after the restart", len(got))
	}
	code, _, body := u2.infer(t, "sleepy.default.example.com", "/v1/models/sleepy:predict", `{"instances":[[6.8,2.8,4.8,1.4]]}`)
	if code != 200 {
		t.Fatalf("request after restart: %d %s\n%s", code, body, u2.stderr)
	}
}

// replicaPIDs lists the PIDs of a service's replicas.
func replicaPIDs(t *testing.T, u *upProcess, name string) []int {
	t.Helper()
	resp, err := u.apiGet("/api/v1/namespaces/default/inferenceservices/" + name + "/replicas")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Revisions map[string][]struct{ PID int }
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, rs := range r.Revisions {
		for _, s := range rs {
			if s.PID > 0 {
				out = append(out, s.PID)
			}
		}
	}
	return out
}

// processAlive reports whether pid runs (a zombie counts as gone).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}
