package node

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer blocks until ctx ends, then "drains" for a moment.
type fakeServer struct {
	drained atomic.Bool
	fail    error
}

func (s *fakeServer) Run(ctx context.Context) error {
	if s.fail != nil {
		return s.fail
	}
	<-ctx.Done()
	time.Sleep(20 * time.Millisecond) // in-flight requests finishing
	s.drained.Store(true)
	return nil
}

type fakeModels struct {
	mu     sync.Mutex
	loads  int
	closed bool
	loaded chan struct{}
}

func (m *fakeModels) LoadAll(context.Context, int) error {
	m.mu.Lock()
	m.loads++
	m.mu.Unlock()
	close(m.loaded)
	return nil
}
func (m *fakeModels) Ready() bool { return true }
func (m *fakeModels) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
}

// TestShutdownOrder: drained parts stop only after the server drained,
// background parts with ctx, and the models close last.
func TestShutdownOrder(t *testing.T) {
	srv := &fakeServer{}
	models := &fakeModels{loaded: make(chan struct{})}
	var drainedSawServerDone, backgroundStopped atomic.Bool
	pulled := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Server: srv, Models: models,
			Pull: func(context.Context) error { close(pulled); return nil },
			Drained: []Runner{RunFunc(func(ctx context.Context) error {
				<-ctx.Done()
				drainedSawServerDone.Store(srv.drained.Load())
				return nil
			})},
			Background: []Runner{RunFunc(func(ctx context.Context) error {
				<-ctx.Done()
				backgroundStopped.Store(true)
				return nil
			})},
		})
	}()
	select {
	case <-models.loaded:
	case <-time.After(5 * time.Second):
		t.Fatal("models never loaded")
	}
	select {
	case <-pulled:
	default:
		t.Fatal("models loaded before the pull")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !drainedSawServerDone.Load() {
		t.Error("a drained part stopped before the server had drained")
	}
	if !backgroundStopped.Load() {
		t.Error("a background part did not stop")
	}
	models.mu.Lock()
	defer models.mu.Unlock()
	if !models.closed || models.loads != 1 {
		t.Errorf("models closed=%v loads=%d", models.closed, models.loads)
	}
}

// TestFailedPullEndsTheNode: a deferred pull's error is Run's error (the
// supervisor restarts the replica), and nothing is loaded.
func TestFailedPullEndsTheNode(t *testing.T) {
	models := &fakeModels{loaded: make(chan struct{})}
	boom := errors.New("pull s3://b/m: access denied")
	err := Run(context.Background(), Config{
		Server: &fakeServer{}, Models: models,
		Pull: func(context.Context) error { return boom },
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the pull's error", err)
	}
	if models.loads != 0 || !models.closed {
		t.Errorf("loads=%d closed=%v", models.loads, models.closed)
	}
}

// TestServerFailureEndsTheNode: a listener that cannot start ends Run.
func TestServerFailureEndsTheNode(t *testing.T) {
	boom := errors.New("listen tcp :8080: address already in use")
	models := &fakeModels{loaded: make(chan struct{})}
	if err := Run(context.Background(), Config{Server: &fakeServer{fail: boom}, Models: models}); !errors.Is(err, boom) {
		t.Fatalf("Run = %v", err)
	}
}
