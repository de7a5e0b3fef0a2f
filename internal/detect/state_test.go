package detect

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/detect/drift"
	"github.com/ferryserve/ferry/internal/frame"
)

func stateDetector(t testing.TB) drift.Detector {
	t.Helper()
	det, err := drift.NewTabular(drift.TabularConfig{Reference: gaussRows(rand.New(rand.NewPCG(1, 2)), 300, 3, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return det
}

// crash drops a server without its shutdown snapshot, as a killed process
// would leave its state dir.
func crash(t *testing.T, s *Server) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStateSurvivesRestart: rows counted before a crash are in the window
// after it, and the window closes at the same row as without the crash,
// with the same p-values.
func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	rows := gaussRows(rng, 40, 3, 0.7)
	sink := newReplySink(t)
	cfg := Config{Drift: stateDetector(t), ReplyURL: sink.srv.URL, WindowSize: 40, StateDir: dir}

	a, hsA := newTestServer(t, cfg)
	for i := 0; i < 3; i++ {
		if resp := postEvent(t, hsA.URL, fmt.Sprint("e", i), TypeRequest, instances(rows[i*10:(i+1)*10])); resp.StatusCode != 200 {
			t.Fatalf("event %d: %d", i, resp.StatusCode)
		}
	}
	crash(t, a)

	b, hsB := newTestServer(t, cfg)
	if got := len(b.windows["iris"].rows); got != 30 {
		t.Fatalf("recovered window has %d rows, want 30", got)
	}
	postEvent(t, hsB.URL, "e3", TypeRequest, instances(rows[30:]))
	r := sink.next(t)
	want, err := cfg.Drift.Test(rows)
	if err != nil {
		t.Fatal(err)
	}
	if r.id != "e3" || r.typ != TypeDrift {
		t.Fatalf("reply %+v", r)
	}
	for k, p := range r.body["data"]["p_val"].([]any) {
		if p.(float64) != want.PVal[k] {
			t.Errorf("feature %d: p-value %v after the restart, %v without", k, p, want.PVal[k])
		}
	}
	crash(t, b)

	// The tested window is not tested again after another restart.
	c, _ := newTestServer(t, cfg)
	if len(c.recovered) != 0 || len(c.windows) != 0 {
		t.Errorf("after the verdict: %d windows to test, %d open", len(c.recovered), len(c.windows))
	}
	crash(t, c)
}

// TestStateRetestsUntestedWindow: a window closed by the last event before
// a crash, whose verdict was never recorded, is tested after the restart.
func TestStateRetestsUntestedWindow(t *testing.T) {
	dir := t.TempDir()
	sink := newReplySink(t)
	cfg := Config{Drift: stateDetector(t), ReplyURL: sink.srv.URL, WindowSize: 20, StateDir: dir}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rows := gaussRows(rand.New(rand.NewPCG(7, 8)), 25, 3, 2)
	full, err := a.collect("ns/iris", "last", map[string]string{"Ce-Inferenceservicename": "iris"}, rows)
	if err != nil || len(full) != 1 {
		t.Fatalf("collect: %d full windows, %v", len(full), err)
	}
	crash(t, a) // before the test ran

	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.recovered) != 1 || len(b.windows["ns/iris"].rows) != 5 {
		t.Fatalf("recovered %d untested windows, open %v", len(b.recovered), b.windows)
	}
	b.testRecovered(t.Context())
	if r := sink.next(t); r.id != "last" || r.svc != "iris" || r.body["data"]["is_drift"].(float64) != 1 {
		t.Errorf("reply %+v", r)
	}
	crash(t, b)
}

// TestStateCompaction: a snapshot replaces the log; records the snapshot
// holds are skipped if the log was not yet emptied (a crash between the
// rename and the truncation), and a torn tail is cut off.
func TestStateCompaction(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Drift: stateDetector(t), WindowSize: 1000, StateDir: dir}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rows := gaussRows(rand.New(rand.NewPCG(9, 10)), 30, 3, 0)
	for i := 0; i < 3; i++ {
		if _, err := a.collect("iris", fmt.Sprint(i), nil, rows[i*10:(i+1)*10]); err != nil {
			t.Fatal(err)
		}
	}
	logBytes, err := os.ReadFile(filepath.Join(dir, walFile))
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	err = a.journal.writeSnapshot(a.windows, a.pendingList(), a.ords)
	a.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(dir, walFile)); st.Size() != 0 {
		t.Errorf("log is %d bytes after the snapshot", st.Size())
	}
	crash(t, a)
	// Put the old records back, plus half a record.
	torn := append(append([]byte(nil), logBytes...), logBytes[:frame.HeaderSize+2]...)
	if err := os.WriteFile(filepath.Join(dir, walFile), torn, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(b.windows["iris"].rows); got != 30 {
		t.Errorf("window has %d rows, want 30 (no record counted twice)", got)
	}
	for i, r := range b.windows["iris"].rows {
		for k, v := range r {
			if v != rows[i][k] {
				t.Fatalf("row %d differs after recovery", i)
			}
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, walFile)); st.Size() != int64(len(logBytes)) {
		t.Errorf("log is %d bytes, want the torn tail cut to %d", st.Size(), len(logBytes))
	}
	// New records continue after the snapshot's numbers.
	if _, err := b.collect("iris", "x", nil, rows[:1]); err != nil {
		t.Fatal(err)
	}
	crash(t, b)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.windows["iris"].rows); got != 31 {
		t.Errorf("window has %d rows, want 31", got)
	}
	crash(t, c)
}

// The kill -9 test runs the detector in a child process: this test binary
// again, with FERRY_DETECT_CHILD set, serving until it is killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("FERRY_DETECT_CHILD"); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

func runChild(dir string) int {
	det, err := drift.NewTabular(drift.TabularConfig{Reference: gaussRows(rand.New(rand.NewPCG(1, 2)), 300, 3, 0)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := New(Config{Drift: det, Listener: ln, WindowSize: 1 << 30, StateDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("listening", ln.Addr().String())
	if err := s.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startChild runs a detector child on dir and returns its address.
func startChild(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FERRY_DETECT_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				line <- a
			}
		}
	}()
	select {
	case a := <-line:
		return cmd, a
	case <-time.After(30 * time.Second):
		t.Fatal("child detector did not start within 30 s")
		return nil, ""
	}
}

func windowRows(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `ferry_detect_window_rows{service="iris"} `); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f != math.Trunc(f) {
				t.Fatalf("window rows %q", v)
			}
			return int(f)
		}
	}
	return 0
}

// TestKill9KeepsAcknowledgedRows sends events from four clients to a
// detector process, kills it with SIGKILL mid-stream, restarts it on the
// same state dir, and checks that every acknowledged row is still in the
// window (and nothing beyond the rows that were sent).
func TestKill9KeepsAcknowledgedRows(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	cmd, addr := startChild(t, dir)
	body := instances(gaussRows(rand.New(rand.NewPCG(3, 3)), 5, 3, 0))
	var acked, sent atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	client := &http.Client{Timeout: 5 * time.Second}
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(string(body)))
				req.Header.Set("Ce-Specversion", "1.0")
				req.Header.Set("Ce-Id", fmt.Sprintf("c%d-%d", c, i))
				req.Header.Set("Ce-Type", TypeRequest)
				req.Header.Set("Ce-Inferenceservicename", "iris")
				sent.Add(5)
				resp, err := client.Do(req)
				if err != nil {
					continue // the process is gone
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					acked.Add(5)
				}
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for acked.Load() < 2000 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(stop)
	wg.Wait()
	if acked.Load() == 0 {
		t.Fatal("no event was acknowledged before the kill")
	}

	_, addr2 := startChild(t, dir)
	got := windowRows(t, addr2)
	t.Logf("acknowledged %d rows before SIGKILL, sent %d, recovered %d", acked.Load(), sent.Load(), got)
	if int64(got) < acked.Load() || int64(got) > sent.Load() {
		t.Errorf("recovered %d rows: want between the %d acknowledged and the %d sent", got, acked.Load(), sent.Load())
	}
}
