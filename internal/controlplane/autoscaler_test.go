package controlplane

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// load is a fake metrics source: the test sets in-flight and request
// counts per revision.
type load struct {
	mu       sync.Mutex
	inFlight int64
	requests uint64
}

func (l *load) stat(string, string) (int64, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight, l.requests
}

func (l *load) set(inFlight int64) {
	l.mu.Lock()
	l.inFlight = inFlight
	l.requests += uint64(inFlight)
	l.mu.Unlock()
}

func TestAutoscalerScalesUpDownAndToZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &load{}
		a := NewAutoscaler(AutoscalerConfig{}, l.stat, nil)
		spec := ScaleSpec{Min: 0, Max: 10, Target: 10}
		if got := a.Desired("ns", "r1", spec); got != 1 {
			t.Fatalf("initial scale %d, want 1", got)
		}
		tick := func(n int) {
			for range n {
				time.Sleep(time.Second)
				a.step(time.Now())
			}
		}
		// A burst of 45 concurrent requests: the panic window reacts within
		// seconds (45/10 → 5 replicas), long before the stable window.
		l.set(45)
		tick(2)
		if d, panicking := a.State("ns", "r1"); d != 5 || !panicking {
			t.Fatalf("after a burst: desired %d panic %v, want 5 in panic mode", d, panicking)
		}
		// Load drops: panic mode holds the scale for a stable window.
		l.set(5)
		tick(30)
		if d, _ := a.State("ns", "r1"); d != 5 {
			t.Fatalf("scaled down during panic: %d", d)
		}
		tick(40)
		if d, panicking := a.State("ns", "r1"); d != 1 || panicking {
			t.Fatalf("after the load settled: desired %d panic %v, want 1", d, panicking)
		}
		// Idle: to zero after the stable window empties and the grace period.
		l.set(0)
		tick(60 + 31)
		if d, _ := a.State("ns", "r1"); d != 0 {
			t.Fatalf("idle revision at %d replicas, want 0", d)
		}
		// The activator brings it back at once.
		a.Activate("ns", "r1")
		if d, _ := a.State("ns", "r1"); d != 1 {
			t.Fatalf("after activation: %d", d)
		}
	})
}

func TestAutoscalerRespectsBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &load{}
		a := NewAutoscaler(AutoscalerConfig{MaxLocalReplicas: 4}, l.stat, nil)
		a.Desired("ns", "r", ScaleSpec{Min: 2, Max: 3, Target: 1})
		l.set(100)
		for range 5 {
			time.Sleep(time.Second)
			a.step(time.Now())
		}
		if d, _ := a.State("ns", "r"); d != 3 {
			t.Fatalf("desired %d, want maxReplicas 3", d)
		}
		l.set(0)
		for range 200 {
			time.Sleep(time.Second)
			a.step(time.Now())
		}
		if d, _ := a.State("ns", "r"); d != 2 {
			t.Fatalf("desired %d, want minReplicas 2 (never zero when min > 0)", d)
		}
		if got := a.Desired("ns", "u", ScaleSpec{Min: 1, Max: 0, Target: 1}); got != 1 {
			t.Fatalf("initial %d", got)
		}
	})
}

func TestAutoscalerRPS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &load{}
		a := NewAutoscaler(AutoscalerConfig{}, l.stat, nil)
		a.Desired("ns", "r", ScaleSpec{Min: 1, Max: 8, Metric: "rps", Target: 50})
		for range 70 {
			time.Sleep(time.Second)
			l.mu.Lock()
			l.requests += 120 // 120 rps
			l.mu.Unlock()
			a.step(time.Now())
		}
		if d, _ := a.State("ns", "r"); d != 3 {
			t.Fatalf("120 rps at target 50: desired %d, want 3", d)
		}
	})
}

func TestAutoscalerScaleDownDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &load{}
		a := NewAutoscaler(AutoscalerConfig{StableWindow: 4 * time.Second, PanicWindow: time.Second, ScaleDownDelay: 10 * time.Second}, l.stat, nil)
		a.Desired("ns", "r", ScaleSpec{Min: 1, Max: 8, Target: 1})
		step := func(n int) {
			for range n {
				time.Sleep(time.Second)
				a.step(time.Now())
			}
		}
		l.set(4)
		step(10)
		if d, _ := a.State("ns", "r"); d != 4 {
			t.Fatalf("under load: %d, want 4", d)
		}
		l.set(1)
		step(9) // the stable window wants 1 after ~4 s, but the delay holds 4
		if d, _ := a.State("ns", "r"); d != 4 {
			t.Fatalf("scaled down before the delay: %d", d)
		}
		step(8)
		if d, _ := a.State("ns", "r"); d != 1 {
			t.Fatalf("after the delay: %d, want 1", d)
		}
	})
}
