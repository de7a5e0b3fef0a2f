package quality

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openTest(t *testing.T, dir string, clk *clock) *Monitor {
	t.Helper()
	m, err := Open(Config{Dir: dir, Horizon: time.Hour, Window: 100, Now: clk.now, CompactMinBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func label(l string) Row { return Row{Kind: KindLabel, Label: l} }
func num(v float64) Truth {
	return Truth{Value: v, Numeric: true, Label: formatNumber(v)}
}

func record(t *testing.T, m *Monitor, clk *clock, id string, rows ...Row) {
	t.Helper()
	if err := m.Record(&Prediction{Model: "iris", Revision: "r1", ID: id, Time: clk.now().UnixNano(), Rows: rows}); err != nil {
		t.Fatal(err)
	}
}

func outcomes(res []Result) []Outcome {
	out := make([]Outcome, len(res))
	for i, r := range res {
		out[i] = r.Outcome
	}
	return out
}

// TestJoinOutcomes: out-of-order, duplicate, late, unknown and invalid
// feedback each land in their own count and none is lost.
func TestJoinOutcomes(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m := openTest(t, t.TempDir(), clk)
	record(t, m, clk, "old", label("1"))
	clk.add(50 * time.Minute)
	for i := range 5 {
		record(t, m, clk, fmt.Sprint("p", i), label("1"), label("2"))
	}
	clk.add(20 * time.Minute) // "old" is now past the one-hour horizon
	res := m.Join("iris", []Feedback{
		{ID: "p3", Truth: []Truth{num(1), num(2)}},             // out of order
		{ID: "p0", Truth: []Truth{num(1), num(1)}},             // one row wrong
		{ID: "p3", Truth: []Truth{num(2), num(2)}},             // duplicate: counted once
		{ID: "old", Truth: []Truth{num(1)}},                    // late
		{ID: "nope", Truth: []Truth{num(1)}},                   // unknown
		{ID: "p1", Truth: []Truth{num(1)}},                     // wrong row count
		{ID: "p2", Truth: []Truth{{Label: "2"}, {Label: "2"}}}, // labels as strings
	})
	want := []Outcome{Joined, Joined, Duplicate, Expired, Unknown, Invalid, Joined}
	if got := outcomes(res); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
	if res[5].Error == "" {
		t.Error("invalid feedback without a reason")
	}
	c, _ := m.Counts("iris")
	if c.Received != 7 || c.Joined != 3 || c.Duplicate != 1 || c.Expired != 1 || c.Unknown != 1 || c.Invalid != 1 || c.Recorded != 6 {
		t.Fatalf("counts %+v", c)
	}
	// Feedback for p1 with the right shape still joins after the bad try.
	if got := outcomes(m.Join("iris", []Feedback{{ID: "p1", Truth: []Truth{num(1), num(2)}}})); got[0] != Joined {
		t.Fatalf("retry: %v", got)
	}
	snaps := m.Snapshots("iris")
	if len(snaps) != 1 || snaps[0].Labelled != 8 {
		t.Fatalf("snapshots %+v", snaps)
	}
	// 8 rows: p3 (1,2 vs 1,2), p0 (1,2 vs 1,1), p2 (1,2 vs 2,2), p1 (1,2 vs 1,2): 6 right.
	if a := snaps[0].Classification.Accuracy; a != 6.0/8 {
		t.Fatalf("accuracy %v", a)
	}
	// Unknown model: counted in the total only.
	m.Join("other", []Feedback{{ID: "x", Truth: []Truth{num(1)}}})
	if tot, _ := m.Counts(""); tot.Unknown != 2 || tot.Received != 9 {
		t.Fatalf("total %+v", tot)
	}
}

// TestRestartKeepsJoinState: a reopened journal knows what is pending,
// what was joined (so a duplicate is still a duplicate) and the windows.
func TestRestartKeepsJoinState(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m := openTest(t, dir, clk)
	record(t, m, clk, "a", label("x"))
	record(t, m, clk, "b", Row{Kind: KindProbs, Probs: []float64{0.2, 0.8}})
	record(t, m, clk, "c", Row{Kind: KindValue, Value: 2.5})
	m.Join("iris", []Feedback{{ID: "a", Truth: []Truth{{Label: "x"}}}})
	before := m.Snapshots("")
	m.Close()

	m2 := openTest(t, dir, clk)
	got := outcomes(m2.Join("iris", []Feedback{
		{ID: "a", Truth: []Truth{{Label: "x"}}},
		{ID: "b", Truth: []Truth{num(0)}},
		{ID: "c", Truth: []Truth{num(3)}},
	}))
	if fmt.Sprint(got) != fmt.Sprint([]Outcome{Duplicate, Joined, Joined}) {
		t.Fatalf("after restart: %v", got)
	}
	after := m2.Snapshots("")
	if before[0].Labelled != 1 || after[0].Labelled != 3 {
		t.Fatalf("labelled before %d after %d", before[0].Labelled, after[0].Labelled)
	}
	if ll := after[0].Classification.LogLoss; ll == nil {
		t.Fatal("no log loss after joining probabilities")
	}
	if r := after[0].Regression; r == nil || r.MAE != 0.5 {
		t.Fatalf("regression %+v", r)
	}
}

// TestTornTailSkipped: a half-written last record (a crash mid-write) is
// cut off; every whole record before it survives and appends continue.
func TestTornTailSkipped(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m := openTest(t, dir, clk)
	for i := range 10 {
		record(t, m, clk, fmt.Sprint(i), label("1"))
	}
	_, size := m.Outstanding()
	m.Close()
	path := filepath.Join(dir, "journal.0.log")
	for _, tail := range [][]byte{{0x20, 0, 0}, {0x20, 0, 0, 0, 1, 2, 3, 4, 'P', 1}, make([]byte, 64)} {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(tail)
		f.Close()
		m2 := openTest(t, dir, clk)
		n, sz := m2.Outstanding()
		if n != 10 || sz != size {
			t.Fatalf("tail %x: %d predictions, %d bytes; want 10, %d", tail, n, sz, size)
		}
		m2.Close()
	}
	// A flipped byte inside the last record fails its checksum.
	b, _ := os.ReadFile(path)
	b[len(b)-2] ^= 0xff
	os.WriteFile(path, b, 0o644)
	m3 := openTest(t, dir, clk)
	if n, _ := m3.Outstanding(); n != 9 {
		t.Fatalf("corrupt last record: %d predictions, want 9", n)
	}
	record(t, m3, clk, "after", label("1"))
	if got := outcomes(m3.Join("iris", []Feedback{{ID: "after", Truth: []Truth{num(1)}}, {ID: "8", Truth: []Truth{num(1)}}})); got[0] != Joined || got[1] != Joined {
		t.Fatalf("after repair: %v", got)
	}
}

// TestExpiryAndCompaction: after two horizons ids are forgotten (feedback
// becomes unknown), compaction shrinks the journal, and the windows and
// pending predictions survive it and a restart.
func TestExpiryAndCompaction(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m := openTest(t, dir, clk)
	for i := range 200 {
		record(t, m, clk, fmt.Sprint("old", i), label("1"))
	}
	for i := range 50 {
		m.Join("iris", []Feedback{{ID: fmt.Sprint("old", i), Truth: []Truth{num(float64(i % 2))}}})
	}
	clk.add(90 * time.Minute)
	record(t, m, clk, "fresh", label("0"))
	if err := m.Maintain(); err != nil {
		t.Fatal(err)
	}
	if got := outcomes(m.Join("iris", []Feedback{{ID: "old60", Truth: []Truth{num(1)}}})); got[0] != Expired {
		t.Fatalf("within two horizons: %v", got)
	}
	clk.add(40 * time.Minute) // old* are now > 2h old
	_, before := m.Outstanding()
	if err := m.Maintain(); err != nil {
		t.Fatal(err)
	}
	if err := m.Compact(); err != nil { // Maintain compacts only after doubling
		t.Fatal(err)
	}
	n, after := m.Outstanding()
	if n != 1 || after >= before {
		t.Fatalf("after expiry: %d remembered, %d→%d bytes", n, before, after)
	}
	if got := outcomes(m.Join("iris", []Feedback{{ID: "old70", Truth: []Truth{num(1)}}})); got[0] != Unknown {
		t.Fatalf("after two horizons: %v", got)
	}
	snap := m.Snapshots("iris")[0]
	m.Close()
	m2 := openTest(t, dir, clk)
	snap2 := m2.Snapshots("iris")[0]
	if snap.Labelled != 50 || snap2.Labelled != 50 || snap2.Classification.Accuracy != snap.Classification.Accuracy {
		t.Fatalf("window before %+v after restart %+v", snap, snap2)
	}
	if got := outcomes(m2.Join("iris", []Feedback{{ID: "fresh", Truth: []Truth{num(0)}}})); got[0] != Joined {
		t.Fatalf("pending prediction lost in compaction: %v", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 { // the journal and LOCK
		t.Fatalf("journal files left: %v", ents)
	}
}

func TestMaxPredictions(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m, err := Open(Config{Dir: t.TempDir(), MaxPredictions: 2, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	record(t, m, clk, "a", label("1"))
	record(t, m, clk, "b", label("1"))
	record(t, m, clk, "a", label("2")) // a replacement still fits
	if err := m.Record(&Prediction{Model: "iris", ID: "c", Rows: []Row{label("1")}}); err != ErrFull {
		t.Fatalf("third prediction: %v", err)
	}
	if c, _ := m.Counts(""); c.NotRecorded != 1 || c.Recorded != 3 {
		t.Fatalf("counts %+v", c)
	}
}
