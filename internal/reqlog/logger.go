package reqlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Config configures a Logger.
type Config struct {
	Sink Sink
	// Mode is all (default), request or response.
	Mode string
	// Source is the ce-source (e.g. the replica's name).
	Source string
	// Extensions KServe sets on every event.
	InferenceService, Namespace, Component, Endpoint string
	// MetadataHeaders are request headers copied into the "metadata"
	// extension (a JSON object of header → values).
	MetadataHeaders []string
	// QueueSize bounds the events held in memory on their way to the sink
	// (default 1024).
	QueueSize int
	// SpoolDir is the write-ahead log: a request's events are written there
	// before its response is sent, and delivered from there, at least once,
	// across crashes and restarts. Without it, events live only in memory
	// and those that do not fit in the queue are dropped (and counted).
	SpoolDir string
	// SpoolMaxSize caps the spool's bytes on disk (default 1 GiB; negative:
	// no cap). Events that would exceed it are dropped and counted.
	SpoolMaxSize int64
	// Fsync is when the spool is flushed to stable storage (default never:
	// a crash of the process loses nothing, power loss may).
	Fsync FsyncPolicy
	// FsyncInterval is the period of FsyncInterval (default 1s).
	FsyncInterval time.Duration
	// Workers deliver in parallel (default 4).
	Workers int
	Logger  *slog.Logger
}

// DefaultSpoolMaxSize is the spool cap when Config.SpoolMaxSize is 0.
const DefaultSpoolMaxSize = 1 << 30

// Stats are the logger's counters.
type Stats struct {
	// Queued counts events logged; Sent, those the sink accepted; Retried,
	// failed attempts; Dropped, events given up (queue or spool full, spool
	// write error, rejected by the sink); SpoolFull, the part of Dropped
	// refused by the spool's size cap; Spooled, events written to the spool.
	Queued, Sent, Retried, Dropped, SpoolFull, Spooled int64
	// SpoolBytes is the spool's size on disk now.
	SpoolBytes int64
}

// Logger emits CloudEvents for requests and responses.
type Logger struct {
	cfg   Config
	jobs  chan job
	spool *spool
	from  position // where delivery resumes in the spool
	track tracker
	down  atomic.Bool

	queued, sent, retried, dropped, spoolFull, spooled atomic.Int64
	lastDropLog                                        atomic.Int64 // unix nanoseconds
}

// job is an event on its way to the sink; ticket identifies it to the
// tracker (spool mode).
type job struct {
	ev     *Event
	ticket uint64
}

// New returns a Logger; Run delivers its events.
func New(cfg Config) (*Logger, error) {
	if cfg.Sink == nil {
		return nil, errors.New("logger: a sink is required")
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = "all"
	case "all", "request", "response":
	default:
		return nil, fmt.Errorf("logger mode %q: want all, request or response", cfg.Mode)
	}
	if cfg.Fsync == "" {
		cfg.Fsync = FsyncNever
	}
	if err := cfg.Fsync.Validate(); err != nil {
		return nil, err
	}
	if cfg.FsyncInterval <= 0 {
		cfg.FsyncInterval = time.Second
	}
	if cfg.SpoolMaxSize == 0 {
		cfg.SpoolMaxSize = DefaultSpoolMaxSize
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Source == "" {
		cfg.Source = "ferry"
	}
	l := &Logger{cfg: cfg, jobs: make(chan job, cfg.QueueSize)}
	if cfg.SpoolDir != "" {
		s, from, err := openSpool(spoolConfig{dir: cfg.SpoolDir, fsync: cfg.Fsync, maxSize: max(cfg.SpoolMaxSize, 0), log: cfg.Logger})
		if err != nil {
			return nil, err
		}
		l.spool, l.from = s, from
		l.track.head = from
	}
	return l, nil
}

// Stats returns the counters.
func (l *Logger) Stats() Stats {
	st := Stats{
		Queued: l.queued.Load(), Sent: l.sent.Load(), Retried: l.retried.Load(), Dropped: l.dropped.Load(),
		SpoolFull: l.spoolFull.Load(), Spooled: l.spooled.Load(),
	}
	if l.spool != nil {
		st.SpoolBytes = l.spool.size()
	}
	return st
}

// record logs a request's events. With a spool it returns once they are
// written there (the caller sends its response after); without one it
// never blocks. It never fails the request: events it cannot keep are
// counted as dropped.
func (l *Logger) record(evs ...*Event) {
	n := int64(len(evs))
	if n == 0 {
		return
	}
	l.queued.Add(n)
	if l.spool == nil {
		for _, ev := range evs {
			select {
			case l.jobs <- job{ev: ev}:
			default:
				l.drop(1, errors.New("logger queue full"))
			}
		}
		return
	}
	if err := l.spool.append(evs...); err != nil {
		if errors.Is(err, errSpoolFull) {
			l.spoolFull.Add(n)
		}
		l.drop(n, err)
		return
	}
	l.spooled.Add(n)
}

// drop counts lost events and says so at most every 10 seconds.
func (l *Logger) drop(n int64, err error) {
	total := l.dropped.Add(n)
	now := time.Now().UnixNano()
	last := l.lastDropLog.Load()
	if now-last < int64(10*time.Second) || !l.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	args := []any{"err", err, "dropped_total", total}
	if l.spool != nil {
		args = append(args, "spool_bytes", l.spool.size(), "spool_max_bytes", l.cfg.SpoolMaxSize)
	}
	l.cfg.Logger.Error("logger dropping events", args...)
}

// Run delivers events until ctx ends. With a spool, what is not delivered
// by then stays there for the next Run (of this or a later process);
// without one, Run tries a last delivery of what is queued (5s at most).
func (l *Logger) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range l.cfg.Workers {
		wg.Go(func() { l.work(ctx) })
	}
	if l.spool == nil {
		wg.Wait()
		return l.drainMemory()
	}
	wg.Go(func() {
		err := l.spool.tail(ctx, l.from, func(ev *Event, at, next position) error {
			if ev == nil {
				l.track.skip(next)
				return nil
			}
			t := l.track.add(at, next)
			select {
			case l.jobs <- job{ev: ev, ticket: t}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil && ctx.Err() == nil {
			l.cfg.Logger.Error("logger spool reader stopped", "err", err)
		}
	})
	if l.cfg.Fsync == FsyncInterval {
		wg.Go(func() { l.spool.syncEvery(ctx, l.cfg.FsyncInterval) })
	}
	wg.Go(func() { l.checkpointEvery(ctx, 250*time.Millisecond) })
	wg.Wait()
	err := l.checkpoint()
	if cerr := l.spool.close(); err == nil {
		err = cerr
	}
	return err
}

func (l *Logger) drainMemory() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		select {
		case j := <-l.jobs:
			if ctx.Err() != nil || l.send(ctx, j.ev) != nil {
				l.dropped.Add(1)
			}
		default:
			return nil
		}
	}
}

// checkpointEvery saves the delivery cursor and deletes delivered segments.
func (l *Logger) checkpointEvery(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.checkpoint(); err != nil {
				l.cfg.Logger.Error("logger spool checkpoint", "err", err)
			}
		}
	}
}

func (l *Logger) checkpoint() error {
	low, changed := l.track.lowWatermark()
	if !changed {
		return nil
	}
	if err := l.spool.saveCursor(low); err != nil {
		return err
	}
	return l.spool.removeBefore(low.seg)
}

// work sends events, retrying each with backoff until the sink takes it
// (or rejects it for good), so that none is skipped.
func (l *Logger) work(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for {
		var j job
		select {
		case <-ctx.Done():
			return
		case j = <-l.jobs:
		}
		for {
			err := l.send(ctx, j.ev)
			if err == nil || errors.Is(err, ErrRejected) {
				if err != nil {
					l.drop(1, err)
				} else if l.down.Swap(false) {
					l.cfg.Logger.Info("logger sink answering again")
				}
				if l.spool != nil {
					l.track.ack(j.ticket)
				}
				backoff = 50 * time.Millisecond
				break
			}
			if ctx.Err() != nil {
				if l.spool == nil {
					l.dropped.Add(1) // with a spool, the next Run delivers it
				}
				return
			}
			l.retried.Add(1)
			if !l.down.Swap(true) {
				l.cfg.Logger.Warn("logger sink failing; retrying with backoff", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}

func (l *Logger) send(ctx context.Context, ev *Event) error {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.cfg.Sink.Send(sctx, ev); err != nil {
		return err
	}
	l.sent.Add(1)
	return nil
}

func (l *Logger) event(id, typ string, data []byte, contentType string, hdr http.Header) *Event {
	ext := map[string]string{}
	for k, v := range map[string]string{
		"inferenceservicename": l.cfg.InferenceService, "namespace": l.cfg.Namespace,
		"component": l.cfg.Component, "endpoint": l.cfg.Endpoint,
	} {
		if v != "" {
			ext[k] = v
		}
	}
	if len(l.cfg.MetadataHeaders) > 0 && hdr != nil {
		md := map[string][]string{}
		for _, h := range l.cfg.MetadataHeaders {
			if v := hdr.Values(h); len(v) > 0 {
				md[h] = v
			}
		}
		if b, err := json.Marshal(md); err == nil && len(md) > 0 {
			ext["metadata"] = string(b)
		}
	}
	if contentType == "" {
		contentType = "application/json"
	}
	return &Event{ID: id, Type: typ, Source: l.cfg.Source, Time: time.Now(), ContentType: contentType, Extensions: ext, Data: data}
}

func (l *Logger) logs(kind string) bool { return l.cfg.Mode == "all" || l.cfg.Mode == kind }

// Middleware logs POSTed requests and their responses (any status) while
// passing both through unchanged. The response is held until the handler
// returns; then both events are written to the spool, and only then does
// the response leave, so an answered request is never lost to a crash. A
// handler that flushes (streams) sends its response at the first Flush,
// after the request event is written; its response event follows when it
// returns.
func (l *Logger) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		id := r.Header.Get("Ce-Id")
		if id == "" {
			id = newID()
		}
		rec := &recorder{w: w, code: http.StatusOK}
		if l.logs("request") {
			rec.reqEvent = l.event(id, TypeRequest, body, r.Header.Get("Content-Type"), r.Header)
		}
		rec.commit = l.record
		next.ServeHTTP(rec, r)
		var resp *Event
		if l.logs("response") {
			resp = l.event(id, TypeResponse, rec.body.Bytes(), rec.Header().Get("Content-Type"), r.Header)
			resp.Extensions["statuscode"] = strconv.Itoa(rec.code)
		}
		rec.finish(resp)
	})
}

// recorder holds a response back until its events are logged, keeping a
// copy of the body for the response event.
type recorder struct {
	w           http.ResponseWriter
	code        int
	wroteHeader bool
	body        bytes.Buffer
	reqEvent    *Event
	commit      func(...*Event)
	streaming   bool // flushed: writes go straight through
}

func (r *recorder) Header() http.Header { return r.w.Header() }

func (r *recorder) WriteHeader(code int) {
	if r.wroteHeader {
		return
	}
	r.code, r.wroteHeader = code, true
	if r.streaming {
		r.w.WriteHeader(code)
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	r.body.Write(b)
	if r.streaming {
		return r.w.Write(b)
	}
	return len(b), nil
}

// Flush starts streaming: the request event is written, then what the
// handler wrote so far leaves.
func (r *recorder) Flush() {
	if !r.streaming {
		r.streaming = true
		if r.reqEvent != nil {
			r.commit(r.reqEvent)
			r.reqEvent = nil
		}
		r.release()
	}
	if f, ok := r.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (r *recorder) Unwrap() http.ResponseWriter { return r.w }

// release sends the status and the body held back so far.
func (r *recorder) release() {
	if r.wroteHeader {
		r.w.WriteHeader(r.code)
	}
	if r.body.Len() > 0 {
		_, _ = r.w.Write(r.body.Bytes())
	}
}

// finish logs what is left to log, then sends what is held back.
func (r *recorder) finish(resp *Event) {
	evs := make([]*Event, 0, 2)
	if r.reqEvent != nil {
		evs = append(evs, r.reqEvent)
	}
	if resp != nil {
		evs = append(evs, resp)
	}
	r.commit(evs...)
	if !r.streaming {
		r.release()
	}
}

// UnaryInterceptor logs gRPC requests and responses (as protobuf JSON), and
// errors with their status code; both events are in the spool before the
// response is returned to gRPC to send.
func (l *Logger) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	id := newID()
	evs := make([]*Event, 0, 2)
	if l.logs("request") {
		evs = append(evs, l.event(id, TypeRequest, protoJSON(req), "application/json", nil))
	}
	resp, err := handler(ctx, req)
	if l.logs("response") {
		data := protoJSON(resp)
		if err != nil {
			data, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		ev := l.event(id, TypeResponse, data, "application/json", nil)
		ev.Extensions["grpcstatus"] = status.Code(err).String()
		ev.Extensions["grpcmethod"] = info.FullMethod
		evs = append(evs, ev)
	}
	l.record(evs...)
	return resp, err
}

func protoJSON(v any) []byte {
	m, ok := v.(proto.Message)
	if !ok || m == nil {
		return nil
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil
	}
	return b
}

// Extra is an event a caller adds to the log beside the request and
// response events (e.g. the quality monitor's joined feedback): its
// ce-id, ce-type and JSON data.
type Extra struct {
	ID, Type string
	Data     []byte
}

// Emit logs extra events with the logger's source and extensions, whatever
// the mode, as the middleware logs a request: with a spool they are written
// there before Emit returns, and delivered at least once. It never fails:
// events it cannot keep are counted as dropped.
func (l *Logger) Emit(evs ...Extra) {
	out := make([]*Event, len(evs))
	for i, e := range evs {
		out[i] = l.event(e.ID, e.Type, e.Data, "application/json", nil)
	}
	l.record(out...)
}
