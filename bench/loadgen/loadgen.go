package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounds on a run, so that a typo cannot start an unbounded load.
const (
	maxConns    = 1024
	maxDuration = 10 * time.Minute
	// lateGrace is how long past the run's end a connection still sends
	// the requests its schedule is behind on: a server slower than the rate
	// leaves a backlog that would otherwise keep the run going (and the
	// report's rate at the schedule's rather than the server's).
	lateGrace = time.Second
)

// Config is one run: a fixed request sent over Conns keep-alive
// connections, at Rate requests per second in all or, when Rate is 0, each
// connection sending its next request as soon as the last one is answered.
type Config struct {
	URL      string        // http://host:port/path?query
	Method   string        // GET when empty and there is no body, POST with one
	Header   []string      // "Name: value" fields added to Host and Content-Length
	Body     []byte        // sent as is
	Rate     float64       // requests per second over all connections; 0: closed loop
	Conns    int           // connections
	Duration time.Duration // measured period, after Warmup
	Warmup   time.Duration // sent and checked but not measured
	Timeout  time.Duration // for each response, and for dialling
	// LateGrace is how long past the end a connection behind its schedule
	// still sends (0: lateGrace); tests on a busy machine lengthen it.
	LateGrace time.Duration
}

// Validate reports the first thing wrong with c.
func (c *Config) Validate() error {
	switch {
	case c.Conns < 1 || c.Conns > maxConns:
		return fmt.Errorf("connections must be 1 to %d, not %d", maxConns, c.Conns)
	case c.Duration <= 0 || c.Duration+c.Warmup > maxDuration:
		return fmt.Errorf("duration must be above 0 and, with the warm-up, at most %s", maxDuration)
	case c.Warmup < 0:
		return errors.New("warm-up must not be negative")
	case c.Rate < 0:
		return errors.New("rate must not be negative")
	case c.Timeout <= 0:
		return errors.New("timeout must be above 0")
	case c.LateGrace < 0 || c.LateGrace > maxDuration:
		return fmt.Errorf("late grace must be 0 to %s", maxDuration)
	}
	_, _, err := c.request()
	return err
}

// request returns the address to dial and the request's bytes.
func (c *Config) request() (addr string, req []byte, err error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return "", nil, fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return "", nil, fmt.Errorf("url %q: only http://host[:port]/path is supported", c.URL)
	}
	addr = u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	method := c.Method
	if method == "" {
		method = "GET"
		if len(c.Body) > 0 {
			method = "POST"
		}
	}
	if strings.ContainsAny(method, " \r\n") {
		return "", nil, fmt.Errorf("method %q", method)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, u.RequestURI(), u.Host)
	for _, h := range c.Header {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(h, "\r\n") {
			return "", nil, fmt.Errorf("header %q: want \"Name: value\"", h)
		}
		if strings.EqualFold(strings.TrimSpace(name), "Content-Length") ||
			strings.EqualFold(strings.TrimSpace(name), "Host") {
			return "", nil, fmt.Errorf("header %q is set by loadgen", name)
		}
		fmt.Fprintf(&b, "%s: %s\r\n", strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if len(c.Body) > 0 || method == "POST" || method == "PUT" || method == "PATCH" {
		b.WriteString("Content-Length: " + strconv.Itoa(len(c.Body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(c.Body)
	return addr, b.Bytes(), nil
}

// Result is what a run measured. Latency runs from each request's intended
// send time (the schedule's, in an open-loop run; the actual one in a
// closed loop) to the end of its response, so a server that stalls is
// charged for every request the schedule wanted to send meanwhile, not only
// for the one it held (coordinated omission). Service runs from the actual
// send, and Lag is actual minus intended send: the generator's own delay,
// which includes waiting for a connection still busy with the last answer.
type Result struct {
	Requests uint64 // answered requests whose intended send fell in the measured period
	// Completed counts the answers that arrived within the measured
	// period, whenever they were meant to go: what the server achieved.
	Completed uint64
	// Unsent counts requests the schedule meant to send that were still
	// unsent lateGrace after the run's end: the server fell behind the
	// rate, and their latencies (at least that long) are not recorded.
	Unsent   uint64
	Non2xx   uint64        // of those, answers outside 200–299
	Errors   uint64        // failed exchanges (I/O, timeouts, malformed answers), warm-up included
	FirstErr error         // the first of them
	Period   time.Duration // the measured period
	Latency  Histogram
	Service  Histogram
	Lag      Histogram
}

// RPS returns the answers per second that arrived in the measured period.
func (r *Result) RPS() float64 { return float64(r.Completed) / r.Period.Seconds() }

// Run sends c's load and returns what it measured. It stops early, with
// ctx's error, when ctx is done, and fails when a connection cannot be
// (re)opened. Failed exchanges and non-2xx answers are counted, not
// returned.
func Run(ctx context.Context, c Config) (*Result, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	addr, req, err := c.request()
	if err != nil {
		return nil, err
	}
	workers := make([]*worker, c.Conns)
	for i := range workers {
		w := &worker{addr: addr, req: req, timeout: c.Timeout, head: bytes.HasPrefix(req, []byte("HEAD "))}
		if err := w.dial(); err != nil {
			closeAll(workers)
			return nil, err
		}
		if c.Rate > 0 {
			if w.pacer, err = newPacer(); err != nil {
				closeAll(workers)
				return nil, err
			}
		}
		workers[i] = w
	}
	defer closeAll(workers)

	// Cancelling ctx closes the connections, which ends blocked reads.
	stop := context.AfterFunc(ctx, func() {
		for _, w := range workers {
			w.closeConn()
		}
	})
	defer stop()

	start := time.Now().Add(10 * time.Millisecond) // all connections are ready by then
	measured := start.Add(c.Warmup)
	end := measured.Add(c.Duration)
	var wg sync.WaitGroup
	for i, w := range workers {
		s := schedule{start: start, measured: measured, end: end, stopBy: end.Add(cmp.Or(c.LateGrace, lateGrace))}
		if c.Rate > 0 {
			// Connection i sends at start + (i + k·Conns)/Rate for k = 0, 1, …:
			// together, one request every 1/Rate, evenly spread.
			s.start = start.Add(time.Duration(float64(i) / c.Rate * float64(time.Second)))
			s.interval = float64(c.Conns) / c.Rate * float64(time.Second)
		}
		wg.Go(func() { w.run(ctx, s) })
	}
	wg.Wait()

	res := &Result{Period: c.Duration}
	var fatal error
	for _, w := range workers {
		res.Requests += w.requests
		res.Completed += w.completed
		res.Unsent += w.unsent
		res.Non2xx += w.non2xx
		res.Errors += w.errors
		if res.FirstErr == nil {
			res.FirstErr = w.firstErr
		}
		fatal = cmp.Or(fatal, w.fatal)
		res.Latency.Merge(&w.latency)
		res.Service.Merge(&w.service)
		res.Lag.Merge(&w.lag)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, fatal
}

func closeAll(workers []*worker) {
	for _, w := range workers {
		if w != nil {
			w.closeConn()
			if w.pacer != nil {
				w.pacer.Close()
			}
		}
	}
}

// schedule is one connection's share of a run. interval 0 means closed
// loop: each request is intended to go when the last one is answered.
type schedule struct {
	start         time.Time // first send
	interval      float64   // nanoseconds between this connection's sends (open loop)
	measured, end time.Time // requests intended in [measured, end) are measured; none is sent from end on
	stopBy        time.Time // no request is sent after this, however far behind the schedule
}

// A worker drives one connection. Everything it counts is its own until
// run returns.
type worker struct {
	addr    string
	req     []byte
	timeout time.Duration
	head    bool
	pacer   *pacer // nil in a closed loop

	mu   sync.Mutex // guards conn against the cancelling closeConn
	conn net.Conn
	br   *bufio.Reader

	requests, completed, unsent, non2xx, errors uint64
	firstErr, fatal                             error
	latency, service, lag                       Histogram
}

func (w *worker) run(ctx context.Context, s schedule) {
	if s.interval == 0 {
		time.Sleep(time.Until(s.start))
	}
	for k := 0; ctx.Err() == nil; k++ {
		intended := time.Now()
		if s.interval > 0 {
			intended = s.start.Add(time.Duration(float64(k) * s.interval))
		}
		if !intended.Before(s.end) {
			return
		}
		if s.interval > 0 && time.Now().After(s.stopBy) {
			// Behind the schedule past the grace: count what is left.
			for ; intended.Before(s.end); k++ {
				w.unsent++
				intended = s.start.Add(time.Duration(float64(k+1) * s.interval))
			}
			return
		}
		if s.interval > 0 {
			if err := w.pacer.sleepUntil(intended); err != nil {
				w.fatal = err
				return
			}
		}
		sent := time.Now()
		status, err := w.exchange()
		done := time.Now()
		if err != nil {
			w.errors++
			if w.firstErr == nil {
				w.firstErr = err
			}
			if ctx.Err() != nil {
				return
			}
			if err := w.dial(); err != nil {
				w.fatal = err
				return
			}
			continue
		}
		if !done.Before(s.measured) && done.Before(s.end) {
			w.completed++
		}
		if intended.Before(s.measured) {
			continue
		}
		w.requests++
		if status < 200 || status > 299 {
			w.non2xx++
		}
		w.latency.Record(done.Sub(intended))
		w.service.Record(done.Sub(sent))
		w.lag.Record(sent.Sub(intended))
	}
}

// exchange sends the request and reads its whole answer, reopening the
// connection afterwards when the server asked to close it.
func (w *worker) exchange() (status int, err error) {
	if err := w.conn.SetDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, err
	}
	if _, err := w.conn.Write(w.req); err != nil {
		return 0, fmt.Errorf("send: %w", err)
	}
	status, closing, err := readResponse(w.br, w.head)
	if err != nil {
		return 0, fmt.Errorf("answer: %w", err)
	}
	if closing {
		if err := w.dial(); err != nil {
			return 0, err
		}
	}
	return status, nil
}

// dial replaces the worker's connection with a new one.
func (w *worker) dial() error {
	w.closeConn()
	conn, err := net.DialTimeout("tcp", w.addr, w.timeout)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.conn = conn
	if w.br == nil {
		w.br = bufio.NewReaderSize(conn, 64<<10)
	} else {
		w.br.Reset(conn)
	}
	return nil
}

func (w *worker) closeConn() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		w.conn.Close()
	}
}
