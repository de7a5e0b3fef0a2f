package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/quality"
)

// lockedBuffer is a bytes.Buffer safe to write from a server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// sklearnModelDir holds a scikit-learn decision tree of five features.
func sklearnModelDir(t *testing.T) string {
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

// startServe runs ferry serve with args until the test ends and waits until
// it is ready.
func startServe(t *testing.T, base string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	done := make(chan int, 1)
	go func() { done <- Main(ctx, append([]string{"serve"}, args...), &out, &out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("ferry serve did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("ferry serve %q:\n%s", args, out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case code := <-done:
			t.Fatalf("ferry serve %q exited %d:\n%s", args, code, out.String())
		default:
		}
		resp, err := http.Get(base + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry serve %q not ready in 30s:\n%s", args, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricValue sums the samples of a metric whose line starts with prefix
// in base's /metrics.
func metricValue(t *testing.T, base, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			sum += v
		}
	}
	return sum
}

// TestServeQualityPeers runs three ferry serve replicas of one model on
// loopback, each listing all three as --quality-peers (itself included, as
// a headless Service's name lists every pod), plus a peer that accepts
// connections and never answers. Feedback sent to one replica for a
// prediction another made is joined there; an unknown id is reported
// unknown once, with the peer that did not answer named; nothing is
// forwarded twice; and the dead peer costs the request its timeout, no
// more.
func TestServeQualityPeers(t *testing.T) {
	model := sklearnModelDir(t)
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close() // accepts (the backlog) and never answers
	ports := []int{freeLoopbackPort(t), freeLoopbackPort(t), freeLoopbackPort(t)}
	peers := []string{hung.Addr().String()}
	for _, p := range ports {
		peers = append(peers, "127.0.0.1:"+strconv.Itoa(p))
	}
	bases := make([]string, len(ports))
	for i, p := range ports {
		bases[i] = "http://127.0.0.1:" + strconv.Itoa(p)
		startServe(t, bases[i], "--model-dir", model, "--model-name", "m", "--host", "127.0.0.1",
			"--http-port", strconv.Itoa(p), "--grpc-port", strconv.Itoa(freeLoopbackPort(t)),
			"--quality-dir", t.TempDir(), "--quality-revision", "rev-"+strconv.Itoa(i),
			"--quality-peers", strings.Join(peers, ","), "--quality-peer-timeout", "500ms", "--log-format", "text")
	}

	// Predict on replica 0.
	req, _ := http.NewRequest(http.MethodPost, bases[0]+"/v1/models/m:predict",
		strings.NewReader(`{"instances":[[-1.68,0.49,-2.5,-0.08,-0.99],[1.34,0.8,-0.45,-2.02,0.29]]}`))
	req.Header.Set("X-Request-Id", "order-1")
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

	// Feedback to replica 1: joined on replica 0; the unknown id is unknown.
	fb, _ := json.Marshal([]map[string]any{{"id": "order-1", "truth": pred.Predictions}, {"id": "order-unknown", "truth": 1}})
	start := time.Now()
	resp, err = http.Post(bases[1]+"/v2/models/m/feedback", "application/json", bytes.NewReader(fb))
	if err != nil {
		t.Fatal(err)
	}
	var got quality.FeedbackResponse
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil || resp.StatusCode != http.StatusOK || len(got.Outcomes) != 2 {
		t.Fatalf("feedback: %d %v %+v", resp.StatusCode, err, got)
	}
	if took > 5*time.Second {
		t.Errorf("feedback took %s with a peer that never answers, want about --quality-peer-timeout 500ms", took)
	}
	if o := got.Outcomes[0]; o.Outcome != quality.Joined || o.Revision != "rev-0" {
		t.Errorf("feedback for replica 0's prediction, sent to replica 1: %+v, want joined in rev-0", o)
	}
	if o := got.Outcomes[1]; o.Outcome != quality.Unknown || !strings.Contains(o.Error, hung.Addr().String()+": no answer within 500ms") {
		t.Errorf("unknown id: %+v, want unknown naming the peer that did not answer", o)
	}

	// Counted once over the replicas; only replica 1 forwarded (to two
	// live peers and the dead one), so nothing went round.
	var received, unknown, joined float64
	for _, b := range bases {
		received += metricValue(t, b, `ferry_quality_feedback_total{model="m",result="received"}`)
		unknown += metricValue(t, b, `ferry_quality_feedback_total{model="m",result="unknown"}`)
		joined += metricValue(t, b, `ferry_quality_feedback_total{model="m",result="joined"}`)
	}
	if received != 2 || unknown != 1 || joined != 1 {
		t.Errorf("over the replicas: received %v, joined %v, unknown %v; want 2, 1, 1", received, joined, unknown)
	}
	for i, b := range bases {
		answered := metricValue(t, b, `ferry_quality_peer_requests_total{result="answered"}`)
		failed := metricValue(t, b, `ferry_quality_peer_requests_total{result="failed"}`)
		want := [2]float64{}
		if i == 1 {
			want = [2]float64{2, 1}
		}
		if answered != want[0] || failed != want[1] {
			t.Errorf("replica %d forwarded: %v answered, %v failed; want %v", i, answered, failed, want)
		}
	}
	if rows := metricValue(t, bases[0], `ferry_quality_labelled_rows{model="m",revision="rev-0"}`); rows != 2 {
		t.Errorf("replica 0 labelled rows %v, want 2", rows)
	}
}

func TestServeQualityPeersFlags(t *testing.T) {
	model := sklearnModelDir(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--quality-peers", "127.0.0.1:1"}, "--quality-peers needs --quality-dir"},
		{[]string{"--quality-dir", t.TempDir(), "--quality-peers", "peers-without-port"}, "want HOST:PORT"},
		{[]string{"--quality-dir", t.TempDir(), "--quality-peers", "p:1", "--quality-peer-timeout", "0s"}, "--quality-peer-timeout"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"serve", "--model-dir", model, "--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0"}, tc.args...)
		if code := Main(t.Context(), args, &out, &errb); code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
