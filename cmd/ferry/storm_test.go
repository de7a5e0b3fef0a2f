package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestUpKill9DuringApplyStorm: ferry up is killed with SIGKILL while
// clients apply services; after a restart on the same data dir every
// apply that was answered 200 is there, and every service gets a Ready
// condition again.
func TestUpKill9DuringApplyStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up")
	}
	bin := buildFerry(t)
	dataDir := t.TempDir()
	u := startUp(t, bin, dataDir, 0, 0, 0)
	waitAPI(t, u)
	tok, err := os.ReadFile(filepath.Join(dataDir, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	bearer := "Bearer " + strings.TrimSpace(string(tok))
	apply := func(name string) (int, error) {
		doc := fmt.Sprintf("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: %s\nspec:\n  predictor:\n    containers:\n    - name: kserve-container\n      image: none\n      command: [\"sleep\", \"120\"]\n", name)
		req, _ := http.NewRequest("POST", u.api+"/api/v1/apply", strings.NewReader(doc))
		req.Header.Set("Authorization", bearer)
		req.Header.Set("Content-Type", "application/yaml")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("storm-%d-%03d", w, i)
				code, err := apply(name)
				if err != nil {
					return // the server is gone
				}
				if code == 200 {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d applies answered in 30s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := u.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-u.done
	close(stop)
	wg.Wait()

	u2 := startUp(t, bin, dataDir, 0, 0, 0)
	waitAPI(t, u2)
	resp, err := u2.apiGet("/api/v1/inferenceservices")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, it := range list.Items {
		have[it.Metadata.Name] = true
	}
	for _, name := range acked {
		if !have[name] {
			t.Errorf("%s was applied (200) before kill -9 but is gone after the restart", name)
		}
	}
	// The restarted control plane resumes: every service gets its condition.
	for _, name := range acked[:10] {
		u2.waitStatus(t, name, "a Ready condition", func(s isvcStatus) bool {
			for _, c := range s.Status.Conditions {
				if c.Type == "Ready" {
					return true
				}
			}
			return false
		})
	}
	t.Logf("%d applies answered before kill -9, %d services after restart", len(acked), len(list.Items))
}
