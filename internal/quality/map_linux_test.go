package quality

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/frame"
)

// needMapping skips a test of the mapping where the temporary directory's
// filesystem is not one the journal is mapped on (allocatingFS).
func needMapping(t *testing.T) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "probe"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := allocate(f, 0, 4096); err != nil {
		t.Skipf("the journal is not mapped here: %v", err)
	}
}

// logBuffer collects a Monitor's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestZeroTailIsNotTorn: a mapped journal left without Close (a crash)
// ends in the zeros allocated for the mapping; both ways of writing read
// every record before them, cut the zeros off without calling them torn,
// and append after the last record.
func TestZeroTailIsNotTorn(t *testing.T) {
	needMapping(t)
	for _, mode := range []struct {
		name string
		set  func(*Config)
	}{{"mapped", nil}, {"write-calls", writeCalls}} {
		t.Run(mode.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1_700_000_000, 0)}
			m := openWith(t, t.TempDir(), clk, nil)
			for i := range 20 {
				record(t, m, clk, fmt.Sprint(i), label("1"))
			}
			_, size := m.Outstanding()
			crashed, err := os.ReadFile(m.journalPath(m.seq)) // as a kill -9 leaves it
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(crashed)) <= size || !bytes.Equal(crashed[size:], make([]byte, len(crashed)-int(size))) {
				t.Fatalf("file of %d bytes for %d of records: want zeros after them", len(crashed), size)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "journal.0.log"), crashed, 0o644); err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			m2 := openWith(t, dir, clk, func(c *Config) {
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				if mode.set != nil {
					mode.set(c)
				}
			})
			if n, sz := m2.Outstanding(); n != 20 || sz != size {
				t.Fatalf("%d predictions, %d bytes; want 20, %d", n, sz, size)
			}
			if strings.Contains(logs.String(), "torn") {
				t.Fatalf("the zero tail was logged as torn: %s", logs.String())
			}
			record(t, m2, clk, "after", label("2"))
			m2.Close()
			if st, _ := os.Stat(filepath.Join(dir, "journal.0.log")); st.Size() <= size {
				t.Fatalf("journal of %d bytes after an append", st.Size())
			}
			m3 := openWith(t, dir, clk, nil)
			res := m3.Join("iris", []Feedback{{ID: "0", Truth: []Truth{num(1)}}, {ID: "19", Truth: []Truth{num(1)}}, {ID: "after", Truth: []Truth{num(2)}}})
			if got := fmt.Sprint(outcomes(res)); got != "[joined joined joined]" {
				t.Fatalf("outcomes %s", got)
			}
		})
	}
}

// TestMappedAndWrittenJournalsReadEachOther: a journal written with write
// calls is read and appended to through the mapping, and the other way
// round, across predictions as rows and raw, joins, a compaction and a
// crash's zero tail.
func TestMappedAndWrittenJournalsReadEachOther(t *testing.T) {
	needMapping(t)
	for _, order := range []struct {
		name         string
		first, later func(*Config)
	}{{"write-then-mapped", writeCalls, nil}, {"mapped-then-write", nil, writeCalls}} {
		t.Run(order.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1_700_000_000, 0)}
			dir := t.TempDir()
			small := func(set func(*Config)) func(*Config) {
				return func(c *Config) {
					c.mapChunk, c.Window = 8<<10, 1000
					if set != nil {
						set(c)
					}
				}
			}
			m := openWith(t, dir, clk, small(order.first))
			for i := range 100 {
				record(t, m, clk, fmt.Sprint("rows-", i), label("1"))
				if err := m.Record(rawPrediction(fmt.Sprint("raw-", i), clk.now().UnixNano())); err != nil {
					t.Fatal(err)
				}
			}
			m.Join("iris", []Feedback{{ID: "rows-0", Truth: []Truth{num(1)}}, {ID: "raw-0", Truth: []Truth{num(1)}}})
			m.Close()

			m2 := openWith(t, dir, clk, small(order.later))
			res := m2.Join("iris", []Feedback{{ID: "rows-0", Truth: []Truth{num(1)}}, {ID: "raw-0", Truth: []Truth{num(1)}}, {ID: "rows-1", Truth: []Truth{num(1)}}, {ID: "raw-1", Truth: []Truth{num(1)}}})
			if got := fmt.Sprint(outcomes(res)); got != "[duplicate duplicate joined joined]" {
				t.Fatalf("outcomes %s", got)
			}
			for i := range 100 {
				record(t, m2, clk, fmt.Sprint("later-", i), label("2"))
			}
			if err := m2.Compact(); err != nil {
				t.Fatal(err)
			}
			record(t, m2, clk, "after-compaction", label("2"))
			m2.Close()

			m3 := openWith(t, dir, clk, small(order.first))
			var fb []Feedback
			for i := 2; i < 100; i++ {
				fb = append(fb, Feedback{ID: fmt.Sprint("rows-", i), Truth: []Truth{num(1)}}, Feedback{ID: fmt.Sprint("raw-", i), Truth: []Truth{num(1)}}, Feedback{ID: fmt.Sprint("later-", i), Truth: []Truth{num(2)}})
			}
			fb = append(fb, Feedback{ID: "after-compaction", Truth: []Truth{num(2)}})
			for _, r := range m3.Join("iris", fb) {
				if r.Outcome != Joined {
					t.Fatalf("%+v", r)
				}
			}
			if s := m3.Snapshots("iris"); s[0].Labelled != 4+len(fb) {
				t.Fatalf("labelled %d; want %d", s[0].Labelled, 4+len(fb))
			}
		})
	}
}

// TestPreallocationFails: where the blocks cannot be allocated (a full
// disk, a filesystem without fallocate) the journal is not mapped, so a
// store can never fault for want of a block: it is written with write
// calls, from the start or from the moment allocating more fails, and
// mapped again by the next compaction once allocating works.
func TestPreallocationFails(t *testing.T) {
	needMapping(t)
	full := fmt.Errorf("fallocate: %w", syscall.ENOSPC)
	t.Run("at-open", func(t *testing.T) {
		clk := &clock{t: time.Unix(1_700_000_000, 0)}
		dir := t.TempDir()
		var logs logBuffer
		m := openWith(t, dir, clk, func(c *Config) {
			c.allocate = func(*os.File, int64, int64) error { return full }
			c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		if m.win != nil {
			t.Fatal("mapped without allocated blocks")
		}
		if !strings.Contains(logs.String(), "no space left") {
			t.Fatalf("the fallback is not logged: %q", logs.String())
		}
		for i := range 50 {
			record(t, m, clk, fmt.Sprint(i), label("1"))
		}
		if m.writes == 0 {
			t.Fatal("no write calls")
		}
		m.Close()
		m2 := openWith(t, dir, clk, nil)
		if got := outcomes(m2.Join("iris", []Feedback{{ID: "49", Truth: []Truth{num(1)}}})); got[0] != Joined {
			t.Fatalf("%v", got)
		}
	})
	t.Run("when-growing", func(t *testing.T) {
		clk := &clock{t: time.Unix(1_700_000_000, 0)}
		dir := t.TempDir()
		var failing atomic.Bool
		m := openWith(t, dir, clk, func(c *Config) {
			c.mapChunk = 1 // a page
			c.allocate = func(f *os.File, off, n int64) error {
				if failing.Load() {
					return full
				}
				return allocate(f, off, n)
			}
		})
		if m.win == nil {
			t.Fatal("not mapped")
		}
		failing.Store(true)
		for i := range 200 { // several pages
			record(t, m, clk, fmt.Sprint(i), label("1"))
		}
		if m.win != nil || m.writes == 0 {
			t.Fatalf("still mapped (%v) or no write calls (%d) after allocating failed", m.win != nil, m.writes)
		}
		_, size := m.Outstanding()
		if st, err := os.Stat(m.journalPath(m.seq)); err != nil || st.Size() != size {
			t.Fatalf("file %v, %v; want %d bytes (no zeros before the written records)", st.Size(), err, size)
		}
		failing.Store(false)
		if err := m.Compact(); err != nil {
			t.Fatal(err)
		}
		if m.win == nil {
			t.Fatal("not mapped again after compaction")
		}
		for i := 200; i < 400; i++ {
			record(t, m, clk, fmt.Sprint(i), label("1"))
		}
		m.Close()
		m2 := openWith(t, dir, clk, nil)
		var fb []Feedback
		for i := range 400 {
			fb = append(fb, Feedback{ID: fmt.Sprint(i), Truth: []Truth{num(1)}})
		}
		for _, r := range m2.Join("iris", fb) {
			if r.Outcome != Joined {
				t.Fatalf("%+v", r)
			}
		}
	})
}

// TestRecordsLargerThanTheMapping: a record longer than the mapped chunk
// (a large response journaled as rows) is mapped whole.
func TestRecordsLargerThanTheMapping(t *testing.T) {
	needMapping(t)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	dir := t.TempDir()
	m := openWith(t, dir, clk, func(c *Config) { c.mapChunk = 1 })
	big := make([]Row, 3000) // ~30 KB as rows
	for i := range big {
		big[i] = Row{Kind: KindValue, Value: float64(i)}
	}
	record(t, m, clk, "small", label("1"))
	record(t, m, clk, "big", big...)
	record(t, m, clk, "small-2", label("1"))
	if m.win == nil {
		t.Fatal("not mapped")
	}
	m.Close()
	m2 := openWith(t, dir, clk, nil)
	truth := make([]Truth, len(big))
	for i := range truth {
		truth[i] = num(float64(i))
	}
	res := m2.Join("iris", []Feedback{{ID: "small", Truth: []Truth{num(1)}}, {ID: "big", Truth: truth}, {ID: "small-2", Truth: []Truth{num(1)}}})
	if got := fmt.Sprint(outcomes(res)); got != "[joined joined joined]" {
		t.Fatalf("outcomes %s", got)
	}
}

// The kill tests run this test binary again as a journaling process
// (killHelper), which prints each id once Record has returned it, as
// ferry serve answers a prediction once Record returns.
const (
	killDirEnv  = "FERRY_QUALITY_KILL_DIR"
	killModeEnv = "FERRY_QUALITY_KILL_MODE"
)

func killHelper(dir, mode string) {
	m, err := Open(Config{Dir: dir, Horizon: time.Hour, mapChunk: 16 << 10})
	if err != nil || m.win == nil {
		fmt.Println("not mapped:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	ack := func(id string) {
		out.Lock()
		os.Stdout.WriteString(id + "\n") // unbuffered: in the pipe before the next Record
		out.Unlock()
	}
	body := []byte(`{"predictions":["` + strings.Repeat("x", 6000) + `"]}`) // copies long enough to be cut
	pred := func(id string) *Prediction {
		return &Prediction{Model: "iris", Revision: "r1", ID: id, Time: time.Now().UnixNano(), Output: &RawOutput{V1: true, Task: TaskAuto, Body: body}}
	}
	switch mode {
	case "torn-head", "torn-end":
		// Stop as a kill in the middle of a copy into the mapping
		// leaves the file: part of a frame after the last whole one.
		for i := range 100 {
			id := fmt.Sprint(mode, "-", i)
			if err := m.Record(pred(id)); err != nil {
				fmt.Println(err)
				os.Exit(2)
			}
			ack(id)
		}
		fr := frame.Append(nil, func(b []byte) []byte { return appendPrediction(b, pred("never-answered")) })
		m.mu.Lock()
		at := m.size - m.winOff
		if m.size+int64(len(fr)) > m.winOff+int64(len(m.win)) {
			if err := m.remapLocked(m.size + int64(len(fr))); err != nil {
				fmt.Println(err)
				os.Exit(2)
			}
			at = m.size - m.winOff
		}
		if mode == "torn-head" {
			copy(m.win[at:], fr[:len(fr)/2])
		} else { // memmove may store a copy's end first
			copy(m.win[at+int64(len(fr)/2):], fr[len(fr)/2:])
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	default:
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					id := fmt.Sprint(mode, "-", w, "-", i)
					if err := m.Record(pred(id)); err != nil {
						fmt.Println(err)
						os.Exit(2)
					}
					ack(id)
				}
			})
		}
		wg.Wait()
	}
}

// runKillHelper starts killHelper on dir and returns the ids it
// acknowledged before it died: killed by this test once it has
// acknowledged n (n > 0), or by itself.
func runKillHelper(t *testing.T, dir, mode string, n int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9WhileWritingThroughTheMapping$", "-test.count=1")
	cmd.Env = append(os.Environ(), killDirEnv+"="+dir, killModeEnv+"="+mode)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, mode+"-") {
			t.Errorf("helper: %s", line)
			continue
		}
		ids = append(ids, line)
		if len(ids) == n {
			_ = cmd.Process.Kill() // SIGKILL; what it printed meanwhile is read below
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v; want SIGKILL", err)
	}
	return ids
}

// TestKill9WhileWritingThroughTheMapping: a process appending through the
// mapping is killed with SIGKILL, by another process at a random moment
// (four recorders, so usually inside or between copies) and by itself
// halfway through a copy. Every prediction it acknowledged joins after a
// restart; the cut copy is dropped; appends go on after the last whole
// record.
func TestKill9WhileWritingThroughTheMapping(t *testing.T) {
	if dir := os.Getenv(killDirEnv); dir != "" {
		killHelper(dir, os.Getenv(killModeEnv))
		return
	}
	if testing.Short() {
		t.Skip("runs journaling processes and kills them")
	}
	needMapping(t)
	clk := &clock{t: time.Now()}
	check := func(t *testing.T, dir string, acked []string) {
		t.Helper()
		m := openWith(t, dir, clk, nil)
		fb := make([]Feedback, len(acked))
		for i, id := range acked {
			fb[i] = Feedback{ID: id, Truth: []Truth{num(1)}}
		}
		for _, r := range m.Join("iris", fb) {
			if r.Outcome != Joined {
				t.Fatalf("acknowledged before kill -9: %+v", r)
			}
		}
		record(t, m, clk, "after-"+acked[0], label("1"))
		m.Close()
		m2 := openWith(t, dir, clk, nil)
		if got := outcomes(m2.Join("iris", []Feedback{{ID: "after-" + acked[0], Truth: []Truth{num(1)}}, fb[len(fb)-1]})); fmt.Sprint(got) != "[joined duplicate]" {
			t.Fatalf("after the restart: %v", got)
		}
		m2.Close()
	}
	t.Run("by-another-process", func(t *testing.T) {
		dir := t.TempDir()
		for round := range 3 {
			acked := runKillHelper(t, dir, fmt.Sprint("round", round), 300+round*250)
			if len(acked) < 300 {
				t.Fatalf("%d acknowledged", len(acked))
			}
			check(t, dir, acked)
		}
	})
	for _, mode := range []string{"torn-head", "torn-end"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			acked := runKillHelper(t, dir, mode, 0)
			if len(acked) != 100 {
				t.Fatalf("%d acknowledged", len(acked))
			}
			ids := journalIDs(t, filepath.Join(dir, "journal.0.log"))
			if len(ids) != 100 || ids["never-answered"] {
				t.Fatalf("%d whole records in the killed journal", len(ids))
			}
			check(t, dir, acked)
			m := openWith(t, dir, clk, nil)
			if n, _ := m.Outstanding(); n != 101 {
				t.Fatalf("%d remembered; want 101", n)
			}
		})
	}
}
