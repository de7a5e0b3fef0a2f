package http1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// serveHangup serves h with a 1 ms hang-up delay and reports the watch's
// stages on the channel it returns.
func serveHangup(t *testing.T, h http.HandlerFunc) (string, <-chan string) {
	t.Helper()
	stages := make(chan string, 16)
	testHookHangup = func(s string) { stages <- s }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, hangupDelay: time.Millisecond}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		testHookHangup = nil
	})
	return ln.Addr().String(), stages
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s after 5s", what)
		panic("unreachable")
	}
}

// TestHangupCancels: a client that hangs up while its handler runs ends
// the request's context, as with net/http.
func TestHangupCancels(t *testing.T) {
	canceled := make(chan error, 1)
	addr, stages := serveHangup(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
		canceled <- r.Context().Err()
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi")
	if s := wait(t, stages, "watch"); s != "reading" {
		t.Fatalf("stage %q", s)
	}
	c.Close()
	if err := wait(t, canceled, "cancellation"); !errors.Is(err, context.Canceled) {
		t.Errorf("context error %v", err)
	}
}

// TestHangupWatchKeepsNextRequest: a pipelined request that arrives while
// the watch reads is served whole, after the slow one.
func TestHangupWatchKeepsNextRequest(t *testing.T) {
	release := make(chan struct{})
	addr, stages := serveHangup(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
			if r.Context().Err() != nil {
				w.WriteHeader(http.StatusTeapot)
				return
			}
		}
		io.WriteString(w, r.Method+" "+r.URL.Path)
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	if s := wait(t, stages, "watch"); s != "reading" {
		t.Fatalf("stage %q", s)
	}
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	if s := wait(t, stages, "watch read"); s != "read" {
		t.Fatalf("stage %q", s)
	}
	close(release)
	br := bufio.NewReader(c)
	for _, want := range []string{"GET /slow", "GET /next"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("answer %d %q, want 200 %q", resp.StatusCode, b, want)
		}
	}
}

// TestHangupWatchStops: a long request whose client stays gets its answer,
// its context is not cancelled, and the connection serves on.
func TestHangupWatchStops(t *testing.T) {
	release := make(chan struct{})
	addr, stages := serveHangup(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		if r.Context().Err() != nil {
			w.WriteHeader(http.StatusTeapot)
		}
		io.WriteString(w, r.URL.Path)
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, path := range []string{"/slow", "/after"} {
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
		if path == "/slow" {
			if s := wait(t, stages, "watch"); s != "reading" {
				t.Fatalf("stage %q", s)
			}
			close(release)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != path {
			t.Fatalf("answer %d %q, want 200 %q", resp.StatusCode, b, path)
		}
	}
}

// TestHangupTickerIdles: the shared ticker runs once a handler has, stops
// after a while with none running, and starts again for the next one,
// whose hang-up still cancels it.
func TestHangupTickerIdles(t *testing.T) {
	canceled := make(chan error, 1)
	stages := make(chan string, 16)
	testHookHangup = func(s string) { stages <- s }
	defer func() { testHookHangup = nil }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{hangupDelay: time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-r.Context().Done()
			canceled <- r.Context().Err()
		}
	})}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-served
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /fast HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatal(err)
	}
	if !s.ticker.on.Load() {
		t.Fatal("ticker not running after a request")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.ticker.on.Load() {
		if time.Now().After(deadline) {
			t.Fatal("ticker still running 5s after the last request")
		}
		time.Sleep(10 * time.Millisecond)
	}

	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	if st := wait(t, stages, "watch"); st != "reading" {
		t.Fatalf("stage %q", st)
	}
	c.Close()
	if err := wait(t, canceled, "cancellation"); !errors.Is(err, context.Canceled) {
		t.Errorf("context error %v", err)
	}
}
