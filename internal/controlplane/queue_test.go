package controlplane

import (
	"sync"
	"testing"
	"time"
)

func TestWorkQueueDedupAndExclusive(t *testing.T) {
	q := newWorkQueue(time.Millisecond, 10*time.Millisecond)
	q.Add("a")
	q.Add("b")
	q.Add("a") // waits once
	if q.Len() != 2 {
		t.Fatalf("len %d, want 2", q.Len())
	}
	k, ok := q.Get()
	if !ok || k != "a" {
		t.Fatalf("got %q %v", k, ok)
	}
	q.Add("a") // added while processing: not handed out twice
	k2, _ := q.Get()
	if k2 != "b" {
		t.Fatalf("second key %q, want b", k2)
	}
	if q.Len() != 0 {
		t.Fatalf("a handed out while processing: len %d", q.Len())
	}
	q.Done("a") // re-queued now
	if k3, _ := q.Get(); k3 != "a" {
		t.Fatalf("a not re-queued after Done: %q", k3)
	}
	q.Done("a")
	q.Done("b")
	if q.Len() != 0 {
		t.Fatalf("len %d after done", q.Len())
	}
}

func TestWorkQueueRateLimitAndShutdown(t *testing.T) {
	q := newWorkQueue(5*time.Millisecond, 20*time.Millisecond)
	start := time.Now()
	q.AddRateLimited("x") // 5ms
	if k, ok := q.Get(); !ok || k != "x" {
		t.Fatal(k, ok)
	}
	q.Done("x")
	q.AddRateLimited("x") // 10ms
	q.Get()
	q.Done("x")
	if el := time.Since(start); el < 15*time.Millisecond {
		t.Fatalf("backoff too short: %v", el)
	}
	q.Forget("x")
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok := q.Get(); ok {
				t.Error("Get after shutdown returned a key")
			}
		}()
	}
	q.ShutDown()
	wg.Wait()
	q.Add("late")
	if q.Len() != 0 {
		t.Fatal("added after shutdown")
	}
}
