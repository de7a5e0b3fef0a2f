package controlplane

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestAutoscalerDefaultTargets: without scaleTarget a replica takes 100
// concurrent requests, or 200 requests a second with the rps metric (as
// Knative's defaults).
func TestAutoscalerDefaultTargets(t *testing.T) {
	for _, c := range []struct {
		name   string
		metric string
		load   func(l *load)
		want   int
	}{
		{"concurrency", "concurrency", func(l *load) { l.mu.Lock(); l.inFlight = 250; l.mu.Unlock() }, 3},
		{"rps", "rps", func(l *load) { l.mu.Lock(); l.requests += 500; l.mu.Unlock() }, 3},
		{"rps below one replica", "rps", func(l *load) { l.mu.Lock(); l.requests += 150; l.mu.Unlock() }, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := &load{}
				a := NewAutoscaler(AutoscalerConfig{}, l.stat, nil)
				a.Desired("ns", "r", ScaleSpec{Min: 1, Max: 8, Metric: c.metric})
				for range 70 { // past the stable window and any panic
					time.Sleep(time.Second)
					c.load(l)
					a.step(time.Now())
				}
				if d, panicking := a.State("ns", "r"); d != c.want || panicking {
					t.Fatalf("desired %d panic %v, want %d", d, panicking, c.want)
				}
			})
		})
	}
}

// TestAutoscalerRunNotifies: Run samples every tick and reports changes,
// to the plain callback until OnRevisionChange names the revisions, and
// returns when its context ends.
func TestAutoscalerRunNotifies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &load{}
		var mu sync.Mutex
		plain := 0
		var revs []string
		a := NewAutoscaler(AutoscalerConfig{Tick: time.Second}, l.stat, func() {
			mu.Lock()
			plain++
			mu.Unlock()
		})
		a.Desired("ns", "r1", ScaleSpec{Min: 1, Max: 8, Target: 10})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()

		time.Sleep(3 * time.Second)
		synctest.Wait()
		mu.Lock()
		if plain != 0 {
			t.Fatalf("%d notifications without a change", plain)
		}
		mu.Unlock()

		l.set(45) // 5 replicas at target 10, once the panic window holds only this load
		time.Sleep(8 * time.Second)
		synctest.Wait()
		mu.Lock()
		if plain == 0 {
			t.Fatal("no notification after the desired count changed")
		}
		mu.Unlock()
		if d, _ := a.State("ns", "r1"); d != 5 {
			t.Fatalf("r1 desired %d, want 5", d)
		}

		a.OnRevisionChange(func(ns, rev string) {
			mu.Lock()
			revs = append(revs, ns+"/"+rev)
			mu.Unlock()
		})
		mu.Lock()
		before := plain
		mu.Unlock()
		a.Desired("ns", "r2", ScaleSpec{Min: 1, Max: 8, Target: 10}) // same load: r2 wants 5 too
		time.Sleep(2 * time.Second)
		synctest.Wait()
		mu.Lock()
		if plain != before {
			t.Errorf("plain callback called %d more times after OnRevisionChange", plain-before)
		}
		if !slices.Contains(revs, "ns/r2") || slices.Contains(revs, "ns/r1") {
			t.Errorf("revision notifications %v, want ns/r2 only", revs)
		}
		mu.Unlock()

		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
}
