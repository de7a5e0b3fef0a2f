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
	// QueueSize bounds the in-memory queue (default 4096); beyond it, and
	// while the sink is down, events go to the spool.
	QueueSize int
	// SpoolDir holds events not yet delivered. Without it, events that do
	// not fit in the queue are dropped (and counted).
	SpoolDir string
	// Workers deliver in parallel (default 4).
	Workers int
	Logger  *slog.Logger
}

// Stats are the logger's counters.
type Stats struct {
	Queued, Sent, Retried, Dropped, Spooled int64
}

// Logger emits CloudEvents for requests and responses.
type Logger struct {
	cfg   Config
	queue chan *Event
	spool *spool
	down  atomic.Bool
	kick  chan struct{}

	queued, sent, retried, dropped atomic.Int64
	closeOnce                      sync.Once
	closed                         chan struct{}
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
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
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
	l := &Logger{cfg: cfg, queue: make(chan *Event, cfg.QueueSize), kick: make(chan struct{}, 1), closed: make(chan struct{})}
	if cfg.SpoolDir != "" {
		s, err := openSpool(cfg.SpoolDir)
		if err != nil {
			return nil, err
		}
		l.spool = s
		if s.pending.Load() > 0 {
			l.down.Store(true) // deliver what an earlier run left, in order, first
		}
	}
	return l, nil
}

// Stats returns the counters.
func (l *Logger) Stats() Stats {
	st := Stats{Queued: l.queued.Load(), Sent: l.sent.Load(), Retried: l.retried.Load(), Dropped: l.dropped.Load()}
	if l.spool != nil {
		st.Spooled = l.spool.pending.Load()
	}
	return st
}

// Enqueue hands an event to delivery without ever blocking.
func (l *Logger) Enqueue(ev *Event) {
	l.queued.Add(1)
	if !l.down.Load() {
		select {
		case l.queue <- ev:
			return
		default:
		}
	}
	l.toSpool(ev)
}

func (l *Logger) toSpool(ev *Event) {
	if l.spool == nil {
		l.dropped.Add(1)
		return
	}
	if err := l.spool.append(ev); err != nil {
		l.dropped.Add(1)
		l.cfg.Logger.Error("logger event dropped", "id", ev.ID, "err", err)
		return
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Run delivers events until ctx ends; then it moves what is still queued
// to the spool (or, without one, tries a last delivery) and returns.
func (l *Logger) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range l.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.work(ctx)
		}()
	}
	if l.spool != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.replay(ctx)
		}()
	}
	wg.Wait()
	// Drain: nothing is lost on shutdown.
	for {
		select {
		case ev := <-l.queue:
			if l.spool != nil {
				l.toSpool(ev)
			} else if err := l.send(context.Background(), ev); err != nil {
				l.dropped.Add(1)
			}
		default:
			if l.spool != nil {
				return l.spool.close()
			}
			return nil
		}
	}
}

func (l *Logger) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-l.queue:
			if l.down.Load() {
				l.toSpool(ev)
				continue
			}
			if err := l.send(ctx, ev); err != nil {
				l.retried.Add(1)
				if l.spool == nil {
					l.dropped.Add(1)
					continue
				}
				if !l.down.Swap(true) {
					l.cfg.Logger.Warn("logger sink failing; spooling events", "err", err)
				}
				l.toSpool(ev)
			}
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

// replay delivers spooled events, backing off while the sink is down.
func (l *Logger) replay(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for {
		if l.spool.pending.Load() > 0 {
			empty, err := l.spool.deliver(ctx, func(ev *Event) error {
				err := l.send(ctx, ev)
				if err != nil {
					l.retried.Add(1)
				}
				return err
			})
			if err == nil && empty {
				if l.down.Swap(false) {
					l.cfg.Logger.Info("logger sink back; spool delivered")
				}
				backoff = 50 * time.Millisecond
				continue
			}
			if err != nil && ctx.Err() == nil {
				l.cfg.Logger.Warn("logger spool replay stopped", "err", err)
			}
		} else if l.down.Swap(false) {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
			if !l.down.Load() {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
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
// passing both through unchanged.
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
		if l.logs("request") {
			l.Enqueue(l.event(id, TypeRequest, body, r.Header.Get("Content-Type"), r.Header))
		}
		rec := &recorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		if l.logs("response") {
			ev := l.event(id, TypeResponse, rec.body.Bytes(), rec.Header().Get("Content-Type"), r.Header)
			ev.Extensions["statuscode"] = strconv.Itoa(rec.code)
			l.Enqueue(ev)
		}
	})
}

// recorder passes a response through while keeping a copy.
type recorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// UnaryInterceptor logs gRPC requests and responses (as protobuf JSON), and
// errors with their status code.
func (l *Logger) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	id := newID()
	if l.logs("request") {
		l.Enqueue(l.event(id, TypeRequest, protoJSON(req), "application/json", nil))
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
		l.Enqueue(ev)
	}
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
