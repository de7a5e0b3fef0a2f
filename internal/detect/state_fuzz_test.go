package detect

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/frame"
)

// FuzzStateDecoders feeds arbitrary bytes to the snapshot and log-record
// decoders: they must refuse or decode, never panic or allocate beyond
// what the bytes hold.
func FuzzStateDecoders(f *testing.F) {
	w := &window{svc: "ns/iris", ord: 3, started: time.Unix(5, 0), lastID: "x",
		ext: map[string]string{"Ce-Namespace": "ns"}, rows: [][]float64{{1, 2}, {3, 4}}}
	snap := frame.Append(nil, func(b []byte) []byte {
		return binary.AppendUvarint(binary.AppendUvarint(append(b, recSnap), 7), 0)
	})
	snap = frame.Append(snap, func(b []byte) []byte { return appendWindowFields(append(b, recWindow, 0), w.svc, w) })
	f.Add(snap)
	rec := frame.Append(nil, func(b []byte) []byte {
		b = binary.AppendUvarint(append(b, recRows), 9)
		b = frame.AppendString(b, "iris")
		b = binary.AppendVarint(b, 1)
		b = frame.AppendString(b, "id")
		b = appendExt(b, nil)
		return appendRows(b, w.rows)
	})
	f.Add(rec)
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := parseSnapshot(b); err == nil {
			for _, w := range s.open {
				for _, r := range w.rows {
					if len(r) != len(w.rows[0]) {
						t.Fatal("ragged rows")
					}
				}
			}
		}
		for len(b) > 0 {
			p, n, err := frame.Next(b, maxRecord)
			if err != nil || n == 0 {
				return
			}
			_, _ = decodeRecord(p)
			b = b[n:]
		}
		_, _ = decodeRecord(b)
	})
}
