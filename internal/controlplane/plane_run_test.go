package controlplane

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

// TestPlaneRunRefusesWhenReapFails: a PID directory that cannot be read
// (a file where it should be) stops Run before it serves, and every
// listener is closed so the ports are free again.
func TestPlaneRunRefusesWhenReapFails(t *testing.T) {
	db, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "run"), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	ingress, grpcLn, apiLn := listen(t), listen(t), listen(t)
	p, err := New(PlaneConfig{Controller: Config{Store: db, DataDir: data, Runner: &fakeRunner{}}, Ingress: ingress, GRPC: grpcLn, API: apiLn})
	if err != nil {
		t.Fatal(err)
	}
	extra := runnableFunc(func(context.Context) error { t.Error("an added runnable ran although Run failed"); return nil })
	p.Add(extra)
	if err := p.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "reap replicas of an earlier run") {
		t.Fatalf("Run: %v", err)
	}
	for _, l := range []net.Listener{ingress, grpcLn, apiLn} {
		// Bounded: a listener left open fails after a second, not never.
		_ = l.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("listener %s: Accept %v, want it closed", l.Addr(), err)
		}
	}
}

// awaitGRPCServing waits until a gRPC server answers the HTTP/2 handshake
// at addr.
func awaitGRPCServing(t *testing.T, addr string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn.Connect()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			t.Fatalf("gRPC server at %s not serving after 10s (state %s)", addr, s)
		}
	}
}

// TestPlaneStopsCleanlyRightAfterStart: a plane cancelled as soon as it
// starts (Ctrl-C during start-up) returns nil, as a later stop does.
func TestPlaneStopsCleanlyRightAfterStart(t *testing.T) {
	for i := range 20 {
		db, err := OpenStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		p, err := New(PlaneConfig{Controller: Config{Store: db, DataDir: t.TempDir(), Runner: &fakeRunner{}}, Ingress: listen(t), GRPC: listen(t), API: listen(t)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err = p.Run(ctx)
		db.Close()
		if err != nil {
			t.Fatalf("run %d: Run with its context already ended: %v", i, err)
		}
	}
}

type runnableFunc func(context.Context) error

func (f runnableFunc) Run(ctx context.Context) error { return f(ctx) }

// TestPlaneAccessorsAndAddedRunnables: the plane exposes its controller,
// router and the router's counters, and runs added components until its
// context ends.
func TestPlaneAccessorsAndAddedRunnables(t *testing.T) {
	db, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	grpcLn := listen(t)
	p, err := New(PlaneConfig{Controller: Config{Store: db, DataDir: t.TempDir(), Runner: &fakeRunner{}}, Ingress: listen(t), GRPC: grpcLn, API: listen(t)})
	if err != nil {
		t.Fatal(err)
	}
	if p.Controller() == nil || p.Controller() != p.ctl || p.Router() == nil || p.Router() != p.ctl.cfg.Router {
		t.Fatal("accessors do not return the plane's own controller and router")
	}
	st := p.Router().Stats("default", "m-predictor-00001")
	st.InFlight.Add(2)
	st.Requests.Add(5)
	if in, n := p.Stats("default", "m-predictor-00001"); in != 2 || n != 5 {
		t.Fatalf("Stats = %d, %d; want 2, 5", in, n)
	}
	if in, n := p.Stats("default", "other"); in != 0 || n != 0 {
		t.Fatalf("Stats of an unknown revision = %d, %d", in, n)
	}

	started, ended := make(chan struct{}), make(chan struct{})
	p.Add(runnableFunc(func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		close(ended)
		return nil
	}))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("Run ended before the added runnable started: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the added runnable did not start in 10s")
	}
	// Stop only once the gRPC server serves (see TestPlaneStopsCleanlyRightAfterStart).
	awaitGRPCServing(t, grpcLn.Addr().String())
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	select {
	case <-ended:
	default:
		t.Fatal("Run returned before its added runnable ended")
	}
}
