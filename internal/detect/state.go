package detect

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/frame"
)

// The detector's state on disk, under Config.StateDir:
//
//   - state.snap: every open window and every window closed but not yet
//     tested, as of record number seq; replaced atomically (written to a
//     temporary file, synced, renamed, directory synced).
//   - state.wal: the records after the snapshot, appended before an event
//     is acknowledged: "rows" (an event's counted rows, with its time,
//     ce-id and reply extensions), "close" (a window closed by time), and
//     "tested" (a closed window's verdict was sent or its rows dropped).
//
// Recovery loads the snapshot, replays the records numbered after it
// through the same window logic (so windows close at the same rows), and
// tests the windows that closed but have no "tested" record. A verdict may
// therefore be sent twice around a crash, never lost; a row is counted
// once. Without StateSync a record is written, not synced, before the
// acknowledgement: it survives the process being killed (kill -9), not
// the machine losing power.
const (
	snapFile = "state.snap"
	walFile  = "state.wal"

	recRows   = 1
	recClose  = 2
	recTested = 3
	recSnap   = 4 // snapshot header: seq
	recWindow = 5 // snapshot: one window

	maxRecord = 256 << 20
)

// replyHeaders are the event headers a reply carries back; only these are
// kept on disk.
var replyHeaders = []string{"Ce-Inferenceservicename", "Ce-Namespace", "Ce-Endpoint", "Ce-Component"}

type journal struct {
	dir     string
	f       *os.File
	size    int64
	seq     uint64
	sync    bool
	compact int64 // rewrite the snapshot once the log is this long
	buf     []byte
}

func appendWindowFields(b []byte, svc string, w *window) []byte {
	b = frame.AppendString(b, svc)
	b = binary.AppendUvarint(b, w.ord)
	b = binary.AppendVarint(b, w.started.UnixNano())
	b = frame.AppendString(b, w.lastID)
	b = appendExt(b, w.ext)
	return appendRows(b, w.rows)
}

func appendExt(b []byte, h map[string]string) []byte {
	n := 0
	for _, k := range replyHeaders {
		if _, ok := h[k]; ok {
			n++
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for _, k := range replyHeaders {
		if v, ok := h[k]; ok {
			b = frame.AppendString(b, k)
			b = frame.AppendString(b, v)
		}
	}
	return b
}

func readExt(d *frame.Decoder) map[string]string {
	n := d.Count()
	h := make(map[string]string, n)
	for range n {
		k := d.String()
		h[k] = d.String()
	}
	return h
}

func appendRows(b []byte, rows [][]float64) []byte {
	b = binary.AppendUvarint(b, uint64(len(rows)))
	if len(rows) == 0 {
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(rows[0])))
	for _, r := range rows {
		for _, v := range r {
			b = frame.AppendFloat(b, v)
		}
	}
	return b
}

func readRows(d *frame.Decoder) [][]float64 {
	n := d.Count()
	if n == 0 {
		return nil
	}
	width := d.Count()
	if width == 0 || n*width*8 > d.Len() {
		d.Fail()
		return nil
	}
	flat := make([]float64, n*width)
	for i := range flat {
		flat[i] = d.Float()
	}
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = flat[i*width : (i+1)*width : (i+1)*width]
	}
	return rows
}

// openJournal opens (creating) dir's log for appending.
func openJournal(dir string, sync bool, compact int64) (*journal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("detect: state dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, walFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("detect: state log: %w", err)
	}
	return &journal{dir: dir, f: f, sync: sync, compact: compact}, nil
}

// append writes one record numbered after the last one.
func (j *journal) append(kind byte, fill func([]byte) []byte) error {
	j.seq++
	j.buf = frame.Append(j.buf[:0], func(b []byte) []byte {
		b = append(b, kind)
		b = binary.AppendUvarint(b, j.seq)
		return fill(b)
	})
	n, err := j.f.WriteAt(j.buf, j.size)
	if err == nil && j.sync {
		err = j.f.Sync()
	}
	if err != nil {
		// Cut off a partial record so the next one starts cleanly.
		_ = j.f.Truncate(j.size)
		j.seq--
		return fmt.Errorf("detect: state log: %w", err)
	}
	j.size += int64(n)
	return nil
}

// writeSnapshot replaces the snapshot with windows (open and pending),
// numbered j.seq, then empties the log.
func (j *journal) writeSnapshot(open map[string]*window, pending []*window, ords map[string]uint64) error {
	b := frame.Append(nil, func(b []byte) []byte {
		b = append(b, recSnap)
		b = binary.AppendUvarint(b, j.seq)
		b = binary.AppendUvarint(b, uint64(len(ords)))
		for svc, o := range ords {
			b = frame.AppendString(b, svc)
			b = binary.AppendUvarint(b, o)
		}
		return b
	})
	for svc, w := range open {
		b = frame.Append(b, func(b []byte) []byte { return appendWindowFields(append(b, recWindow, 0), svc, w) })
	}
	for _, w := range pending {
		b = frame.Append(b, func(b []byte) []byte { return appendWindowFields(append(b, recWindow, 1), w.svc, w) })
	}
	tmp, err := os.CreateTemp(j.dir, snapFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("detect: snapshot: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(j.dir, snapFile))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("detect: snapshot: %w", err)
	}
	if d, err := os.Open(j.dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	// Records up to seq are in the snapshot; a crash before this
	// truncation only leaves records that recovery skips by number.
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("detect: state log: %w", err)
	}
	j.size = 0
	return nil
}

func (j *journal) close() error { return j.f.Close() }

// record is one decoded log record.
type record struct {
	kind byte
	seq  uint64
	svc  string
	at   time.Time
	id   string
	ext  map[string]string
	rows [][]float64
	ord  uint64
}

func decodeRecord(p []byte) (record, error) {
	d := frame.NewDecoder(p)
	r := record{kind: d.Byte(), seq: d.Uvarint()}
	switch r.kind {
	case recRows:
		r.svc = d.String()
		r.at = time.Unix(0, d.Varint())
		r.id = d.String()
		r.ext = readExt(d)
		r.rows = readRows(d)
	case recClose, recTested:
		r.svc = d.String()
		r.ord = d.Uvarint()
	default:
		d.Fail()
	}
	return r, d.Err()
}

// snapshot is a decoded state.snap.
type snapshot struct {
	seq     uint64
	ords    map[string]uint64
	open    map[string]*window
	pending []*window
}

func readSnapshot(path string) (*snapshot, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &snapshot{ords: map[string]uint64{}, open: map[string]*window{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("detect: snapshot: %w", err)
	}
	s, err := parseSnapshot(b)
	if err != nil {
		return nil, fmt.Errorf("detect: snapshot %s: %w", path, err)
	}
	return s, nil
}

func parseSnapshot(b []byte) (*snapshot, error) {
	s := &snapshot{ords: map[string]uint64{}, open: map[string]*window{}}
	first := true
	for len(b) > 0 {
		p, n, err := frame.Next(b, maxRecord)
		if err == nil && n == 0 {
			err = frame.ErrCorrupt
		}
		if err != nil {
			return nil, err
		}
		b = b[n:]
		d := frame.NewDecoder(p)
		kind := d.Byte()
		switch {
		case first && kind == recSnap:
			s.seq = d.Uvarint()
			for range d.Count() {
				svc := d.String()
				s.ords[svc] = d.Uvarint()
			}
		case !first && kind == recWindow:
			isPending := d.Byte() == 1
			w := &window{}
			w.svc = d.String()
			w.ord = d.Uvarint()
			w.started = time.Unix(0, d.Varint())
			w.lastID = d.String()
			w.ext = readExt(d)
			w.rows = readRows(d)
			if isPending {
				s.pending = append(s.pending, w)
			} else {
				s.open[w.svc] = w
			}
		default:
			d.Fail()
		}
		if err := d.Err(); err != nil {
			return nil, err
		}
		first = false
	}
	return s, nil
}

// readLog returns the intact records of the log and the length they
// span; a torn tail (a record cut by a crash) is left out.
func readLog(f *os.File) ([]record, int64, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return nil, 0, fmt.Errorf("detect: state log: %w", err)
	}
	var out []record
	var off int64
	for len(b) > 0 {
		p, n, err := frame.Next(b, maxRecord)
		if err != nil || n == 0 {
			break // torn tail
		}
		r, err := decodeRecord(p)
		if err != nil {
			break
		}
		out = append(out, r)
		b = b[n:]
		off += int64(n)
	}
	return out, off, nil
}

// recover rebuilds the windows from the state dir and opens its log.
func (s *Server) recover() error {
	j, err := openJournal(s.cfg.StateDir, s.cfg.StateSync, s.cfg.CompactBytes)
	if err != nil {
		return err
	}
	snap, err := readSnapshot(filepath.Join(s.cfg.StateDir, snapFile))
	if err != nil {
		_ = j.close()
		return err
	}
	recs, end, err := readLog(j.f)
	if err != nil {
		_ = j.close()
		return err
	}
	if err := j.f.Truncate(end); err != nil { // a torn tail: never acknowledged
		_ = j.close()
		return fmt.Errorf("detect: state log: %w", err)
	}
	j.size, j.seq = end, snap.seq
	s.windows, s.ords = snap.open, snap.ords
	for _, w := range snap.pending {
		s.pending[windowKey{w.svc, w.ord}] = w
	}
	replayed := 0
	for _, r := range recs {
		j.seq = max(j.seq, r.seq)
		if r.seq <= snap.seq {
			continue // already in the snapshot
		}
		replayed++
		switch r.kind {
		case recRows:
			s.fill(r.svc, r.id, r.ext, r.at, r.rows)
		case recClose:
			if w := s.windows[r.svc]; w != nil && w.ord == r.ord {
				s.closeWindow(w)
			}
		case recTested:
			delete(s.pending, windowKey{r.svc, r.ord})
		}
	}
	s.journal = j
	rows := 0
	for svc, w := range s.windows {
		rows += len(w.rows)
		s.metrics.windowRows.WithLabelValues(svc).Set(float64(len(w.rows)))
	}
	s.recovered = s.pendingList()
	slices.SortFunc(s.recovered, func(a, b *window) int {
		return cmp.Or(strings.Compare(a.svc, b.svc), cmp.Compare(a.ord, b.ord))
	})
	s.cfg.Logger.Info("drift windows recovered", "dir", s.cfg.StateDir, "windows", len(s.windows), "rows", rows,
		"untested_windows", len(s.recovered), "log_records", replayed)
	return nil
}

// testRecovered tests the windows that closed before a restart without a
// recorded verdict.
func (s *Server) testRecovered(ctx context.Context) {
	s.mu.Lock()
	due := s.recovered
	s.recovered = nil
	s.mu.Unlock()
	for _, w := range due {
		s.testWindow(ctx, w)
	}
}
