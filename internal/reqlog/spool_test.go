package reqlog

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var discard = slog.New(slog.DiscardHandler)

func testEvent(id string) *Event {
	return &Event{
		ID: id, Type: TypeRequest, Source: "test", Time: time.Unix(1700000000, 123).UTC(),
		ContentType: "application/json", Extensions: map[string]string{"namespace": "default", "statuscode": "200"},
		Data: []byte(`{"inputs":[1,2,3]}`),
	}
}

func TestRecordRoundTrip(t *testing.T) {
	var b []byte
	for _, id := range []string{"a", "b", ""} {
		b = appendRecord(b, testEvent(id))
	}
	b = appendRecord(b, &Event{ID: "empty"})
	var ids []string
	for len(b) > 0 {
		ev, n, err := readRecord(b)
		if err != nil || n == 0 {
			t.Fatalf("readRecord: n=%d err=%v", n, err)
		}
		if ev.ID != "empty" && !reflect.DeepEqual(ev, testEvent(ev.ID)) {
			t.Fatalf("round trip: %+v", ev)
		}
		ids = append(ids, ev.ID)
		b = b[n:]
	}
	if strings.Join(ids, ",") != "a,b,,empty" {
		t.Fatalf("ids %q", ids)
	}
}

// TestRecordTorn: every prefix of a record is "incomplete", never an event
// or a panic; a flipped bit anywhere is corrupt.
func TestRecordTorn(t *testing.T) {
	rec := appendRecord(nil, testEvent("x"))
	for i := range len(rec) {
		if ev, n, err := readRecord(rec[:i]); ev != nil || n != 0 || err != nil {
			t.Fatalf("prefix %d: ev=%v n=%d err=%v", i, ev, n, err)
		}
	}
	for i := range len(rec) {
		bad := bytes.Clone(rec)
		bad[i] ^= 0x10
		ev, _, err := readRecord(bad)
		if i < 4 && err == nil && ev == nil {
			continue // a longer length: incomplete, as a torn record is
		}
		if err == nil {
			t.Fatalf("bit flip at %d accepted: %+v", i, ev)
		}
	}
}

func FuzzReadRecord(f *testing.F) {
	f.Add(appendRecord(nil, testEvent("seed")))
	f.Add(appendRecord(appendRecord(nil, testEvent("1")), &Event{ID: "2"}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			ev, n, err := readRecord(b)
			if err != nil || n == 0 {
				return
			}
			if n > len(b) {
				t.Fatalf("record of %d bytes in %d", n, len(b))
			}
			// What decodes re-encodes to the same event.
			again, m, err := readRecord(appendRecord(nil, ev))
			if err != nil || m == 0 || !reflect.DeepEqual(again, ev) {
				t.Fatalf("re-encoding %+v: %+v %v", ev, again, err)
			}
			b = b[n:]
		}
	})
}

// segFiles lists the spool's segments.
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "seg-*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTornTailSkipped: a spool whose last segment ends in half a record
// (the process died mid-write) and holds a corrupt one is replayed up to
// the damage; the logger starts, delivers the intact events and new ones.
func TestTornTailSkipped(t *testing.T) {
	dir := t.TempDir()
	s, _, err := openSpool(spoolConfig{dir: dir, fsync: FsyncNever, log: discard})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"e1", "e2", "e3"} {
		if err := s.append(testEvent(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	segs := segFiles(t, dir)
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	// A second segment: one intact record, then a torn one.
	torn := appendRecord(appendRecord(nil, testEvent("e4")), testEvent("lost"))
	if err := os.WriteFile(strings.Replace(segs[0], "0001.wal", "0002.wal", 1), torn[:len(torn)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	// Corrupt the checksum of e3 (the first segment's last record).
	b, _ := os.ReadFile(segs[0])
	b[len(b)-1] ^= 1
	if err := os.WriteFile(segs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}

	sk := newSink(t)
	hs, _ := NewSink(sk.srv.URL)
	l, stop := startLogger(t, Config{Sink: hs, SpoolDir: dir})
	defer stop()
	h := l.Middleware(model)
	req := httptest.NewRequest("POST", "/x", strings.NewReader(`[1]`))
	req.Header.Set("Ce-Id", "after")
	h.ServeHTTP(httptest.NewRecorder(), req)
	waitFor(t, "the intact events", func() bool { return sk.count() == 5 })
	sk.mu.Lock()
	defer sk.mu.Unlock()
	for _, id := range []string{"e1", "e2", "e4", "after"} {
		if sk.got[id] == nil {
			t.Errorf("event %s not delivered: %v", id, sk.got)
		}
	}
}

// TestSpoolCap: with the sink down, the spool stops at its cap; what does
// not fit is dropped and counted (clients still get their answers); once
// the sink is back, what was kept arrives and delivered segments go.
func TestSpoolCap(t *testing.T) {
	const capBytes = 256 << 10
	dir := t.TempDir()
	sk := newSink(t)
	sk.down.Store(true)
	hs, _ := NewSink(sk.srv.URL)
	l, stop := startLogger(t, Config{Sink: hs, SpoolDir: dir, SpoolMaxSize: capBytes})
	defer stop()
	h := l.Middleware(model)
	payload := `[` + strings.Repeat("1,", 500) + `1]`
	n := 0
	for l.Stats().SpoolFull == 0 {
		n++
		if n > 10000 {
			t.Fatalf("the cap never applied: %+v", l.Stats())
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/x", strings.NewReader(payload)))
		if rec.Code != 200 {
			t.Fatalf("client got %d", rec.Code)
		}
	}
	for range 20 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/x", strings.NewReader(payload)))
	}
	st := l.Stats()
	if st.SpoolBytes > capBytes || st.Dropped != st.SpoolFull || st.SpoolFull < 40 || st.Spooled+st.Dropped != st.Queued {
		t.Fatalf("stats at the cap: %+v", st)
	}
	kept := st.Spooled
	sk.down.Store(false)
	waitFor(t, "the kept events", func() bool { return int64(sk.count()) == kept })
	waitFor(t, "delivered segments deleted", func() bool { return len(segFiles(t, dir)) <= 1 })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/x", strings.NewReader(payload)))
	waitFor(t, "events logged again", func() bool { return int64(sk.count()) == kept+2 })
	if l.Stats().SpoolBytes > capBytes {
		t.Fatalf("spool over its cap: %+v", l.Stats())
	}
}

// TestEventsWrittenBeforeResponse: when the first byte of the response
// leaves, both of the request's events are in the spool on disk.
func TestEventsWrittenBeforeResponse(t *testing.T) {
	dir := t.TempDir()
	l, err := New(Config{Sink: failingSink{}, SpoolDir: dir}) // never delivered: only the spool has them
	if err != nil {
		t.Fatal(err)
	}
	h := l.Middleware(model)
	req := httptest.NewRequest("POST", "/x", strings.NewReader(`[5]`))
	req.Header.Set("Ce-Id", "held")
	w := &checkingWriter{ResponseRecorder: httptest.NewRecorder(), t: t, dir: dir, id: "held"}
	h.ServeHTTP(w, req)
	if !w.checked || w.Body.String() != `{"predictions":[5]}` || w.Code != 200 {
		t.Fatalf("response %d %q (checked %v)", w.Code, w.Body, w.checked)
	}
	if err := l.spool.close(); err != nil {
		t.Fatal(err)
	}
}

type failingSink struct{}

func (failingSink) Send(context.Context, *Event) error { return errors.New("down") }

// checkingWriter reads the spool's segments when the response starts.
type checkingWriter struct {
	*httptest.ResponseRecorder
	t       *testing.T
	dir, id string
	checked bool
}

func (w *checkingWriter) check() {
	if w.checked {
		return
	}
	w.checked = true
	types := map[string]bool{}
	for _, p := range segFiles(w.t, w.dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			w.t.Fatal(err)
		}
		for len(b) > 0 {
			ev, n, err := readRecord(b)
			if err != nil || n == 0 {
				break
			}
			if ev.ID == w.id {
				types[ev.Type] = true
			}
			b = b[n:]
		}
	}
	if !types[TypeRequest] || !types[TypeResponse] {
		w.t.Errorf("response started before its events were spooled: %v", types)
	}
}

func (w *checkingWriter) WriteHeader(code int) { w.check(); w.ResponseRecorder.WriteHeader(code) }

func (w *checkingWriter) Write(b []byte) (int, error) {
	w.check()
	return w.ResponseRecorder.Write(b)
}

// TestRejectedEventDoesNotBlock: an event the sink refuses for good (4xx)
// is dropped and counted; the ones behind it still arrive.
func TestRejectedEventDoesNotBlock(t *testing.T) {
	sk := newSink(t)
	hs, _ := NewSink(sk.srv.URL)
	rej := rejectingSink{next: hs, id: "poison"}
	l, stop := startLogger(t, Config{Sink: rej, SpoolDir: t.TempDir(), Workers: 1})
	defer stop()
	h := l.Middleware(model)
	for _, id := range []string{"poison", "fine"} {
		req := httptest.NewRequest("POST", "/x", strings.NewReader(`[1]`))
		req.Header.Set("Ce-Id", id)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	waitFor(t, "the good events", func() bool { return sk.count() == 2 })
	if st := l.Stats(); st.Dropped != 2 {
		t.Fatalf("stats %+v", st)
	}
}

type rejectingSink struct {
	next Sink
	id   string
}

func (s rejectingSink) Send(ctx context.Context, ev *Event) error {
	if ev.ID == s.id {
		return ErrRejected
	}
	return s.next.Send(ctx, ev)
}

func TestHTTPSinkRejects(t *testing.T) {
	for code, rejected := range map[int]bool{400: true, 413: true, 429: false, 408: false, 503: false} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }))
		hs, _ := NewSink(srv.URL)
		err := hs.Send(t.Context(), testEvent("x"))
		srv.Close()
		if err == nil || errors.Is(err, ErrRejected) != rejected {
			t.Errorf("status %d: %v (rejected: want %v)", code, err, rejected)
		}
	}
}
