package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestQualityJoinSurvivesKill9: ferry serve journals predictions
// (--quality-dir) and is killed with SIGKILL while requests are under
// way. Started again on the same directory, it must join feedback for
// every prediction that was answered 200 (none unknown), count feedback
// for an id never answered as unknown, and, after a second kill -9, still
// know which feedback it has already joined.
func TestQualityJoinSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const (
		requests = 600
		clients  = 4
	)
	bin := buildFerry(t)
	dir := t.TempDir()
	args := []string{"--model-dir", "../../examples/models", "--quality-dir", dir, "--log-level", "warn"}
	c := startServe(t, bin, args...)

	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var (
		next, answered atomic.Int64
		kill           sync.Once
		mu             sync.Mutex
		ok             []string
		wg             sync.WaitGroup
	)
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > requests {
					return
				}
				id := fmt.Sprintf("k9-%d", i)
				body := `{"id":"` + id + `","inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32","data":[[6.8,2.8,4.8,1.4],[5.1,3.5,1.4,0.2]]}]}`
				resp, err := client.Post(c.http+"/v2/models/xgboost-iris/infer", "application/json", strings.NewReader(body))
				if err != nil {
					return // the server is gone
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != id {
					t.Errorf("%s: status %d, X-Request-Id %q", id, resp.StatusCode, resp.Header.Get("X-Request-Id"))
					return
				}
				mu.Lock()
				ok = append(ok, id)
				mu.Unlock()
				if answered.Add(1) == requests/2 {
					kill.Do(func() { _ = c.cmd.Process.Kill() })
				}
			}
		})
	}
	wg.Wait()
	<-c.done
	if len(ok) < requests/2 {
		t.Fatalf("only %d answered before the kill", len(ok))
	}

	c = startServe(t, bin, args...)
	// Truth [1, 0]: the model answers class 1 then class 0 for these rows.
	var batch []string
	for _, id := range ok {
		batch = append(batch, `{"id":"`+id+`","truth":[1,0]}`)
	}
	all := "[" + strings.Join(batch, ",") + "]"
	counts := feedback(t, c.http, all+"")
	if counts["joined"] != len(ok) || counts["received"] != len(ok) {
		t.Fatalf("after kill -9: %v for %d answered predictions", counts, len(ok))
	}
	if got := feedback(t, c.http, `{"id":"never-answered","truth":[1,0]}`); got["unknown"] != 1 {
		t.Fatalf("unknown id: %v", got)
	}
	_ = c.cmd.Process.Kill()
	<-c.done

	c = startServe(t, bin, args...)
	if got := feedback(t, c.http, all); got["duplicate"] != len(ok) {
		t.Fatalf("feedback again after a second kill -9: %v", got)
	}
	resp, err := http.Get(c.http + "/v2/models/xgboost-iris/quality")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var q struct {
		Revisions []struct {
			Labelled       int `json:"labelled"`
			Classification struct {
				Accuracy float64 `json:"accuracy"`
			} `json:"classification"`
		} `json:"revisions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&q); err != nil || len(q.Revisions) != 1 {
		t.Fatalf("quality: %v %+v", err, q)
	}
	if r := q.Revisions[0]; r.Labelled != min(2*len(ok), 1000) || r.Classification.Accuracy != 1 {
		t.Fatalf("quality after restarts: %+v (answered %d)", r, len(ok))
	}
}

// feedback posts a feedback body and returns the response's counts.
func feedback(t *testing.T, base, body string) map[string]int {
	t.Helper()
	code, b := post(t, base+"/v2/models/xgboost-iris/feedback", body)
	if code != 200 {
		t.Fatalf("feedback: %d %s", code, b)
	}
	var r struct {
		Counts map[string]int `json:"counts"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.Counts
}
