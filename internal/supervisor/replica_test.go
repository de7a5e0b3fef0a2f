package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the supervised child: TestMain runs child()
// when FERRY_SUPERVISOR_CHILD names a mode.
func TestMain(m *testing.M) {
	if mode := os.Getenv("FERRY_SUPERVISOR_CHILD"); mode != "" {
		child(mode)
		return
	}
	os.Exit(m.Run())
}

func child(mode string) {
	fmt.Println("hello from child", mode)
	switch mode {
	case "exit":
		os.Exit(3)
	case "supervise":
		// A supervisor of its own, for the parent-death test.
		r := New(Config{Name: "grandchild", Command: "sleep", Args: []string{"60"}, PIDFile: os.Getenv("PID_FILE")})
		_ = r.Run(context.Background())
	case "flaky-ready":
		_ = os.Remove(os.Getenv("UNREADY_FILE"))
		mux := http.NewServeMux()
		mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
			if _, err := os.Stat(os.Getenv("UNREADY_FILE")); err == nil {
				w.WriteHeader(503)
			}
		})
		_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), mux)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(time.Minute)
	case "serve", "sick":
		mux := http.NewServeMux()
		mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if mode == "sick" {
				w.WriteHeader(500)
			}
		})
		srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: mux}
		go func() {
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGTERM)
			<-ch
			fmt.Println("got SIGTERM")
			srv.Close()
		}()
		_ = srv.ListenAndServe()
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type harness struct {
	r       *Replica
	changes chan Status
	cancel  context.CancelFunc
	done    chan error
}

func start(t *testing.T, mode string, port int, mut func(*Config)) *harness {
	t.Helper()
	h := &harness{changes: make(chan Status, 1000), done: make(chan error, 1)}
	cfg := Config{
		Name:       "test-" + mode,
		Command:    os.Args[0],
		Args:       []string{"-test.run=^$"},
		Env:        []string{"FERRY_SUPERVISOR_CHILD=" + mode, fmt.Sprintf("PORT=%d", port)},
		Backoff:    10 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond,
		StopGrace:  5 * time.Second,
		OnChange:   func(s Status) { h.changes <- s },
	}
	if mut != nil {
		mut(&cfg)
	}
	h.r = New(cfg)
	var ctx context.Context
	ctx, h.cancel = context.WithCancel(context.Background())
	go func() { h.done <- h.r.Run(ctx) }()
	t.Cleanup(func() {
		h.cancel()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			t.Error("replica did not stop")
		}
	})
	return h
}

// wait blocks until a status change satisfies ok (bounded).
func (h *harness) wait(t *testing.T, what string, ok func(Status) bool) Status {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case s := <-h.changes:
			if ok(s) {
				return s
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s; status %+v", what, h.r.Status())
		}
	}
}

func TestReadinessLogsAndGracefulStop(t *testing.T) {
	port := freePort(t)
	logFile := t.TempDir() + "/replica.log"
	h := start(t, "serve", port, func(c *Config) {
		c.Readiness = &Probe{HTTPGet: &HTTPGetAction{Path: "/ready", Port: port}, Period: time.Second}
		c.LogFile = logFile
	})
	s := h.wait(t, "Ready", func(s Status) bool { return s.Phase == Ready })
	if s.PID == 0 {
		t.Fatal("ready without a PID")
	}
	h.cancel()
	if err := <-h.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	h.done <- nil // for Cleanup
	if st := h.r.Status(); st.Phase != Stopped {
		t.Fatalf("phase after stop: %s", st.Phase)
	}
	if err := syscall.Kill(s.PID, 0); err == nil {
		t.Fatalf("process %d still alive after stop", s.PID)
	}
	logs := strings.Join(h.r.Logs(0), "\n")
	if !strings.Contains(logs, "hello from child serve") || !strings.Contains(logs, "got SIGTERM") {
		t.Fatalf("logs: %q", logs)
	}
	b, _ := os.ReadFile(logFile)
	if !strings.Contains(string(b), "got SIGTERM") {
		t.Fatalf("log file: %q", b)
	}
}

func TestRestartsWithBackoff(t *testing.T) {
	h := start(t, "exit", 0, nil)
	s := h.wait(t, "two restarts", func(s Status) bool { return s.Restarts >= 2 })
	if !strings.Contains(s.LastExit, "exit status 3") {
		t.Fatalf("LastExit %q", s.LastExit)
	}
}

func TestLivenessFailureRestarts(t *testing.T) {
	port := freePort(t)
	h := start(t, "sick", port, func(c *Config) {
		c.Liveness = &Probe{HTTPGet: &HTTPGetAction{Path: "/healthz", Port: port}, InitialDelay: 100 * time.Millisecond, Period: 20 * time.Millisecond, FailureThreshold: 2}
	})
	s := h.wait(t, "a liveness restart", func(s Status) bool { return s.Restarts >= 1 })
	if !strings.Contains(s.LastExit, "liveness probe failed") {
		t.Fatalf("LastExit %q", s.LastExit)
	}
}

func TestKillAfterGrace(t *testing.T) {
	h := start(t, "ignore-term", 0, func(c *Config) { c.StopGrace = 200 * time.Millisecond })
	s := h.wait(t, "Ready (no probe)", func(s Status) bool { return s.Phase == Ready && s.PID != 0 })
	begin := time.Now()
	h.cancel()
	<-h.done
	h.done <- nil
	if time.Since(begin) > 5*time.Second {
		t.Fatal("stop took too long")
	}
	if err := syscall.Kill(s.PID, 0); err == nil {
		t.Fatalf("process %d survived SIGKILL", s.PID)
	}
}

func TestCommandNotFound(t *testing.T) {
	r := New(Config{Name: "x", Command: "/nonexistent/ferry-model-server"})
	err := r.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Run = %v", err)
	}
}

func TestRing(t *testing.T) {
	g := ring{max: 3}
	for i := range 5 {
		g.add(fmt.Sprint(i))
	}
	if got := strings.Join(g.last(0), ","); got != "2,3,4" {
		t.Fatalf("ring = %s", got)
	}
	if got := strings.Join(g.last(2), ","); got != "3,4" {
		t.Fatalf("last(2) = %s", got)
	}
}
