package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// BodyRate bounds how slowly a client may send a request body (a
// slow-loris defence that does not cut off large honest uploads): the body
// must arrive within Grace plus its size divided by MinRate. Past that, the
// connection's read deadline fires and the handler's read fails.
type BodyRate struct {
	Grace   time.Duration // allowance before the rate counts (default 10s)
	MinRate int64         // bytes per second (default 16 KiB/s)
}

// Defaults of BodyRate.
const (
	DefaultBodyGrace   = 10 * time.Second
	DefaultBodyMinRate = 16 << 10
)

// ErrSlowBody is returned by reads of a body that arrives too slowly.
var ErrSlowBody = errors.New("request body arrived too slowly")

// Wrap returns next with every request body under the rate bound.
func (b BodyRate) Wrap(next http.Handler) http.Handler {
	if b.Grace <= 0 {
		b.Grace = DefaultBodyGrace
	}
	if b.MinRate <= 0 {
		b.MinRate = DefaultBodyMinRate
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rb := &rateBody{rc: r.Body, w: w, start: time.Now(), cfg: b}
		r.Body = rb
		next.ServeHTTP(w, r)
		if rb.armed.Load() && rb.eof.Load() {
			// Body done: lift the bound before the connection serves its
			// next request. A body not read to its end keeps the bound, so
			// the server's drain of the rest cannot hang on a slow client.
			_ = setReadDeadline(rb.w, time.Time{})
		}
	})
}

type rateBody struct {
	rc    io.ReadCloser
	w     http.ResponseWriter
	start time.Time
	n     int64
	cfg   BodyRate
	// armed and eof may be written by a transport goroutine still reading
	// when the handler returns (a proxy whose backend answered early).
	armed atomic.Bool
	eof   atomic.Bool
}

func (b *rateBody) Read(p []byte) (int, error) {
	deadline := b.start.Add(b.cfg.Grace + time.Duration(float64(b.n)/float64(b.cfg.MinRate)*float64(time.Second)))
	if err := setReadDeadline(b.w, deadline); err == nil {
		b.armed.Store(true)
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		b.eof.Store(true)
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return n, fmt.Errorf("%w: %d bytes in %v, below the minimum of %d B/s after %v (the client must send faster)", ErrSlowBody, b.n, time.Since(b.start).Round(time.Millisecond), b.cfg.MinRate, b.cfg.Grace)
	}
	return n, err
}

func (b *rateBody) Close() error { return b.rc.Close() }

// setReadDeadline is http.ResponseController's SetReadDeadline without a
// controller to allocate per request: the writer, or one it wraps, sets
// its connection's deadline.
func setReadDeadline(w http.ResponseWriter, t time.Time) error {
	for {
		switch x := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			return x.SetReadDeadline(t)
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return http.ErrNotSupported
		}
	}
}
