package quality

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/frame"
)

// openWith opens dir with openTest's settings changed by set.
func openWith(t *testing.T, dir string, clk *clock, set func(*Config)) *Monitor {
	t.Helper()
	cfg := Config{Dir: dir, Horizon: time.Hour, Window: 100, Now: clk.now, CompactMinBytes: 1}
	if set != nil {
		set(&cfg)
	}
	m, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func writeCalls(c *Config) { c.writeCalls = true }
func copyAlone(c *Config)  { c.copyAlone = true }

// journalIDs reads the journal file as another process would and returns
// the ids of its whole records, stopping where replay stops.
func journalIDs(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for len(b) > 0 {
		p, n, err := frame.Next(b, maxFrame)
		if err != nil || n == 0 {
			break
		}
		_, j, err := decodeRecord(p)
		if err != nil {
			break
		}
		ids[j.ID] = true
		b = b[n:]
	}
	return ids
}

func rawPrediction(id string, at int64) *Prediction {
	return &Prediction{Model: "iris", Revision: "r1", ID: id, Time: at, Output: &RawOutput{V1: true, Task: TaskAuto, Body: []byte(`{"predictions":[1]}`)}}
}

// TestRecordIsInTheKernelWhenItReturns: whether the journal is mapped or
// written with write calls (group commit), a prediction's record can be
// read from the file by anyone once Record returns, i.e. before the
// middleware lets its response leave: a kill -9 after that cannot lose it.
func TestRecordIsInTheKernelWhenItReturns(t *testing.T) {
	for _, mode := range []struct {
		name string
		set  func(*Config)
	}{{"mapped", nil}, {"mapped-alone", copyAlone}, {"write-calls", writeCalls}} {
		t.Run(mode.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1_700_000_000, 0)}
			dir := t.TempDir()
			m := openWith(t, dir, clk, mode.set)
			if mode.name == "write-calls" && m.win != nil {
				t.Fatal("mapped; want write calls")
			}
			path := m.journalPath(m.seq)
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := range 25 {
						id := fmt.Sprint(w, "-", i)
						if err := m.Record(rawPrediction(id, clk.now().UnixNano())); err != nil {
							t.Error(err)
							return
						}
						if !journalIDs(t, path)[id] {
							t.Errorf("%s: Record returned, the file does not hold it", id)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestGroupCommitAndMappingKeepEveryRecord: concurrent recorders, mapped
// and with write calls; every one that returned nil is in the journal,
// joins, and is there after a reopen.
func TestGroupCommitAndMappingKeepEveryRecord(t *testing.T) {
	for _, mode := range []struct {
		name string
		set  func(*Config)
	}{
		{"mapped", nil},
		{"mapped-a-page-at-a-time", func(c *Config) { c.mapChunk = 1 }}, // rounded up to a page
		{"mapped-alone", copyAlone},
		{"write-calls", writeCalls},
	} {
		t.Run(mode.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1_700_000_000, 0)}
			dir := t.TempDir()
			m := openWith(t, dir, clk, mode.set)
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
			m2 := openWith(t, dir, clk, mode.set)
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
		})
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
	m := openWith(t, t.TempDir(), clk, writeCalls)
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
	m := openWith(t, dir, clk, writeCalls)
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
