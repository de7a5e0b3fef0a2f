package controlplane

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/supervisor"
)

// The test binary doubles as a model server: with FERRY_CP_CHILD=1 it
// serves /v2/health/ready and echoes its port.
func TestMain(m *testing.M) {
	if os.Getenv("FERRY_CP_CHILD") == "1" {
		port := os.Getenv("HTTP_PORT")
		srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "port "+port)
		})}
		go func() {
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGTERM)
			<-ch
			srv.Close()
		}()
		_ = srv.ListenAndServe()
		return
	}
	os.Exit(m.Run())
}

func childTemplate(httpPort, grpcPort int) supervisor.Config {
	return supervisor.Config{
		Command:   os.Args[0],
		Args:      []string{"-test.run=^$"},
		Env:       []string{"FERRY_CP_CHILD=1", fmt.Sprintf("HTTP_PORT=%d", httpPort)},
		Readiness: &supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/v2/health/ready", Port: httpPort}, Period: time.Second},
		StopGrace: 5 * time.Second,
	}
}

func waitBackends(t *testing.T, s *ReplicaSet, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b := s.Backends(); len(b) == n {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d ready backends, have %v (%+v)", n, s.Backends(), s.Status())
		}
		time.Sleep(10 * time.Millisecond) // bounded poll
	}
}

func TestReplicaSetScales(t *testing.T) {
	changes := make(chan struct{}, 100)
	s := NewReplicaSet("m-predictor-00001", childTemplate, t.TempDir(), nil, func() {
		select {
		case changes <- struct{}{}:
		default:
		}
	})
	defer s.Close()
	if err := s.Scale(2); err != nil {
		t.Fatal(err)
	}
	backends := waitBackends(t, s, 2)
	if backends[0] == backends[1] {
		t.Fatalf("replicas share an address: %v", backends)
	}
	for _, b := range backends {
		resp, err := http.Get("http://" + b + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "port "+b[len("127.0.0.1:"):] {
			t.Fatalf("backend %s answered %q", b, body)
		}
	}
	if len(changes) == 0 {
		t.Fatal("no change notifications")
	}
	if err := s.Scale(1); err != nil {
		t.Fatal(err)
	}
	waitBackends(t, s, 1)
	s.Close()
	if len(s.Backends()) != 0 || len(s.Status()) != 0 {
		t.Fatalf("replicas left after Close: %+v", s.Status())
	}
}
