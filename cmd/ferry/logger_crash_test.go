package main_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoggerEventsSurviveKill9: ferry serve logs to a sink on loopback; it
// is killed with SIGKILL while requests are under way, then started again
// on the same spool. Every request that got a 200 must have both its
// events delivered (found by ce-id), as docs/logging.md promises.
func TestLoggerEventsSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const (
		requests = 2000
		clients  = 8
	)
	bin := buildFerry(t)

	var (
		mu  sync.Mutex
		got = map[string]map[string]int{} // ce-id → ce-type → deliveries
	)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id, typ := r.Header.Get("Ce-Id"), r.Header.Get("Ce-Type")
		mu.Lock()
		if got[id] == nil {
			got[id] = map[string]int{}
		}
		got[id][typ]++
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer sink.Close()

	spool := t.TempDir()
	args := []string{"--model-dir", "../../examples/models", "--log-url", sink.URL, "--log-spool-dir", spool}
	c := startServe(t, bin, args...)
	body := readFile(t, "../../examples/requests/iris-v2.json")

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	var (
		next, answered atomic.Int64
		kill           sync.Once
		okMu           sync.Mutex
		ok             []string // ce-ids answered 200
		wg             sync.WaitGroup
	)
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > requests {
					return
				}
				id := fmt.Sprintf("kill9-%d", i)
				req, err := http.NewRequest(http.MethodPost, c.http+"/v2/models/xgboost-iris/infer", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Ce-Id", id)
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					continue
				}
				okMu.Lock()
				ok = append(ok, id)
				okMu.Unlock()
				if answered.Add(1) == requests/2 {
					// Mid-load: the other clients have requests in flight.
					kill.Do(func() {
						if err := c.cmd.Process.Kill(); err != nil {
							t.Error(err)
						}
					})
				}
			}
		})
	}
	wg.Wait()
	err := <-c.done
	c.done <- err // for startServe's cleanup
	if !strings.Contains(fmt.Sprint(err), "killed") {
		t.Fatalf("ferry serve was not killed: %v\n%s", err, c.stderr)
	}
	okMu.Lock()
	answeredIDs := append([]string(nil), ok...)
	okMu.Unlock()
	if len(answeredIDs) < requests/2 {
		t.Fatalf("only %d requests answered before the kill", len(answeredIDs))
	}

	// Same spool, new process: it replays what the sink has not taken.
	c2 := startServe(t, bin, args...)
	missing := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var m []string
		for _, id := range answeredIDs {
			if got[id]["org.kubeflow.serving.inference.request"] == 0 || got[id]["org.kubeflow.serving.inference.response"] == 0 {
				m = append(m, id)
			}
		}
		return m
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := missing()
		if len(m) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d answered requests have events missing after the restart (e.g. %v)\n%s", len(m), len(answeredIDs), m[:min(5, len(m))], c2.stderr)
		}
		time.Sleep(20 * time.Millisecond) // bounded poll
	}
	mu.Lock()
	dups := 0
	for _, types := range got {
		for _, n := range types {
			dups += n - 1
		}
	}
	mu.Unlock()
	t.Logf("%d requests answered before the kill; all %d events delivered (%d duplicates)", len(answeredIDs), 2*len(answeredIDs), dups)
}
