package quality

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryserve/ferry/internal/frame"
)

// Config configures a Monitor.
type Config struct {
	// Dir holds the journal (required).
	Dir string
	// Horizon is how long a prediction waits for its feedback (default
	// 24h). Feedback later than that is counted as expired; ids are
	// remembered for a second horizon, after which feedback for them is
	// counted as unknown.
	Horizon time.Duration
	// Window is how many labelled rows the metrics of each model revision
	// cover (default 1000).
	Window int
	// MaxPredictions bounds the predictions remembered (default 1<<20);
	// predictions beyond it are not recorded and are counted.
	MaxPredictions int
	// MaintainEvery is the period of expiry and compaction (default 1m).
	MaintainEvery time.Duration
	// CompactMinBytes: the journal is rewritten when it is larger than
	// this and twice its size after the last rewrite (default 64 MiB).
	CompactMinBytes int64
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger

	// writeCalls journals with write calls only, never through a
	// mapping (tests).
	writeCalls bool
	// copyAlone copies each prediction into the mapping as it comes,
	// instead of in group-commit batches (benchmarks).
	copyAlone bool
	// mapChunk is how much of the file is allocated and mapped at a
	// time (default DefaultMapChunk; tests make it small).
	mapChunk int64
	// allocate, if set, replaces allocate (tests make it fail).
	allocate func(f *os.File, off, n int64) error
}

// Defaults.
const (
	DefaultHorizon         = 24 * time.Hour
	DefaultWindow          = 1000
	DefaultMaxPredictions  = 1 << 20
	DefaultCompactMinBytes = 64 << 20
	// DefaultMapChunk is how much of the journal is allocated and mapped
	// at a time (Monitor.win).
	DefaultMapChunk = 8 << 20
)

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errors.New("quality: a journal directory is required")
	}
	if c.Horizon < 0 || c.Window < 0 || c.MaxPredictions < 0 || c.MaintainEvery < 0 || c.CompactMinBytes < 0 {
		return errors.New("quality: horizon, window, max predictions and periods must not be negative")
	}
	if c.Horizon == 0 {
		c.Horizon = DefaultHorizon
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.MaxPredictions == 0 {
		c.MaxPredictions = DefaultMaxPredictions
	}
	if c.MaintainEvery == 0 {
		c.MaintainEvery = time.Minute
	}
	if c.CompactMinBytes == 0 {
		c.CompactMinBytes = DefaultCompactMinBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.mapChunk <= 0 {
		c.mapChunk = DefaultMapChunk
	}
	if page := int64(os.Getpagesize()); c.mapChunk%page != 0 {
		c.mapChunk += page - c.mapChunk%page
	}
	if c.allocate == nil {
		c.allocate = allocate
	}
	return nil
}

// Outcome is what became of one feedback record.
type Outcome string

// Outcomes of feedback.
const (
	Joined    Outcome = "joined"
	Duplicate Outcome = "duplicate"
	Expired   Outcome = "expired"
	Unknown   Outcome = "unknown"
	Invalid   Outcome = "invalid"
)

// Feedback is the truth for one earlier prediction: one value per row it
// answered.
type Feedback struct {
	ID    string
	Truth []Truth
	// TruthJSON is the truth as the feedback body sent it (set by
	// DecodeFeedback; carried into feedback events).
	TruthJSON json.RawMessage
}

// Counts are feedback and recording counters.
type Counts struct {
	Received  int64 `json:"received"`
	Joined    int64 `json:"joined"`
	Duplicate int64 `json:"duplicate"`
	Expired   int64 `json:"expired"`
	Unknown   int64 `json:"unknown"`
	Invalid   int64 `json:"invalid"`
	// Recorded counts predictions journaled; NotRecorded, those refused
	// (journal full, write error, outputs not understood).
	Recorded    int64 `json:"predictions_recorded,omitempty"`
	NotRecorded int64 `json:"predictions_not_recorded,omitempty"`
}

func (c *Counts) add(o Outcome) {
	c.Received++
	switch o {
	case Joined:
		c.Joined++
	case Duplicate:
		c.Duplicate++
	case Expired:
		c.Expired++
	case Unknown:
		c.Unknown++
	case Invalid:
		c.Invalid++
	}
}

// entry is the index's record of one prediction: 16 bytes, plus the map's
// own overhead, per outstanding prediction; the outputs stay on disk.
type entry struct {
	at  int64 // prediction time, unix nanoseconds
	off int64 // journal offset of its latest record; joinedBit when joined
}

const joinedBit = int64(1) << 62

func (e entry) joined() bool  { return e.off&joinedBit != 0 }
func (e entry) offset() int64 { return e.off &^ joinedBit }

// Monitor journals predictions, joins feedback to them and keeps the
// windows. Its methods are safe for concurrent use; Run expires old
// predictions and compacts the journal.
type Monitor struct {
	cfg  Config
	seed maphash.Seed

	lock *os.File // dir/LOCK, held while open

	mu          sync.Mutex
	f           *os.File
	seq         uint64
	size        int64
	compactedAt int64 // journal size after the last rewrite
	index       map[uint64]entry
	windows     map[string]*window
	models      map[string]*Counts // models with recorded predictions
	total       Counts
	closed      bool

	// The mapping. While win is set, a group commit's batch (below) is
	// appended by copying it into win under mu instead of a write call:
	// win maps the file's bytes [winOff, winOff+len(win)), allocated
	// before they were mapped (so a store never faults on a full disk),
	// and everything from size to its end is zeros, where replay stops. A
	// copy into the page cache survives kill -9 as a write call does.
	// The batches stay: copying each prediction as it came (copyAlone)
	// took more of the process's CPU per request, not less (about 5
	// points more in BenchmarkPredictCPU, docs/quality.md), presumably
	// because the yield that fills a batch also makes its responses
	// leave together. When allocating or mapping fails (a full disk, a
	// filesystem allocatingFS does not list, not Linux), the file is cut
	// back to size and batches are written with write calls until the
	// next compaction tries again.
	win    []byte
	winOff int64
	// Pages ahead of size are faulted in outside mu (populateAhead), so
	// that a copy under mu rarely takes a page fault, which would keep
	// every other recorder waiting for the lock: up to populated they
	// are, or are being, faulted in. mapGen counts mappings; popMu is
	// held while faulting in and while a mapping is taken down, so a
	// range is faulted in only while its mapping, of generation mapGen,
	// is there.
	populated  int64
	popMu      sync.Mutex
	mapGen     uint64 // changed under mu and popMu, read under either
	noPopulate bool   // under popMu: the kernel cannot (before 5.14)

	// Group commit. Record appends its frame to pending and waits until
	// its batch is written: the recorder whose frame starts a batch leads
	// it, and once no write is in flight (and after one yield, so that
	// the goroutines runnable then can join) writes every pending frame
	// with one copy into the mapping, or one write call with mu
	// released, then applies them to the index; frames that arrive
	// meanwhile form the next batch; the others of a batch wait on cond.
	// Index entries are made only for written frames, so the index never
	// points at bytes not on disk, and a failed write leaves none. Whatever uses the file directly (Join,
	// compaction, Close) first waits for the write in flight and writes
	// the pending batch itself (settleLocked).
	cond            sync.Cond // on mu: a batch was written
	pending, spare  []byte
	recs, spareRecs []pendingRec
	cur             *batch // the batch pending collects; nil when empty
	writing         bool   // a leader is writing, mu released
	writes          int64  // write calls (group commits and direct appends)
	copies          int64  // group commits copied into the mapping
	inflight        int    // predictions in the batch being written
	waitingForFile  int    // settleLocked callers waiting: no new leader starts

	bufs sync.Pool
	// notRecorded counts refusals outside the lock (outputs not parsed).
	notRecorded atomic.Int64
}

// Open opens (or creates) the journal in cfg.Dir and rebuilds the index
// and windows from it, skipping a torn tail.
func Open(cfg Config) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("quality journal: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	m := &Monitor{cfg: cfg, lock: lock, seed: maphash.MakeSeed(), index: map[uint64]entry{}, windows: map[string]*window{}, models: map[string]*Counts{}}
	m.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	m.cond.L = &m.mu
	if err := m.open(); err != nil {
		lock.Close()
		return nil, err
	}
	return m, nil
}

// ErrLocked is returned by Open when another process has the directory.
var ErrLocked = errors.New("quality journal in use by another process")

// MaxSlots bounds OpenSlot's search.
const MaxSlots = 256

// OpenSlot opens the journal in the first free cfg.Dir/replica-N (N from
// 0): the replicas of one revision share cfg.Dir and each takes its own
// slot. A restarted replica takes the lowest free slot, which is the one
// it left when it is the only replica restarting, so its predictions
// still join.
func OpenSlot(cfg Config) (*Monitor, error) {
	base := cfg.Dir
	for i := range MaxSlots {
		cfg.Dir = filepath.Join(base, "replica-"+strconv.Itoa(i))
		m, err := Open(cfg)
		if errors.Is(err, ErrLocked) {
			continue
		}
		return m, err
	}
	return nil, fmt.Errorf("quality journal: all %d slots under %s are in use", MaxSlots, base)
}

// Dir is the directory of the journal (the slot OpenSlot took).
func (m *Monitor) Dir() string { return m.cfg.Dir }

func (m *Monitor) journalPath(seq uint64) string {
	return filepath.Join(m.cfg.Dir, fmt.Sprintf("journal.%d.log", seq))
}

// open picks the newest journal (a rewrite is renamed into place whole, so
// an older one beside it is obsolete), removes leftovers and replays it.
func (m *Monitor) open() error {
	ents, err := os.ReadDir(m.cfg.Dir)
	if err != nil {
		return fmt.Errorf("quality journal: %w", err)
	}
	var seqs []uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(filepath.Join(m.cfg.Dir, name))
			continue
		}
		if s, ok := strings.CutPrefix(name, "journal."); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(s, ".log"), 10, 64); err == nil {
				seqs = append(seqs, n)
			}
		}
	}
	slices.Sort(seqs)
	if len(seqs) > 0 {
		m.seq = seqs[len(seqs)-1]
		for _, s := range seqs[:len(seqs)-1] {
			_ = os.Remove(m.journalPath(s))
		}
	}
	f, err := os.OpenFile(m.journalPath(m.seq), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("quality journal: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("quality journal: %w", err)
	}
	good := m.replay(f, st.Size())
	if st.Size() > good {
		// Zeros where the next header would be: the rest of the space
		// allocated for the mapping of a process that ended without
		// Close; anything else is a record cut short.
		var hdr [frame.HeaderSize]byte
		if n, _ := f.ReadAt(hdr[:], good); n < len(hdr) || hdr != [frame.HeaderSize]byte{} {
			m.cfg.Logger.Warn("quality journal: skipping a torn tail", "path", f.Name(), "bytes", st.Size()-good)
		}
		if err := f.Truncate(good); err != nil {
			f.Close()
			return fmt.Errorf("quality journal: truncate torn tail: %w", err)
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("quality journal: %w", err)
	}
	m.f, m.size, m.compactedAt = f, good, good
	m.mapLocked()
	return nil
}

// mapLocked starts appending through a mapping of the file from size on
// (Monitor.win); if that fails, frames go on being written with write
// calls.
func (m *Monitor) mapLocked() {
	if m.cfg.writeCalls {
		return
	}
	if err := m.remapLocked(m.size); err != nil {
		m.unmapLocked(err)
	}
}

// remapLocked maps the file from the page that holds size to at least end
// (and at least mapChunk), allocating its blocks first, in place of the
// mapping before.
func (m *Monitor) remapLocked(end int64) error {
	off := m.size &^ int64(os.Getpagesize()-1)
	n := max(m.cfg.mapChunk, end-off)
	if r := n % m.cfg.mapChunk; r != 0 {
		n += m.cfg.mapChunk - r
	}
	if err := m.cfg.allocate(m.f, off, n); err != nil {
		return err
	}
	b, err := mapShared(m.f, off, n)
	if err != nil {
		return err
	}
	m.takeDownLocked()
	m.win, m.winOff, m.populated = b, off, m.size
	return nil
}

// takeDownLocked unmaps the mapping, once no range of it is being
// faulted in.
func (m *Monitor) takeDownLocked() {
	if m.win == nil {
		return
	}
	m.popMu.Lock()
	_ = unmap(m.win)
	m.mapGen++
	m.popMu.Unlock()
	m.win = nil
}

// populateStep is how far ahead of the journal's end pages are faulted in,
// and how much at a time.
const populateStep = 64 << 10

// aheadLocked claims the next range of the mapping to fault in, if the
// faulted-in pages reach less than populateStep past size; the caller
// passes it to populateAhead once mu is released.
func (m *Monitor) aheadLocked() (b []byte, gen uint64) {
	if m.win == nil || m.populated-m.size >= populateStep {
		return nil, 0
	}
	start := m.populated &^ int64(os.Getpagesize()-1)
	end := min(m.populated+populateStep, m.winOff+int64(len(m.win)))
	if end <= start {
		return nil, 0
	}
	m.populated = end
	return m.win[start-m.winOff : end-m.winOff], m.mapGen
}

// populateAhead faults b in (aheadLocked), outside mu.
func (m *Monitor) populateAhead(b []byte, gen uint64) {
	if b == nil {
		return
	}
	m.popMu.Lock()
	defer m.popMu.Unlock()
	if m.noPopulate || m.mapGen != gen {
		return
	}
	if err := populate(b); err != nil {
		// Not supported (EINVAL before Linux 5.14): copies fault pages
		// in themselves.
		m.noPopulate = true
		m.cfg.Logger.Debug("quality journal: pages not faulted in ahead", "err", err)
	}
}

// unmapLocked stops appending through the mapping: the allocated tail is
// cut off and the file's offset set to size, where write calls append.
// why, if not nil, is logged: why frames are written with write calls.
func (m *Monitor) unmapLocked(why error) {
	if why != nil {
		m.cfg.Logger.Warn("quality journal: not mapped; appending with write calls", "path", m.f.Name(), "err", why)
	}
	m.takeDownLocked()
	// If the file cannot be cut, the zeros after size stay: writes land
	// on them from size on, and replay stops at the first zero header.
	_ = m.f.Truncate(m.size)
	_, _ = m.f.Seek(m.size, io.SeekStart)
}

// replay applies every intact record of the size bytes of f and returns
// the offset after the last: it stops at the first header that is zeros
// (the unused end of a mapping), or whose record is cut short, fails its
// checksum or does not decode.
func (m *Monitor) replay(f *os.File, size int64) int64 {
	r := bufio.NewReaderSize(f, 1<<20)
	var (
		off  int64
		hdr  [frame.HeaderSize]byte
		body []byte
	)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return off // end, or a torn header
		}
		n, err := frame.PayloadLen(hdr[:], maxFrame) // a zero header fails
		if err != nil || int64(n) > size-off-frame.HeaderSize {
			return off // not a length, or past the end: not read
		}
		body = slices.Grow(body[:0], n)[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return off
		}
		if frame.Check(hdr[:], body) != nil {
			return off
		}
		typ, j, err := decodeRecord(body)
		if err != nil {
			return off
		}
		m.apply(typ, j, off)
		off += int64(frame.HeaderSize + n)
	}
}

// apply puts a record read back into the index (and windows).
func (m *Monitor) apply(typ byte, j *joined, off int64) {
	k := m.key(j.Model, j.ID)
	m.modelCounts(j.Model)
	if typ != recJoined { // recPrediction or recRaw: rows are read on join
		m.index[k] = entry{at: j.Time, off: off}
		return
	}
	m.index[k] = entry{at: j.Time, off: off | joinedBit}
	samples, _ := join(j.Rows, j.Truth)
	w := m.window(j.Model, j.Revision)
	for _, s := range samples {
		s.rec = off
		w.push(s)
	}
}

func (m *Monitor) key(model, id string) uint64 {
	var h maphash.Hash
	h.SetSeed(m.seed)
	h.WriteString(model)
	h.WriteByte(0)
	h.WriteString(id)
	return h.Sum64()
}

func (m *Monitor) window(model, revision string) *window {
	k := model + "\x00" + revision
	w := m.windows[k]
	if w == nil {
		w = newWindow(model, revision, m.cfg.Window)
		m.windows[k] = w
	}
	return w
}

func (m *Monitor) modelCounts(model string) *Counts {
	c := m.models[model]
	if c == nil {
		c = &Counts{}
		m.models[model] = c
	}
	return c
}

// ErrFull is returned by Record when MaxPredictions are remembered.
var ErrFull = errors.New("quality journal full")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("quality journal closed")

// Record journals a prediction; once it returns, the prediction survives
// a crash of the process. A prediction with an id already remembered for
// the model replaces it. Records running at the same time share one copy
// into the mapping (Monitor.win) or, where the journal is not mapped, one
// write call (Monitor.pending).
func (m *Monitor) Record(p *Prediction) error {
	bp := m.bufs.Get().(*[]byte)
	*bp = frame.Append((*bp)[:0], func(b []byte) []byte { return appendPrediction(b, p) })
	k := m.key(p.Model, p.ID)

	m.mu.Lock()
	c := m.modelCounts(p.Model)
	var err error
	if m.closed {
		err = ErrClosed
	} else if len(m.index)+len(m.recs)+m.inflight >= m.cfg.MaxPredictions {
		if _, ok := m.index[k]; !ok { // a replacement still fits
			err = ErrFull
		}
	}
	if err == nil && m.win != nil && m.cfg.copyAlone {
		// Mapped: the copy is the write; no batch to wait for.
		var off int64
		if off, err = m.appendLocked(*bp); err == nil {
			m.index[k] = entry{at: p.Time, off: off}
			c.Recorded++
			m.total.Recorded++
			ahead, gen := m.aheadLocked()
			m.mu.Unlock()
			m.bufs.Put(bp)
			m.populateAhead(ahead, gen)
			return nil
		}
	}
	if err != nil {
		c.NotRecorded++
		m.total.NotRecorded++
		m.mu.Unlock()
		m.bufs.Put(bp)
		return err
	}
	err = m.commitLocked(*bp, k, p.Time, c)
	ahead, gen := m.aheadLocked()
	m.mu.Unlock()
	m.bufs.Put(bp)
	m.populateAhead(ahead, gen)
	return err
}

// commitLocked appends frame to the pending batch and returns once the
// batch is written (group commit, Monitor.pending).
func (m *Monitor) commitLocked(frame []byte, k uint64, at int64, c *Counts) error {
	b, lead := m.cur, false
	if b == nil {
		// The first frame of a batch: its recorder leads it.
		b, lead = &batch{}, true
		m.cur = b
	}
	m.recs = append(m.recs, pendingRec{key: k, at: at, rel: int64(len(m.pending)), counts: c})
	m.pending = append(m.pending, frame...)
	yielded := false
	for !b.done {
		switch {
		case !lead || m.writing || m.waitingForFile > 0:
			// The others of a batch wait for its leader (or for Join,
			// compaction or Close, which write what is pending) rather
			// than yield too: a yield is one more trip through the
			// scheduler, and the leader's yield lets them run anyway.
			m.cond.Wait()
		case !yielded:
			// Let the goroutines that are runnable now reach Record and
			// join this batch before it is written. Unconditional: yielding
			// only when other predictions were in flight, or after a batch
			// with company, gave 1.4-1.6 predictions per write instead of
			// 3.5-4.2 (BenchmarkPredictRPS). On an idle server the yield
			// costs a few microseconds of CPU (it may wake an idle P).
			yielded = true
			m.mu.Unlock()
			runtime.Gosched()
			m.mu.Lock()
		default:
			m.writeBatchLocked(true)
		}
	}
	return b.err
}

// batch is one group commit's outcome, shared by its recorders.
type batch struct {
	done bool
	err  error
}

// pendingRec is a prediction frame in pending, to enter the index once
// written.
type pendingRec struct {
	key    uint64
	at     int64
	rel    int64 // offset in pending
	counts *Counts
}

// maxSpare bounds the pending buffer kept for reuse.
const maxSpare = 1 << 20

// writeBatchLocked writes the pending frames with one copy into the
// mapping or one write call, and enters them in the index. With unlock, mu
// is released during a write call (a recorder leading a group commit);
// without, the caller keeps the file to itself. A failed write is cut back off, so the journal stays a
// sequence of whole records, and every recorder of the batch gets the
// error.
func (m *Monitor) writeBatchLocked(unlock bool) {
	b := m.cur
	if b == nil {
		return
	}
	buf, recs := m.pending, m.recs
	m.pending, m.recs, m.cur = m.spare[:0], m.spareRecs[:0], nil
	base := m.size
	var err error
	if m.win != nil {
		// Mapped: one copy, under mu (appendLocked advances size, or
		// cuts a failed write back off where the mapping is lost).
		if _, err = m.appendLocked(buf); err == nil {
			m.size = base // advanced below, as after a write call
			m.copies++
		}
	} else {
		m.writing, m.inflight = true, len(recs)
		if unlock {
			m.mu.Unlock()
		}
		_, err = m.f.Write(buf)
		if unlock {
			m.mu.Lock()
		}
		m.writing, m.inflight = false, 0
		m.writes++
		if err != nil {
			if terr := m.f.Truncate(base); terr == nil {
				_, _ = m.f.Seek(base, io.SeekStart)
			}
			err = fmt.Errorf("quality journal write: %w", err)
		}
	}
	if err != nil {
		for _, r := range recs {
			r.counts.NotRecorded++
			m.total.NotRecorded++
		}
	} else {
		m.size += int64(len(buf))
		for _, r := range recs {
			m.index[r.key] = entry{at: r.at, off: base + r.rel}
			r.counts.Recorded++
			m.total.Recorded++
		}
	}
	b.done, b.err = true, err
	if cap(buf) <= maxSpare {
		m.spare = buf[:0]
	}
	m.spareRecs = recs[:0]
	m.cond.Broadcast()
}

// settleLocked waits for a group commit in flight and writes the pending
// batch, so that the caller, holding mu, has the file to itself: what it
// reads is in the index, and what it appends lands at m.size.
func (m *Monitor) settleLocked() {
	m.waitingForFile++
	for m.writing {
		m.cond.Wait()
	}
	m.waitingForFile--
	m.writeBatchLocked(false)
}

// appendLocked appends one frame, by copying it into the mapping or with
// one write call, and returns its offset. A failed write is cut back off,
// so the journal stays a sequence of whole records. Without the mapping,
// the caller has settled the group commit (settleLocked).
func (m *Monitor) appendLocked(frame []byte) (int64, error) {
	if m.closed {
		return 0, ErrClosed
	}
	off := m.size
	if m.win != nil {
		end := off + int64(len(frame))
		if end > m.winOff+int64(len(m.win)) {
			if err := m.remapLocked(end); err != nil {
				m.unmapLocked(err)
			}
		}
		if m.win != nil {
			copy(m.win[off-m.winOff:], frame)
			m.size = end
			return off, nil
		}
	}
	m.writes++
	if _, err := m.f.Write(frame); err != nil {
		if terr := m.f.Truncate(off); terr == nil {
			_, _ = m.f.Seek(off, io.SeekStart)
		}
		return 0, fmt.Errorf("quality journal write: %w", err)
	}
	m.size += int64(len(frame))
	return off, nil
}

// NotRecorded counts a prediction whose outputs could not be read.
func (m *Monitor) NotRecorded() { m.notRecorded.Add(1) }

// Result is the outcome of one feedback record.
type Result struct {
	ID      string  `json:"id"`
	Outcome Outcome `json:"outcome"`
	// Revision is the prediction's revision, where it was read (joined,
	// or invalid truth).
	Revision string `json:"revision,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Join joins feedback for model's predictions and returns one result per
// record, in order, counting each outcome. Each joined record is
// journaled before Join returns.
func (m *Monitor) Join(model string, fb []Feedback) []Result {
	return m.join(model, fb, true)
}

// JoinUncounted is Join without counting the outcomes: for feedback that
// another replica forwarded (it counts them), or whose outcomes are
// counted once merged with the peers' answers (CountFeedback).
func (m *Monitor) JoinUncounted(model string, fb []Feedback) []Result {
	return m.join(model, fb, false)
}

func (m *Monitor) join(model string, fb []Feedback, count bool) []Result {
	out := make([]Result, len(fb))
	now := m.cfg.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settleLocked() // feedback may overtake the response it labels
	for i, f := range fb {
		out[i] = m.joinLocked(model, f, now)
	}
	if count {
		m.countLocked(model, out)
	}
	return out
}

// CountFeedback counts the outcomes of feedback for model that was joined
// uncounted (JoinUncounted).
func (m *Monitor) CountFeedback(model string, res []Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.countLocked(model, res)
}

func (m *Monitor) countLocked(model string, res []Result) {
	c := m.models[model] // nil for a model with no predictions here
	if c == nil && slices.ContainsFunc(res, func(r Result) bool { return r.Outcome != Unknown }) {
		// A peer journaled a prediction of this model: it is served, and
		// its merged outcomes are counted under its name. (Unknown ids of
		// any name would make a series each.)
		c = m.modelCounts(model)
	}
	for _, r := range res {
		m.total.add(r.Outcome)
		if c != nil {
			c.add(r.Outcome)
		}
	}
}

func (m *Monitor) joinLocked(model string, f Feedback, now int64) Result {
	res := Result{ID: f.ID, Outcome: Unknown}
	k := m.key(model, f.ID)
	e, ok := m.index[k]
	switch {
	case !ok:
		return res
	case e.joined():
		res.Outcome = Duplicate
		return res
	case now-e.at > int64(m.cfg.Horizon):
		res.Outcome = Expired
		return res
	}
	p, err := m.readLocked(e.offset())
	if err != nil || p.Model != model || p.ID != f.ID {
		// Another id with the same 64-bit hash, or a damaged record.
		return res
	}
	if o := p.Output; o != nil {
		// Journaled as the response (RawOutput): read its rows now. Rows
		// the predict path could not have read leave the id unknown, as
		// they did when such a prediction was not journaled at all.
		rows, err := o.rows()
		if err != nil {
			res.Error = "the prediction's outputs are not understood: " + err.Error()
			return res
		}
		p.Rows, p.Output = rows, nil
	}
	res.Revision = p.Revision
	samples, err := join(p.Rows, f.Truth)
	if err != nil {
		res.Outcome, res.Error = Invalid, err.Error()
		return res
	}
	bp := m.bufs.Get().(*[]byte)
	defer m.bufs.Put(bp)
	j := &joined{Prediction: p.Prediction, Truth: f.Truth}
	*bp = frame.Append((*bp)[:0], func(b []byte) []byte { return appendJoined(b, j) })
	off, err := m.appendLocked(*bp)
	if err != nil {
		res.Outcome, res.Error = Invalid, err.Error()
		return res
	}
	m.index[k] = entry{at: e.at, off: off | joinedBit}
	w := m.window(p.Model, p.Revision)
	for _, s := range samples {
		s.rec = off
		w.push(s)
	}
	res.Outcome = Joined
	return res
}

// readLocked reads the record at off.
func (m *Monitor) readLocked(off int64) (*joined, error) {
	var hdr [frame.HeaderSize]byte
	if _, err := m.f.ReadAt(hdr[:], off); err != nil {
		return nil, err
	}
	n, err := frame.PayloadLen(hdr[:], maxFrame)
	if err != nil {
		return nil, err
	}
	body := make([]byte, n)
	if _, err := m.f.ReadAt(body, off+frame.HeaderSize); err != nil {
		return nil, err
	}
	if err := frame.Check(hdr[:], body); err != nil {
		return nil, err
	}
	_, j, err := decodeRecord(body)
	return j, err
}

// join pairs a prediction's rows with their truths.
func join(rows []Row, truth []Truth) ([]sample, error) {
	if len(truth) != len(rows) {
		return nil, fmt.Errorf("truth has %d values; the prediction answered %d rows", len(truth), len(rows))
	}
	out := make([]sample, len(rows))
	for i, r := range rows {
		t := truth[i]
		s := sample{kind: r.Kind, truth: t}
		switch r.Kind {
		case KindLabel:
			s.pred = r.Label
		case KindValue:
			if !t.Numeric {
				return nil, fmt.Errorf("truth[%d] %q: the model predicts numbers; want a number", i, t.Label)
			}
			s.value = r.Value
		case KindProbs:
			c, err := strconv.Atoi(t.Label)
			if err != nil || c < 0 || c >= len(r.Probs) {
				return nil, fmt.Errorf("truth[%d] %q: the model answers %d class probabilities; want a class index 0..%d", i, t.Label, len(r.Probs), len(r.Probs)-1)
			}
			s.pred, s.probs = strconv.Itoa(argmax(r.Probs)), r.Probs
		}
		out[i] = s
	}
	return out, nil
}

// Snapshots computes the metrics of every window of model ("" for all),
// sorted by model and revision.
func (m *Monitor) Snapshots(model string) []Snapshot {
	m.mu.Lock()
	var ws []*window
	for _, w := range m.windows {
		if model == "" || w.model == model {
			ws = append(ws, w.clone())
		}
	}
	m.mu.Unlock()
	out := make([]Snapshot, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.snapshot())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Model != out[j].Model {
			return out[i].Model < out[j].Model
		}
		return out[i].Revision < out[j].Revision
	})
	return out
}

// Counts returns the counters of model ("" for all models), and whether
// the model has recorded predictions.
func (m *Monitor) Counts(model string) (Counts, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if model == "" {
		c := m.total
		c.NotRecorded += m.notRecorded.Load()
		return c, true
	}
	c, ok := m.models[model]
	if !ok {
		return Counts{}, false
	}
	return *c, true
}

// Outstanding is the number of predictions remembered and the journal's
// size in bytes.
func (m *Monitor) Outstanding() (int, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.index), m.size
}

// Run expires and compacts every MaintainEvery until ctx ends, then closes
// the journal.
func (m *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.MaintainEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return m.Close()
		case <-t.C:
			if err := m.Maintain(); err != nil {
				m.cfg.Logger.Error("quality journal maintenance failed", "err", err)
			}
		}
	}
}

// Maintain forgets predictions older than two horizons and rewrites the
// journal once it has grown to twice its last rewritten size.
func (m *Monitor) Maintain() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.settleLocked()
	cut := m.cfg.Now().UnixNano() - 2*int64(m.cfg.Horizon)
	for k, e := range m.index {
		if e.at < cut {
			delete(m.index, k)
		}
	}
	if m.size < m.cfg.CompactMinBytes || m.size < 2*m.compactedAt {
		return nil
	}
	return m.compactLocked()
}

// Compact rewrites the journal now, keeping only what is still needed.
func (m *Monitor) Compact() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.settleLocked()
	return m.compactLocked()
}

// compactLocked copies the records still referenced (by the index or by a
// window), in their original order so that replay rebuilds the windows
// alike, into a new journal that is renamed into place whole.
func (m *Monitor) compactLocked() error {
	start := time.Now()
	live := make([]int64, 0, len(m.index))
	for _, e := range m.index {
		live = append(live, e.offset())
	}
	for _, w := range m.windows {
		live = w.refs(live)
	}
	slices.Sort(live)
	live = slices.Compact(live)

	next := m.seq + 1
	tmp := m.journalPath(next) + ".tmp"
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("quality journal compaction: %w", err)
	}
	fail := func(err error) error {
		nf.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("quality journal compaction: %w", err)
	}
	bw := bufio.NewWriterSize(nf, 1<<20)
	moved := make([]int64, len(live))
	var (
		pos int64
		hdr [frame.HeaderSize]byte
		buf []byte
	)
	for i, off := range live {
		if _, err := m.f.ReadAt(hdr[:], off); err != nil {
			return fail(err)
		}
		n, err := frame.PayloadLen(hdr[:], maxFrame)
		if err != nil {
			return fail(err)
		}
		buf = slices.Grow(buf[:0], frame.HeaderSize+n)[:frame.HeaderSize+n]
		if _, err := m.f.ReadAt(buf, off); err != nil {
			return fail(err)
		}
		if _, err := bw.Write(buf); err != nil {
			return fail(err)
		}
		moved[i] = pos
		pos += int64(len(buf))
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := nf.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, m.journalPath(next)); err != nil {
		return fail(err)
	}
	syncDir(m.cfg.Dir)
	remap := func(off int64) int64 {
		i, _ := slices.BinarySearch(live, off)
		return moved[i]
	}
	for k, e := range m.index {
		e.off = remap(e.offset()) | e.off&joinedBit
		m.index[k] = e
	}
	for _, w := range m.windows {
		for i := range w.ring {
			if w.ring[i].kind != 0 {
				w.ring[i].rec = remap(w.ring[i].rec)
			}
		}
	}
	m.takeDownLocked()
	old := m.f
	m.f, m.seq, m.size, m.compactedAt = nf, next, pos, pos
	old.Close()
	_ = os.Remove(m.journalPath(next - 1))
	m.mapLocked() // again: the disk may have room now
	m.cfg.Logger.Info("quality journal compacted", "records", len(live), "bytes", pos, "took", time.Since(start))
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Close closes the journal; Record and Join fail after it.
func (m *Monitor) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.settleLocked()
	m.closed = true
	if m.win != nil {
		m.unmapLocked(nil) // leaves no zeros behind
	}
	err := m.f.Close()
	m.lock.Close() // after the journal: the next owner sees every record
	return err
}

// clone copies a window's samples so metrics are computed outside the lock
// (probability slices are never modified, so they are shared).
func (w *window) clone() *window {
	c := *w
	c.ring = slices.Clone(w.ring)
	return &c
}
