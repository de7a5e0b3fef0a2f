package quality

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// Concurrent recorders share write calls; every one of them that returned
// nil is in the journal, joins, and is there after a reopen.
func TestGroupCommitKeepsEveryRecord(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	dir := t.TempDir()
	m := openTest(t, dir, clk)
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := m.Record(&Prediction{Model: "iris", Revision: "r1", ID: fmt.Sprint(w, "-", i), Time: clk.now().UnixNano(), Rows: []Row{label(fmt.Sprint(i % 3))}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n, _ := m.Outstanding(); n != workers*each {
		t.Fatalf("%d remembered; want %d", n, workers*each)
	}
	if c, _ := m.Counts(""); c.Recorded != workers*each {
		t.Fatalf("counts %+v", c)
	}
	m.Close()
	m2 := openTest(t, dir, clk)
	var fb []Feedback
	for w := range workers {
		for i := range each {
			fb = append(fb, Feedback{ID: fmt.Sprint(w, "-", i), Truth: []Truth{num(float64(i % 3))}})
		}
	}
	for _, r := range m2.Join("iris", fb) {
		if r.Outcome != Joined {
			t.Fatalf("%+v after reopen", r)
		}
	}
}

// waitLocked waits (10 s at most) until cond, checked under m.mu, holds.
func waitLocked(t *testing.T, m *Monitor, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m.mu.Lock()
		ok := cond()
		m.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitPending(t *testing.T, m *Monitor, n int) {
	t.Helper()
	waitLocked(t, m, fmt.Sprint(n, " pending frames"), func() bool { return len(m.recs) == n })
}

// Feedback that overtakes its prediction's group commit (a client that
// chose its own id) still joins: Join writes the pending batch first.
func TestJoinSeesAPendingPrediction(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m := openTest(t, t.TempDir(), clk)
	m.mu.Lock()
	m.writing = true // as if a leader were writing another batch
	m.mu.Unlock()
	recorded := make(chan error)
	go func() {
		recorded <- m.Record(&Prediction{Model: "iris", Revision: "r1", ID: "early", Time: clk.now().UnixNano(), Rows: []Row{label("1")}})
	}()
	waitPending(t, m, 1)
	joined := make(chan []Result)
	go func() { joined <- m.Join("iris", []Feedback{{ID: "early", Truth: []Truth{num(1)}}}) }()
	waitLocked(t, m, "Join to wait for the write in flight", func() bool { return m.waitingForFile == 1 })
	m.mu.Lock()
	m.writing = false
	m.cond.Broadcast()
	m.mu.Unlock()
	if res := <-joined; res[0].Outcome != Joined {
		t.Fatalf("%+v", res)
	}
	if err := <-recorded; err != nil {
		t.Fatal(err)
	}
}

// A batch whose write fails leaves no index entries and no bytes behind;
// each of its recorders gets the error, and the journal goes on.
func TestFailedGroupCommitLeavesNothing(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	dir := t.TempDir()
	m := openTest(t, dir, clk)
	record(t, m, clk, "before", label("1"))
	_, sizeBefore := m.Outstanding()
	m.mu.Lock()
	good := m.f
	ro, err := os.Open(good.Name()) // writes to it fail
	if err != nil {
		t.Fatal(err)
	}
	m.f = ro
	m.writing = true // hold the batch back until both frames are in it
	m.mu.Unlock()
	errs := make(chan error, 2)
	for _, id := range []string{"lost-1", "lost-2"} {
		go func() {
			errs <- m.Record(&Prediction{Model: "iris", Revision: "r1", ID: id, Time: clk.now().UnixNano(), Rows: []Row{label("1")}})
		}()
	}
	waitPending(t, m, 2)
	m.mu.Lock()
	m.writing = false
	m.cond.Broadcast()
	m.mu.Unlock()
	for range 2 {
		if err := <-errs; err == nil {
			t.Fatalf("recorder of a failed batch: %v", err)
		}
	}
	m.mu.Lock()
	m.f = good
	m.mu.Unlock()
	ro.Close()
	if n, size := m.Outstanding(); n != 1 || size != sizeBefore {
		t.Fatalf("after a failed write: %d remembered, journal %d bytes; want 1, %d", n, size, sizeBefore)
	}
	if c, _ := m.Counts("iris"); c.Recorded != 1 || c.NotRecorded != 2 {
		t.Fatalf("counts %+v", c)
	}
	record(t, m, clk, "after", label("2"))
	res := m.Join("iris", []Feedback{
		{ID: "before", Truth: []Truth{num(1)}}, {ID: "lost-1", Truth: []Truth{num(1)}},
		{ID: "lost-2", Truth: []Truth{num(1)}}, {ID: "after", Truth: []Truth{num(2)}},
	})
	if got := fmt.Sprint(outcomes(res)); got != "[joined unknown unknown joined]" {
		t.Fatalf("outcomes %s", got)
	}
	m.Close()
	m2 := openTest(t, dir, clk)
	if n, _ := m2.Outstanding(); n != 2 {
		t.Fatalf("%d remembered after reopen", n)
	}
}
