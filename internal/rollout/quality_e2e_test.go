package rollout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/quality"
	"github.com/ferryserve/ferry/internal/rollout"
	"github.com/ferryserve/ferry/internal/router"
)

// truth is the ground truth of input x, which the load driver sends back
// as feedback.
func truth(x int) int {
	if x%3 == 0 {
		return 0
	}
	return 1
}

// qualityReplica runs a predictor that answers truth(x), except for the
// inputs wrong reports, behind the quality middleware with its own
// journal: a replica of ferry serve --quality-dir on loopback.
func qualityReplica(t *testing.T, revision string, wrong func(x int) bool) string {
	t.Helper()
	m, err := quality.Open(quality.Config{Dir: t.TempDir(), Horizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	predict := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Instances [][]int }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Instances) != 1 || len(req.Instances[0]) != 1 {
			http.Error(w, `{"error":"want one instance [x]"}`, http.StatusBadRequest)
			return
		}
		x := req.Instances[0][0]
		y := truth(x)
		if wrong(x) {
			y = 1 - y
		}
		fmt.Fprintf(w, `{"predictions":[%d]}`, y)
	})
	s := httptest.NewServer(quality.NewHandler(quality.HandlerConfig{Monitor: m, Revision: revision}).Middleware(predict))
	t.Cleanup(s.Close)
	return s.URL
}

// TestRolloutHeldBackByAccuracy runs two canaries through the real ingress
// with real quality journals: predictions go through the ingress, their
// feedback through the ingress's fan-out, and the runner reads accuracy
// from the replicas with a quality.Scraper, as ferry up does. The canary
// that is wrong on a fifth of its inputs (accuracy 0.8 against the stable
// revision's 1.0) is rolled back on accuracy-drop without ever advancing;
// the one as accurate as the stable revision is promoted.
func TestRolloutHeldBackByAccuracy(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	rt := router.New("example.com", nil)
	cp := newFakeControlPlane(rt)
	ingress := httptest.NewServer(rt)
	defer ingress.Close()
	ann := map[string]string{
		rollout.AnnotationSteps:       "20,50",
		rollout.AnnotationInterval:    "1s",
		rollout.AnnotationMinRequests: "10",
		rollout.AnnotationMinLabelled: "40",
		rollout.AnnotationObjectives:  "error-rate<=0.05,accuracy-drop<=0.01",
	}
	never := func(int) bool { return false }
	cp.addWith("worse", ann, qualityReplica(t, "worse-predictor-00001", never), qualityReplica(t, "worse-predictor-00002", func(x int) bool { return x%5 == 0 }))
	cp.addWith("same", ann, qualityReplica(t, "same-predictor-00001", never), qualityReplica(t, "same-predictor-00002", never))

	scraper := quality.NewScraper(quality.ScraperConfig{Revisions: rt.PredictorReplicas, MaxAge: 50 * time.Millisecond})
	src := rollout.NewLocalSource(func(ns, rev string) rollout.Counters {
		return rollout.CountersFromSnapshot(rt.Stats(ns, rev).Latency.Snapshot())
	})
	runner := rollout.NewRunner(rollout.Config{Services: cp, Metrics: src, Quality: rollout.ScraperQuality{Scraper: scraper}, Tick: 100 * time.Millisecond})
	var wg sync.WaitGroup
	defer wg.Wait()
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Go(func() {
		if err := runner.Run(rctx); err != nil {
			t.Errorf("runner: %v", err)
		}
	})
	unjoined := map[string]*int{}
	for _, name := range []string{"worse", "same"} {
		n := new(int)
		unjoined[name] = n
		wg.Go(func() { *n = predictAndLabel(rctx, ingress.URL, name) })
	}

	for _, tc := range []struct {
		name, phase, reason string
		advances            int
	}{
		{"worse", rollout.PhaseRolledBack, "accuracy-drop", 0},
		{"same", rollout.PhasePromoted, "accuracy-drop 0 (canary 1 over", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := waitPhase(ctx, t, cp, tc.name)
			evs := cp.eventsOf(tc.name)
			t.Logf("events:\n%s", strings.Join(evs.lines, "\n"))
			if st.Phase != tc.phase || !strings.Contains(st.Reason, tc.reason) {
				t.Fatalf("rollout ended %s (%s), want %s mentioning %q", st.Phase, st.Reason, tc.phase, tc.reason)
			}
			if evs.count["RolloutAdvanced"] != tc.advances {
				t.Errorf("%d advances, want %d", evs.count["RolloutAdvanced"], tc.advances)
			}
			if st.CanaryQuality == nil || st.CanaryQuality.Labelled < 40 || st.StableQuality == nil || st.StableQuality.Accuracy != 1 {
				t.Errorf("decided on canary %+v, stable %+v", st.CanaryQuality, st.StableQuality)
			}
			if tc.phase == rollout.PhaseRolledBack && st.CanaryQuality.Accuracy > 0.95 {
				t.Errorf("rolled back a canary of accuracy %v", st.CanaryQuality.Accuracy)
			}
		})
	}
	stop()
	wg.Wait()
	for name, n := range unjoined {
		if *n != 0 {
			t.Errorf("%s: %d feedback records did not join through the ingress", name, *n)
		}
	}
}

// predictAndLabel predicts through the ingress about 60 times a second
// and sends each prediction's truth back through the ingress in batches
// of ten, until ctx ends. It returns how many records were refused or
// came back other than joined or unknown.
func predictAndLabel(ctx context.Context, ingress, name string) int {
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(15 * time.Millisecond)
	defer tick.Stop()
	var batch []string
	bad := 0
	send := func() {
		body := "[" + strings.Join(batch, ",") + "]"
		batch = batch[:0]
		req, _ := http.NewRequestWithContext(ctx, "POST", ingress+"/v1/models/"+name+":feedback", strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			return // ctx ended
		}
		defer resp.Body.Close()
		var fr quality.FeedbackResponse
		if err := json.NewDecoder(resp.Body).Decode(&fr); err != nil || resp.StatusCode != http.StatusOK {
			bad += 10
			return
		}
		// Unknown is allowed: once a rollout ends, a revision can leave
		// the routing table while feedback for its predictions is in
		// flight (docs/quality.md, Not done yet).
		bad += int(fr.Counts.Received - fr.Counts.Joined - fr.Counts.Unknown)
	}
	for x := 0; ; x++ {
		select {
		case <-ctx.Done():
			return bad
		case <-tick.C:
		}
		id := fmt.Sprintf("%s-%d", name, x)
		req, _ := http.NewRequestWithContext(ctx, "POST", ingress+"/v1/models/"+name+":predict", strings.NewReader(fmt.Sprintf(`{"instances":[[%d]]}`, x)))
		req.Header.Set("X-Request-Id", id)
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			continue
		}
		batch = append(batch, fmt.Sprintf(`{"id":%q,"truth":%d}`, id, truth(x)))
		if len(batch) == 10 {
			send()
		}
	}
}
