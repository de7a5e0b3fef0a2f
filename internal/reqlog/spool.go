package reqlog

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// spool is an on-disk queue of events: append-only segment files of JSON
// lines. Replay sends the oldest segments first; a segment is removed once
// every event in it was delivered, and rewritten with what is left when
// delivery stops part-way. An event can be delivered twice (if the process
// dies between a send and the rewrite), never lost.
type spool struct {
	dir     string
	mu      sync.Mutex // guards cur, seq
	cur     *os.File
	curSize int64
	seq     int
	pending atomic.Int64
	replay  sync.Mutex // one replay at a time
}

const maxSegment = 16 << 20

func openSpool(dir string) (*spool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("logger spool: %w", err)
	}
	s := &spool{dir: dir}
	segs, err := s.segments()
	if err != nil {
		return nil, err
	}
	for _, p := range segs {
		n, err := countLines(p)
		if err != nil {
			return nil, err
		}
		s.pending.Add(int64(n))
		var seq int
		if _, err := fmt.Sscanf(filepath.Base(p), "seg-%d.jsonl", &seq); err == nil && seq >= s.seq {
			s.seq = seq + 1
		}
	}
	return s, nil
}

func countLines(p string) (int, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<30)
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}

func (s *spool) segments() ([]string, error) {
	m, err := filepath.Glob(filepath.Join(s.dir, "seg-*.jsonl"))
	if err != nil {
		return nil, err
	}
	slices.Sort(m)
	return m, nil
}

func (s *spool) append(ev *Event) error {
	line, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.curSize > maxSegment {
		if err := s.rotateLocked(); err != nil {
			return err
		}
		name := filepath.Join(s.dir, fmt.Sprintf("seg-%012d.jsonl", s.seq))
		s.seq++
		if s.cur, err = os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err != nil {
			return fmt.Errorf("logger spool: %w", err)
		}
		s.curSize = 0
	}
	if _, err := s.cur.Write(line); err != nil {
		return fmt.Errorf("logger spool: %w", err)
	}
	s.curSize += int64(len(line))
	s.pending.Add(1)
	return nil
}

func (s *spool) rotateLocked() error {
	if s.cur == nil {
		return nil
	}
	err := s.cur.Close()
	s.cur = nil
	return err
}

// deliver sends spooled events in order until one fails. It reports
// whether the spool is now empty.
func (s *spool) deliver(ctx context.Context, send func(*Event) error) (bool, error) {
	s.replay.Lock()
	defer s.replay.Unlock()
	// Close the segment being written and take only segments older than
	// the next one: appends that race with us go to a new segment.
	s.mu.Lock()
	err := s.rotateLocked()
	limit := s.seq
	s.mu.Unlock()
	if err != nil {
		return false, err
	}
	segs, err := s.segments()
	if err != nil {
		return false, err
	}
	for _, p := range segs {
		var seq int
		if _, err := fmt.Sscanf(filepath.Base(p), "seg-%d.jsonl", &seq); err != nil || seq >= limit {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return false, err
		}
		lines := strings.SplitAfter(string(b), "\n")
		for i, line := range lines {
			if strings.TrimSpace(line) == "" {
				continue
			}
			var ev Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				s.pending.Add(-1) // a torn last line after a crash: skip it
				continue
			}
			if err := send(&ev); err != nil || ctx.Err() != nil {
				rest := strings.Join(lines[i:], "")
				tmp := p + ".tmp"
				if werr := os.WriteFile(tmp, []byte(rest), 0o644); werr != nil {
					return false, werr
				}
				return false, os.Rename(tmp, p)
			}
			s.pending.Add(-1)
		}
		if err := os.Remove(p); err != nil {
			return false, err
		}
	}
	return s.pending.Load() == 0, nil
}

func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotateLocked()
}
