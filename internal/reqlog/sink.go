package reqlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Sink delivers one event; an error means it must be retried, unless it
// wraps ErrRejected (the sink will never take this event).
type Sink interface {
	Send(ctx context.Context, ev *Event) error
}

// ErrRejected marks an event the sink refused for good (an HTTP 4xx other
// than 408 and 429): retrying it would hold up every event behind it.
var ErrRejected = errors.New("event rejected by the sink")

// NewSink picks the sink for a logger URL: file:///path (JSON lines) or
// http(s):// (CloudEvents binary mode).
func NewSink(url string) (Sink, error) {
	switch {
	case strings.HasPrefix(url, "file://"):
		return &fileSink{path: strings.TrimPrefix(url, "file://")}, nil
	case strings.HasPrefix(url, "http://"), strings.HasPrefix(url, "https://"):
		return &httpSink{url: url, client: &http.Client{Timeout: 5 * time.Second}}, nil
	}
	return nil, fmt.Errorf("logger url %q: want http://, https:// or file:///path", url)
}

// httpSink posts events in CloudEvents HTTP binary mode.
type httpSink struct {
	url    string
	client *http.Client
}

func (s *httpSink) Send(ctx context.Context, ev *Event) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(ev.Data))
	if err != nil {
		return err
	}
	h := req.Header
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", ev.ID)
	h.Set("Ce-Type", ev.Type)
	h.Set("Ce-Source", ev.Source)
	h.Set("Ce-Time", ev.Time.UTC().Format(time.RFC3339Nano))
	for k, v := range ev.Extensions {
		h.Set("Ce-"+k, v)
	}
	ct := ev.ContentType
	if ct == "" {
		ct = "application/json"
	}
	h.Set("Content-Type", ct)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
	case c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests:
		return fmt.Errorf("sink answered %d: %w", c, ErrRejected)
	default:
		return fmt.Errorf("sink answered %d", c)
	}
	return nil
}

// fileSink appends structured-mode CloudEvents as JSON lines.
type fileSink struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func (s *fileSink) Send(_ context.Context, ev *Event) error {
	rec := map[string]any{
		"specversion": "1.0", "id": ev.ID, "type": ev.Type, "source": ev.Source,
		"time": ev.Time.UTC().Format(time.RFC3339Nano), "datacontenttype": ev.ContentType,
	}
	for k, v := range ev.Extensions {
		rec[k] = v
	}
	if json.Valid(ev.Data) && len(ev.Data) > 0 {
		rec["data"] = json.RawMessage(ev.Data)
	} else if len(ev.Data) > 0 {
		rec["data_base64"] = ev.Data
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		if s.f, err = os.OpenFile(s.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			return err
		}
	}
	_, err = s.f.Write(append(line, '\n'))
	return err
}
