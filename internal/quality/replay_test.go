package quality

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzReplay opens a journal of hostile bytes, mapped and with write
// calls: it must neither panic nor allocate without bound; it keeps a
// prefix of the file, reads it again alike, and appends after it so that
// a reopen finds the new record.
func FuzzReplay(f *testing.F) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	seedDir := f.TempDir()
	m, err := Open(Config{Dir: seedDir, Horizon: time.Hour, Now: clk.now})
	if err != nil {
		f.Fatal(err)
	}
	v1s, v2s := ferryResponses()
	for i, body := range append(v1s, v2s...) {
		out := &RawOutput{V1: i < len(v1s), Task: TaskAuto, Body: body}
		_ = m.Record(&Prediction{Model: "m", Revision: "r", ID: string(rune('a' + i)), Time: clk.now().UnixNano(), Output: out})
	}
	_ = m.Record(&Prediction{Model: "m", Revision: "r", ID: "rows", Time: clk.now().UnixNano(), Rows: []Row{label("1"), {Kind: KindValue, Value: 2}, {Kind: KindProbs, Probs: []float64{0.25, 0.75}}}})
	m.Join("m", []Feedback{{ID: "a", Truth: []Truth{num(0)}}, {ID: "rows", Truth: []Truth{num(1), num(2), num(1)}}})
	m.Close()
	journal, err := os.ReadFile(filepath.Join(seedDir, "journal.0.log"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(journal, false)
	f.Add(append(journal, make([]byte, 4096)...), true) // a zero tail
	f.Add(journal[:len(journal)-3], true)               // torn
	f.Add([]byte{0xff, 0xff, 0xff, 0x03, 0, 0, 0, 0}, false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, b []byte, writeCalls bool) {
		dir := t.TempDir()
		path := filepath.Join(dir, "journal.0.log")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := Config{Dir: dir, Horizon: time.Hour, Now: clk.now, writeCalls: writeCalls, mapChunk: 4096}
		m, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		n, size := m.Outstanding()
		if size > int64(len(b)) {
			t.Fatalf("kept %d bytes of %d", size, len(b))
		}
		m.Snapshots("")
		m.Join("m", []Feedback{{ID: "a", Truth: []Truth{num(0)}}, {ID: "rows", Truth: []Truth{num(1), num(2), num(1)}}})
		prefix := size
		_, size = m.Outstanding() // a join may append
		m.Close()
		if kept, _ := os.ReadFile(path); int64(len(kept)) != size || !bytes.Equal(kept[:prefix], b[:prefix]) {
			t.Fatalf("%d bytes kept of %d, %d after the joins: the kept prefix changed", prefix, len(b), len(kept))
		}

		m, err = Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if n2, size2 := m.Outstanding(); n2 < n || size2 != size {
			t.Fatalf("reopened: %d predictions, %d bytes; was %d, %d", n2, size2, n, size)
		}
		if err := m.Record(&Prediction{Model: "fuzz", Revision: "r", ID: "new", Time: clk.now().UnixNano(), Rows: []Row{label("1")}}); err != nil {
			t.Fatal(err)
		}
		m.Close()
		m, err = Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if res := m.Join("fuzz", []Feedback{{ID: "new", Truth: []Truth{num(1)}}}); res[0].Outcome != Joined {
			t.Fatalf("appended after the kept prefix: %+v", res[0])
		}
	})
}
