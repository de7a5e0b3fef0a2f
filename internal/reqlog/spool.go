package reqlog

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferryserve/ferry/internal/frame"
)

// The spool is the logger's write-ahead log: every event is appended to it
// before the client gets its response, and delivery reads it back (tail),
// so the events of every answered request survive a crash of the process.
// It is a directory of segment files (seg-<seq>.wal, framed records, see
// record.go) and a cursor file: the position below which every event was
// acknowledged by the sink. A new process replays from the cursor; whole
// segments below it are deleted. An event can be delivered twice (acked
// after the cursor was last saved), never lost.
type spool struct {
	dir     string
	fsync   FsyncPolicy
	maxSize int64 // bytes on disk, 0 for no cap
	segMax  int64 // rotate after this many bytes
	log     *slog.Logger
	notify  chan struct{} // cap 1: something was committed

	mu       sync.Mutex // guards the fields below
	segs     []segment  // oldest first
	total    int64      // bytes in segs
	reserved int64      // bytes accepted into batches not yet written
	batch    *batch     // collecting appends
	nextSeq  uint64     // of the next segment created
	closed   bool

	writeMu sync.Mutex // one batch written at a time; guards cur
	cur     *os.File   // the open segment, segs[len-1]; nil before the first write
	dirty   bool       // written since the last fsync

	cursorMu sync.Mutex // guards cursor
	cursor   *os.File
}

// FsyncPolicy says when the spool flushes to stable storage. A write(2)
// that returned survives the process being killed; only power loss or a
// kernel crash needs fsync.
type FsyncPolicy string

// The fsync policies.
const (
	FsyncNever    FsyncPolicy = "never"    // rely on the page cache
	FsyncInterval FsyncPolicy = "interval" // every FsyncInterval, and on rotation
	FsyncAlways   FsyncPolicy = "always"   // before the response (one fsync per group commit)
)

// Validate reports an unknown policy.
func (p FsyncPolicy) Validate() error {
	switch p {
	case FsyncNever, FsyncInterval, FsyncAlways:
		return nil
	}
	return fmt.Errorf("logger fsync policy %q: want never, interval or always", string(p))
}

// errSpoolFull: the event would take the spool over its size cap.
var errSpoolFull = errors.New("logger spool full")

var errSpoolClosed = errors.New("logger spool closed")

type segment struct {
	seq  uint64
	size int64
	open bool // being written by this process
}

// position is a place in the spool: a segment and a byte offset in it.
type position struct {
	seg uint64
	off int64
}

func (p position) before(q position) bool {
	return p.seg < q.seg || (p.seg == q.seg && p.off < q.off)
}

// batch is a group commit: appends that arrive while a write is under way
// join the next batch, written with one write(2) (and one fsync).
type batch struct {
	buf    []byte
	leader bool
	done   chan struct{}
	err    error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

type spoolConfig struct {
	dir     string
	fsync   FsyncPolicy
	maxSize int64
	log     *slog.Logger
}

// openSpool opens (or creates) a spool and returns where delivery resumes.
func openSpool(cfg spoolConfig) (*spool, position, error) {
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return nil, position{}, fmt.Errorf("logger spool: %w", err)
	}
	s := &spool{dir: cfg.dir, fsync: cfg.fsync, maxSize: cfg.maxSize, log: cfg.log, segMax: 16 << 20, notify: make(chan struct{}, 1), batch: newBatch()}
	if s.maxSize > 0 {
		// Delete in steps small against the cap.
		s.segMax = min(s.segMax, max(s.maxSize/8, 64<<10))
	}
	names, err := filepath.Glob(filepath.Join(cfg.dir, "seg-*.wal"))
	if err != nil {
		return nil, position{}, fmt.Errorf("logger spool: %w", err)
	}
	for _, name := range names {
		var seq uint64
		if _, err := fmt.Sscanf(filepath.Base(name), "seg-%d.wal", &seq); err != nil {
			continue
		}
		st, err := os.Stat(name)
		if err != nil {
			return nil, position{}, fmt.Errorf("logger spool: %w", err)
		}
		s.segs = append(s.segs, segment{seq: seq, size: st.Size()})
		s.total += st.Size()
	}
	slices.SortFunc(s.segs, func(a, b segment) int { return cmpUint(a.seq, b.seq) })
	if s.cursor, err = os.OpenFile(filepath.Join(cfg.dir, "cursor"), os.O_CREATE|os.O_RDWR, 0o644); err != nil {
		return nil, position{}, fmt.Errorf("logger spool: %w", err)
	}
	from := s.readCursor()
	// Segments wholly below the cursor were delivered.
	if err := s.removeBefore(from.seg); err != nil {
		s.cursor.Close()
		return nil, position{}, err
	}
	s.nextSeq = from.seg + 1
	if len(s.segs) > 0 {
		s.nextSeq = max(s.nextSeq, s.segs[len(s.segs)-1].seq+1)
	}
	if st := s.state(from.seg); !st.exists {
		// Resume at the next segment there is, or the first one written.
		from = position{seg: s.nextSeq}
		if st.hasNext {
			from = position{seg: st.next}
		}
	}
	if err := s.migrateJSONL(); err != nil {
		s.cursor.Close()
		return nil, position{}, err
	}
	return s, from, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *spool) segName(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("seg-%016d.wal", seq))
}

// readCursor returns the saved cursor, or the start of the spool when there
// is none or it is damaged.
func (s *spool) readCursor() position {
	var b [20]byte
	if _, err := s.cursor.ReadAt(b[:], 0); err != nil {
		return position{}
	}
	if frame.Checksum(b[:16]) != binary.LittleEndian.Uint32(b[16:]) {
		return position{}
	}
	return position{seg: binary.LittleEndian.Uint64(b[:]), off: int64(binary.LittleEndian.Uint64(b[8:]))}
}

// saveCursor records that everything before p was delivered. It is one
// 20-byte write at offset 0; a torn one fails its checksum and the next
// process replays from the oldest segment (duplicates, no loss).
func (s *spool) saveCursor(p position) error {
	var b [20]byte
	binary.LittleEndian.PutUint64(b[:], p.seg)
	binary.LittleEndian.PutUint64(b[8:], uint64(p.off))
	binary.LittleEndian.PutUint32(b[16:], frame.Checksum(b[:16]))
	s.cursorMu.Lock()
	defer s.cursorMu.Unlock()
	if s.cursor == nil {
		return errSpoolClosed
	}
	if _, err := s.cursor.WriteAt(b[:], 0); err != nil {
		return fmt.Errorf("logger spool cursor: %w", err)
	}
	return nil
}

// append writes the events before returning: once it returns nil they
// survive the process (and, with FsyncAlways, the machine) going down.
// Concurrent appends share one write.
func (s *spool) append(evs ...*Event) error {
	var rec []byte
	for _, ev := range evs {
		rec = appendRecord(rec, ev)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errSpoolClosed
	}
	if s.maxSize > 0 && s.total+s.reserved+int64(len(rec)) > s.maxSize {
		s.mu.Unlock()
		return errSpoolFull
	}
	s.reserved += int64(len(rec))
	b := s.batch
	b.buf = append(b.buf, rec...)
	lead := !b.leader
	b.leader = true
	s.mu.Unlock()
	if !lead {
		<-b.done
		return b.err
	}
	// Wait for the batch before ours; meanwhile others join ours.
	s.writeMu.Lock()
	s.mu.Lock()
	s.batch = newBatch()
	s.mu.Unlock()
	b.err = s.writeLocked(b.buf)
	s.writeMu.Unlock()
	close(b.done)
	return b.err
}

// writeLocked writes one batch to the open segment, rotating first when it
// is full. The caller holds writeMu.
func (s *spool) writeLocked(buf []byte) error {
	defer func() {
		s.mu.Lock()
		s.reserved -= int64(len(buf))
		s.mu.Unlock()
	}()
	s.mu.Lock()
	full := s.cur != nil && s.segs[len(s.segs)-1].size >= s.segMax
	s.mu.Unlock()
	if s.cur == nil || full {
		if err := s.rotateLocked(); err != nil {
			return err
		}
	}
	n, err := s.cur.Write(buf)
	if err == nil && s.fsync == FsyncAlways {
		err = s.cur.Sync()
	}
	s.dirty = true
	s.mu.Lock()
	s.segs[len(s.segs)-1].size += int64(n)
	s.total += int64(n)
	s.mu.Unlock()
	s.wake()
	if err != nil {
		// A short write leaves a torn record: end the segment there, so
		// that readers skip the tail and the next batch starts a new one.
		_ = s.sealLocked()
		return fmt.Errorf("logger spool: %w", err)
	}
	return nil
}

// rotateLocked seals the open segment and starts the next one.
func (s *spool) rotateLocked() error {
	if err := s.sealLocked(); err != nil {
		return err
	}
	s.mu.Lock()
	seq := s.nextSeq
	s.nextSeq++
	s.mu.Unlock()
	f, err := os.OpenFile(s.segName(seq), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("logger spool: %w", err)
	}
	if s.fsync != FsyncNever {
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return err
		}
	}
	s.cur = f
	s.mu.Lock()
	s.segs = append(s.segs, segment{seq: seq, open: true})
	s.mu.Unlock()
	s.wake()
	return nil
}

// sealLocked closes the open segment (flushing it unless the policy is
// never); readers then treat an incomplete last record in it as torn.
func (s *spool) sealLocked() error {
	if s.cur == nil {
		return nil
	}
	var err error
	if s.fsync != FsyncNever && s.dirty {
		err = s.cur.Sync()
	}
	if cerr := s.cur.Close(); err == nil {
		err = cerr
	}
	s.cur, s.dirty = nil, false
	s.mu.Lock()
	s.segs[len(s.segs)-1].open = false
	s.mu.Unlock()
	s.wake()
	if err != nil {
		return fmt.Errorf("logger spool: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("logger spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("logger spool: %w", err)
	}
	return nil
}

// sync flushes the open segment (FsyncInterval).
func (s *spool) sync() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.cur == nil || !s.dirty {
		return nil
	}
	s.dirty = false
	if err := s.cur.Sync(); err != nil {
		return fmt.Errorf("logger spool: %w", err)
	}
	return nil
}

func (s *spool) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// size is the bytes the spool holds on disk.
func (s *spool) size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// removeBefore deletes the segments older than seq (all delivered).
func (s *spool) removeBefore(seq uint64) error {
	s.mu.Lock()
	var gone []segment
	for len(s.segs) > 0 && s.segs[0].seq < seq && !s.segs[0].open {
		gone = append(gone, s.segs[0])
		s.total -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	s.mu.Unlock()
	for _, g := range gone {
		if err := os.Remove(s.segName(g.seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("logger spool: %w", err)
		}
	}
	return nil
}

// segState describes a segment for the reader: how many bytes it can read,
// whether more may come, and the segment after it.
type segState struct {
	exists  bool
	size    int64
	sealed  bool
	next    uint64
	hasNext bool
}

func (s *spool) state(seq uint64) segState {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st segState
	for i, g := range s.segs {
		if g.seq < seq {
			continue
		}
		if g.seq == seq {
			st.exists, st.size, st.sealed = true, g.size, !g.open
			if i+1 < len(s.segs) {
				st.next, st.hasNext = s.segs[i+1].seq, true
			}
		} else {
			st.next, st.hasNext = g.seq, true
		}
		break
	}
	return st
}

// emitFunc receives each record read (ev, where it starts, where the next
// one starts), or ev == nil when the reader skipped to next (a torn or
// corrupt tail). An error stops the reader.
type emitFunc func(ev *Event, at, next position) error

// tail reads the spool from pos on, in order, and waits at its end for new
// records, until ctx ends or emit fails.
func (s *spool) tail(ctx context.Context, pos position, emit emitFunc) error {
	const chunk = 1 << 20
	var (
		f    *os.File
		fseq uint64
		data []byte // bytes of segment pos.seg from pos.off on, read but not consumed
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	skipTo := func(p position, why string, lost int) error {
		if lost > 0 {
			s.log.Warn("logger spool: skipping a damaged record tail", "segment", pos.seg, "offset", pos.off, "bytes", lost, "why", why)
		}
		pos, data = p, data[:0]
		return emit(nil, p, p)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		st := s.state(pos.seg)
		if !st.exists {
			if !st.hasNext {
				if err := s.wait(ctx); err != nil {
					return err
				}
				continue
			}
			if err := skipTo(position{seg: st.next}, "", 0); err != nil {
				return err
			}
			continue
		}
		readTo := pos.off + int64(len(data))
		if avail := st.size - readTo; avail > 0 {
			need := min(avail, chunk)
			if len(data) >= recordHeader {
				// A record longer than a chunk: read it whole.
				want := int64(recordHeader) + int64(binary.LittleEndian.Uint32(data)) - int64(len(data))
				need = min(avail, max(need, want))
			}
			if f == nil || fseq != pos.seg {
				if f != nil {
					f.Close()
				}
				var err error
				if f, err = os.Open(s.segName(pos.seg)); err != nil {
					return fmt.Errorf("logger spool: %w", err)
				}
				fseq = pos.seg
			}
			data = slices.Grow(data, int(need))
			n, err := f.ReadAt(data[len(data):len(data)+int(need)], readTo)
			data = data[:len(data)+n]
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("logger spool: %w", err)
			}
		}
		progressed := false
		for len(data) > 0 {
			ev, n, err := readRecord(data)
			if err != nil {
				// Bytes we cannot read past: go to the end of what is
				// written (the open segment) or to the next segment.
				next := position{seg: pos.seg, off: st.size}
				if st.sealed && st.hasNext {
					next = position{seg: st.next}
				} else if st.sealed {
					next = position{seg: pos.seg, off: st.size}
				}
				if err := skipTo(next, err.Error(), int(st.size-pos.off)); err != nil {
					return err
				}
				progressed = true
				break
			}
			if n == 0 {
				break
			}
			next := position{seg: pos.seg, off: pos.off + int64(n)}
			if err := emit(ev, pos, next); err != nil {
				return err
			}
			pos, data = next, data[n:]
			progressed = true
		}
		if len(data) == 0 {
			data = nil // let a large buffer go
		}
		if progressed || pos.off+int64(len(data)) < st.size {
			continue
		}
		// Everything readable is consumed.
		if st.sealed && st.hasNext {
			if err := skipTo(position{seg: st.next}, "record cut short", len(data)); err != nil {
				return err
			}
			continue
		}
		if err := s.wait(ctx); err != nil {
			return err
		}
	}
}

func (s *spool) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.notify:
		return nil
	}
}

// close flushes and closes the spool; later appends fail.
func (s *spool) close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.writeMu.Lock()
	err := s.sealLocked()
	s.writeMu.Unlock()
	s.cursorMu.Lock()
	if s.cursor != nil {
		if cerr := s.cursor.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("logger spool: %w", cerr)
		}
		s.cursor = nil
	}
	s.cursorMu.Unlock()
	return err
}

// migrateJSONL moves events a spool of an earlier Ferry left as JSON lines
// (seg-*.jsonl) into framed segments.
func (s *spool) migrateJSONL() error {
	names, err := filepath.Glob(filepath.Join(s.dir, "seg-*.jsonl"))
	if err != nil {
		return fmt.Errorf("logger spool: %w", err)
	}
	slices.Sort(names)
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("logger spool: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), maxRecord)
		for sc.Scan() {
			var ev Event
			if strings.TrimSpace(sc.Text()) == "" || json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue // a torn last line
			}
			if err := s.append(&ev); err != nil {
				f.Close()
				return err
			}
		}
		f.Close()
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("logger spool: %w", err)
		}
	}
	return nil
}

// syncEvery flushes the spool every d until ctx ends (FsyncInterval).
func (s *spool) syncEvery(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.sync(); err != nil {
				s.log.Error("logger spool fsync", "err", err)
			}
		}
	}
}
