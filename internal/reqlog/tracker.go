package reqlog

import "sync"

// tracker knows which spooled events are out for delivery, so that the
// cursor saved in the spool never passes an event the sink has not taken.
// The reader adds events in spool order; workers acknowledge them in any
// order; the low watermark is the first unacknowledged event (or, with
// none out, where the reader is).
type tracker struct {
	mu       sync.Mutex
	base     uint64     // ticket of out[0]
	out      []outEvent // in spool order
	head     position   // after the last event read (or skipped)
	saved    position   // last watermark reported
	reported bool
}

type outEvent struct {
	at   position
	done bool
}

// add registers an event at at (the next one starting at next) and returns
// its ticket.
func (t *tracker) add(at, next position) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	ticket := t.base + uint64(len(t.out))
	t.out = append(t.out, outEvent{at: at})
	t.head = next
	return ticket
}

// skip moves the reader's position past bytes that hold no event.
func (t *tracker) skip(to position) {
	t.mu.Lock()
	t.head = to
	t.mu.Unlock()
}

// ack marks the event delivered.
func (t *tracker) ack(ticket uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ticket < t.base || ticket-t.base >= uint64(len(t.out)) {
		return
	}
	t.out[ticket-t.base].done = true
	i := 0
	for i < len(t.out) && t.out[i].done {
		i++
	}
	t.out = t.out[i:]
	t.base += uint64(i)
}

// lowWatermark returns the position before which every event was
// delivered, and whether it moved since the last call.
func (t *tracker) lowWatermark() (position, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	low := t.head
	if len(t.out) > 0 {
		low = t.out[0].at
	}
	changed := !t.reported || low != t.saved
	t.saved, t.reported = low, true
	return low, changed
}
