package http1_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/server/http1"
)

// engineHeader tells which server answered: "fast" or "std" (the fallback).
const engineHeader = "X-Engine"

// echo answers "METHOD URI body" after reading the whole body, with
// request facts in headers; /limit reads through a 10-byte MaxBytesReader,
// /noread answers without reading the body.
func echo(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/noread" {
		w.Write([]byte("not read"))
		return
	}
	body := r.Body
	if r.URL.Path == "/limit" {
		body = http.MaxBytesReader(w, r.Body, 10)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		code := http.StatusBadRequest
		if errors.As(err, &mbe) {
			code = http.StatusRequestEntityTooLarge
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("X-Host", r.Host)
	w.Header().Set("X-Header-Host", r.Header.Get("Host"))
	w.Header().Set("X-Content-Length", fmt.Sprint(r.ContentLength))
	w.Header().Set("X-Transfer-Encoding", strings.Join(r.TransferEncoding, ","))
	fmt.Fprintf(w, "%s %s %s", r.Method, r.RequestURI, b)
}

type testServer struct {
	addr string
	srv  *http1.Server
	done chan error
}

// start serves h on 127.0.0.1 with the fast server, and its fallback
// with the same handler; each answer says which served it.
func start(t *testing.T, h http.HandlerFunc, tune ...func(*http1.Server)) *testServer {
	t.Helper()
	tag := func(engine string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(engineHeader, engine)
			h(w, r)
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http1.Server{Handler: tag("fast"), Fallback: &http.Server{Handler: tag("std")}}
	for _, f := range tune {
		f(s)
	}
	ts := &testServer{addr: ln.Addr().String(), srv: s, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop shuts the server down and checks that Serve returned as it should.
func (ts *testServer) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	select {
	case err := <-ts.done:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve returned %v", err)
		}
	case <-ctx.Done():
		t.Error("serve did not return after shutdown")
	}
}

func (ts *testServer) dial(t *testing.T) *client {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatal(err)
	}
}

// answer is one response read whole.
type answer struct {
	*http.Response
	body string
}

func (c *client) read() answer {
	c.t.Helper()
	return c.readFor(nil)
}

// readFor reads the answer to req (to HEAD, an answer has no body).
func (c *client) readFor(req *http.Request) answer {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("read response body: %v", err)
	}
	return answer{resp, string(b)}
}

// closed reports whether the server closed the connection: the next read
// sees EOF (or a reset) rather than data or a timeout.
func (c *client) closed() bool {
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.br.ReadByte()
	if err == nil {
		c.t.Errorf("unexpected byte %q after the answer", b)
		return false
	}
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

func TestRequests(t *testing.T) {
	ts := start(t, echo)
	for _, c := range []struct {
		name, req string
		code      int
		body      string
		engine    string
		closed    bool
		headers   map[string]string
		closeSaid bool // the answer says Connection: close
	}{
		{name: "get", req: "GET /a?b=c HTTP/1.1\r\nHost: h\r\n\r\n", code: 200, body: "GET /a?b=c ", engine: "fast",
			headers: map[string]string{"X-Host": "h", "X-Header-Host": "", "X-Content-Length": "0"}},
		{name: "post", req: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", code: 200, body: "POST /p hello", engine: "fast",
			headers: map[string]string{"X-Content-Length": "5"}},
		{name: "chunked", req: "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
			code: 200, body: "POST /c hello world", engine: "fast",
			headers: map[string]string{"X-Content-Length": "-1", "X-Transfer-Encoding": "chunked"}},
		{name: "same length twice", req: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", code: 200, body: "POST /p ok", engine: "fast"},
		{name: "absolute form", req: "GET http://other/x HTTP/1.1\r\nHost: h\r\n\r\n", code: 200, body: "GET http://other/x ", engine: "fast",
			headers: map[string]string{"X-Host": "other"}},
		{name: "escaped path", req: "GET /a%20b HTTP/1.1\r\nHost: h\r\n\r\n", code: 200, body: "GET /a%20b ", engine: "fast"},
		{name: "connection close", req: "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", code: 200, engine: "fast", closed: true, closeSaid: true},
		{name: "http/1.0", req: "GET /old HTTP/1.0\r\n\r\n", code: 200, body: "GET /old ", engine: "std", closed: true},
		{name: "upgrade", req: "GET /u HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", code: 200, body: "GET /u ", engine: "std"},
		{name: "large head", req: "GET /big HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", code: 200, body: "GET /big ", engine: "std"},
		// As many bytes as net/http reads before it gives up (its
		// MaxHeaderBytes and 4 KiB), so that none is left unread when it
		// closes (which would reset the connection under the answer).
		{name: "oversized head", req: "GET /big HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("a", 1<<20+4096-35), code: 431, closed: true},
		{name: "TE and CL", req: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", code: 400, closed: true},
		{name: "two lengths", req: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", code: 400, closed: true},
		{name: "obs-fold", req: "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", code: 400, closed: true},
		{name: "space before colon", req: "GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n", code: 400, closed: true},
		{name: "control char", req: "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n", code: 400, closed: true},
		{name: "no host", req: "GET / HTTP/1.1\r\n\r\n", code: 400, closed: true},
		{name: "bad target", req: "GET nohost HTTP/1.1\r\nHost: h\r\n\r\n", code: 400, closed: true},
		{name: "bad chunk", req: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", code: 400, engine: "fast", closed: true},
		{name: "TE gzip", req: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", code: 501, closed: true},
		{name: "bad expectation", req: "POST / HTTP/1.1\r\nHost: h\r\nExpect: later\r\nContent-Length: 1\r\n\r\nx", code: 417, closed: true},
		{name: "body over limit, drained", req: "POST /limit HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("x", 1000), code: 413, engine: "fast"},
		{name: "body over limit, too large to drain", req: "POST /limit HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n" + strings.Repeat("x", 1000000), code: 413, engine: "fast", closed: true, closeSaid: true},
		{name: "unread body drained", req: "POST /noread HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", code: 200, body: "not read", engine: "fast"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := ts.dial(t)
			go func() { _, _ = io.WriteString(cl.c, c.req) }() // a large request and its answer cross
			a := cl.read()
			if a.StatusCode != c.code {
				t.Fatalf("status %d, want %d (%s)", a.StatusCode, c.code, a.body)
			}
			if c.body != "" && a.body != c.body {
				t.Errorf("body %q, want %q", a.body, c.body)
			}
			if got := a.Header.Get(engineHeader); got != c.engine {
				t.Errorf("served by %q, want %q", got, c.engine)
			}
			for k, v := range c.headers {
				if got := a.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if c.closeSaid && !a.Close {
				t.Error("answer does not say Connection: close")
			}
			if c.closed {
				if !cl.closed() {
					t.Error("connection kept open")
				}
				return
			}
			// The connection still serves.
			cl.send("GET /again HTTP/1.1\r\nHost: h\r\n\r\n")
			if a := cl.read(); a.StatusCode != 200 || a.body != "GET /again " {
				t.Errorf("next request: %d %q", a.StatusCode, a.body)
			}
		})
	}
}

// TestSmuggledRequestNotServed sends a request whose framing is ambiguous
// with a second request hidden in its body: the server must refuse the
// first and never answer the second.
func TestSmuggledRequestNotServed(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		echo(w, r)
	})
	for _, req := range []string{
		"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: h\r\nX: y\r\n Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		cl := ts.dial(t)
		cl.send(req)
		if a := cl.read(); a.StatusCode/100 != 4 && a.StatusCode != 501 {
			t.Errorf("%q: status %d, want a refusal", req, a.StatusCode)
		}
		if !cl.closed() {
			t.Errorf("%q: connection kept open", req)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) > 0 {
		t.Errorf("handler served %q", seen)
	}
}

func TestPipelinedInOrder(t *testing.T) {
	ts := start(t, echo)
	cl := ts.dial(t)
	var reqs strings.Builder
	var want []string
	for i := range 50 {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&reqs, "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", i)
			want = append(want, fmt.Sprintf("GET /%d ", i))
		case 1:
			b := strings.Repeat("b", i)
			fmt.Fprintf(&reqs, "POST /%d HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", i, len(b), b)
			want = append(want, fmt.Sprintf("POST /%d %s", i, b))
		case 2:
			fmt.Fprintf(&reqs, "PUT /%d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", i)
			want = append(want, fmt.Sprintf("PUT /%d ab", i))
		}
	}
	// The last request closes the connection: everything before it must
	// still be answered, in order.
	reqs.WriteString("GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	want = append(want, "GET /last ")
	cl.send(reqs.String())
	for i, w := range want {
		a := cl.read()
		if a.body != w || a.Header.Get(engineHeader) != "fast" {
			t.Fatalf("answer %d: %q by %q, want %q by fast", i, a.body, a.Header.Get(engineHeader), w)
		}
	}
	if !cl.closed() {
		t.Error("connection kept open after Connection: close")
	}
}

// TestPipelinedHandOver checks that answers the fast server owes are sent
// before a connection is handed to net/http.
func TestPipelinedHandOver(t *testing.T) {
	ts := start(t, echo)
	cl := ts.dial(t)
	cl.send("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.0\r\n\r\n")
	for i, w := range []struct{ body, engine string }{{"GET /1 ", "fast"}, {"GET /2 ", "fast"}, {"GET /3 ", "std"}} {
		if a := cl.read(); a.body != w.body || a.Header.Get(engineHeader) != w.engine {
			t.Fatalf("answer %d: %q by %q, want %q by %q", i, a.body, a.Header.Get(engineHeader), w.body, w.engine)
		}
	}
}

func TestExpectContinue(t *testing.T) {
	ts := start(t, echo)
	cl := ts.dial(t)
	cl.send("POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	line, err := cl.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q, %v; want 100 Continue", line, err)
	}
	if blank, _ := cl.br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("100 Continue followed by %q", blank)
	}
	cl.send("body")
	if a := cl.read(); a.StatusCode != 200 || a.body != "POST /e body" {
		t.Fatalf("answer %d %q", a.StatusCode, a.body)
	}

	// A handler that answers without reading gets no 100 Continue sent,
	// and the connection closes: the client may never send that body.
	cl = ts.dial(t)
	cl.send("POST /noread HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	if a := cl.read(); a.StatusCode != 200 || !a.Close {
		t.Fatalf("answer %d, close %v", a.StatusCode, a.Close)
	}
	if !cl.closed() {
		t.Error("connection kept open")
	}
}

func TestLeadingEmptyLines(t *testing.T) {
	ts := start(t, echo)
	cl := ts.dial(t)
	cl.send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, w := range []string{"POST /a x", "GET /b "} {
		if a := cl.read(); a.body != w {
			t.Fatalf("answer %q, want %q", a.body, w)
		}
	}
}

func TestResponses(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			w.Write([]byte("part1,"))
			w.(http.Flusher).Flush()
			w.Write([]byte("part2"))
		case "/big":
			w.Write([]byte(strings.Repeat("z", 200<<10)))
		case "/declared":
			w.Header().Set("Content-Length", "5")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			w.Write([]byte("12345"))
			if _, err := w.Write([]byte("6")); !errors.Is(err, http.ErrContentLength) {
				panic(fmt.Sprintf("write past Content-Length: %v", err))
			}
		case "/short":
			w.Header().Set("Content-Length", "5")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			w.Write([]byte("123"))
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrBodyNotAllowed) {
				panic(fmt.Sprintf("write to 204: %v", err))
			}
		case "/header-injection":
			w.Header().Set("X-Evil", "a\r\nSet-Cookie: b")
			w.Write([]byte("ok"))
		case "/panic":
			panic("boom")
		default:
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("hello"))
		}
	})
	for _, c := range []struct {
		path, body string
		code       int
		chunked    bool
		closed     bool
		check      func(*testing.T, answer)
	}{
		{path: "/", body: "hello", code: 200, check: func(t *testing.T, a answer) {
			if a.ContentLength != 5 || a.Header.Get("Date") == "" || a.Header.Get("Content-Type") != "text/plain" {
				t.Errorf("length %d, headers %v", a.ContentLength, a.Header)
			}
		}},
		{path: "/stream", body: "part1,part2", code: 200, chunked: true},
		{path: "/big", body: strings.Repeat("z", 200<<10), code: 200, chunked: true},
		{path: "/declared", body: "12345", code: 200},
		{path: "/nocontent", code: 204},
		{path: "/header-injection", body: "ok", code: 200, check: func(t *testing.T, a answer) {
			if a.Header.Get("Set-Cookie") != "" || a.Header.Get("X-Evil") != "a  Set-Cookie: b" {
				t.Errorf("headers %v", a.Header)
			}
		}},
	} {
		t.Run(c.path, func(t *testing.T) {
			cl := ts.dial(t)
			cl.send("GET " + c.path + " HTTP/1.1\r\nHost: h\r\n\r\n")
			a := cl.read()
			if a.StatusCode != c.code || a.body != c.body {
				t.Fatalf("answer %d %.40q, want %d %.40q", a.StatusCode, a.body, c.code, c.body)
			}
			if chunked := len(a.TransferEncoding) > 0; chunked != c.chunked {
				t.Errorf("chunked %v, want %v", chunked, c.chunked)
			}
			if c.check != nil {
				c.check(t, a)
			}
			cl.send("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
			if a := cl.readFor(&http.Request{Method: "HEAD"}); a.StatusCode != 200 || a.ContentLength != 5 || a.body != "" {
				t.Errorf("next request: %d, length %d, body %q", a.StatusCode, a.ContentLength, a.body)
			}
		})
	}
	t.Run("/short", func(t *testing.T) {
		cl := ts.dial(t)
		cl.send("GET /short HTTP/1.1\r\nHost: h\r\n\r\n")
		resp, err := http.ReadResponse(cl.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("short body read %q, %v; want the connection closed early", b, err)
		}
	})
	t.Run("/panic", func(t *testing.T) {
		cl := ts.dial(t)
		cl.send("GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /panic HTTP/1.1\r\nHost: h\r\n\r\n")
		if a := cl.read(); a.body != "hello" {
			t.Errorf("answer before the panic: %q", a.body)
		}
		if !cl.closed() {
			t.Error("connection kept open after a panic")
		}
	})
}

func TestTimeouts(t *testing.T) {
	ts := start(t, echo, func(s *http1.Server) {
		s.ReadHeaderTimeout = 200 * time.Millisecond
		s.IdleTimeout = 200 * time.Millisecond
	})
	idle := ts.dial(t)
	idle.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	idle.read()
	slowHead := ts.dial(t)
	slowHead.send("GET / HTTP/1.1\r\nHost: h\r\n")
	silent := ts.dial(t)
	for name, cl := range map[string]*client{"idle": idle, "slow head": slowHead, "silent": silent} {
		if !cl.closed() {
			t.Errorf("%s connection kept open", name)
		}
	}
}

// TestRequestContext checks that a request's context ends when its
// handler returns, as with net/http.
func TestRequestContext(t *testing.T) {
	ctxs := make(chan context.Context, 1)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		ctxs <- r.Context()
		if r.Context().Value(http.LocalAddrContextKey) == nil {
			w.WriteHeader(500)
		}
	})
	cl := ts.dial(t)
	cl.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if a := cl.read(); a.StatusCode != 200 {
		t.Fatalf("status %d", a.StatusCode)
	}
	select {
	case <-(<-ctxs).Done():
	case <-time.After(5 * time.Second):
		t.Fatal("request context not done after its handler returned")
	}
}

func TestShutdownDrains(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		w.Write([]byte("done"))
	})
	idle := ts.dial(t)
	idle.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	idle.read()
	busy := ts.dial(t)
	busy.send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-entered

	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(context.Background()) }()
	if !idle.closed() {
		t.Error("idle connection kept open during shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("shutdown returned %v with a request in flight", err)
	default:
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Error("new connection accepted during shutdown")
	}
	close(release)
	a := busy.read()
	if a.StatusCode != 200 || a.body != "done" || !a.Close {
		t.Errorf("in-flight answer %d %q, close %v", a.StatusCode, a.body, a.Close)
	}
	if !busy.closed() {
		t.Error("connection kept open after shutdown")
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestShutdownGivesUp(t *testing.T) {
	entered := make(chan struct{})
	canceled := make(chan struct{})
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
		close(canceled)
	})
	cl := ts.dial(t)
	cl.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown: %v, want deadline exceeded", err)
	}
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Error("handler's context not canceled when shutdown gave up")
	}
	if !cl.closed() {
		t.Error("connection kept open")
	}
}

// TestConcurrentClientsAndShutdown runs keep-alive, pipelining and
// handed-over clients at once, shuts down in the middle of it, and checks
// that no goroutine of the server outlives it (run it with -race).
func TestConcurrentClientsAndShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http1.Server{Handler: http.HandlerFunc(echo), Fallback: &http.Server{Handler: http.HandlerFunc(echo)}}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 8 {
		wg.Go(func() {
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					return // shut down
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				proto := "HTTP/1.1"
				if i%4 == 3 {
					proto = "HTTP/1.0"
				}
				fmt.Fprintf(c, "POST /%d/%d %s\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiGET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", i, j, proto)
				_, _ = io.Copy(io.Discard, c)
				c.Close()
			}
		})
	}
	// Some answers before the shutdown, then shut down under load.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("answer %v, %v", resp, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	close(stop)
	wg.Wait()
	c.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("serve: %v", err)
	}
	// Goroutines end a little after their connections: wait, bounded.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after shutdown:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestNetHTTPClient runs Go's own client against the server: keep-alive,
// chunked uploads, Expect: 100-continue, concurrency.
func TestNetHTTPClient(t *testing.T) {
	ts := start(t, echo)
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second, MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 25 {
				body := strings.Repeat(fmt.Sprint(i), j*100)
				// An io.Reader of unknown length makes the client send chunks.
				req, _ := http.NewRequest("POST", "http://"+ts.addr+"/p", io.MultiReader(strings.NewReader(body)))
				if j%2 == 0 {
					req.Header.Set("Expect", "100-continue")
				}
				resp, err := hc.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "POST /p "+body || resp.Header.Get(engineHeader) != "fast" || resp.Header.Get("X-Transfer-Encoding") != "chunked" {
					t.Errorf("answer %q by %q, TE %q", b, resp.Header.Get(engineHeader), resp.Header.Get("X-Transfer-Encoding"))
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestKeepAliveClientsYield runs clients that each wait for an answer
// before sending the next request, on one P, so that connections yield
// for their next request (conn.yieldForRequest) rather than wait in the
// poller: every request is answered, in order, including heads that come
// in two pieces after such a yield, and the idle timeout still closes the
// connections once the clients stop.
func TestKeepAliveClientsYield(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ts := start(t, echo, func(s *http1.Server) { s.IdleTimeout = 300 * time.Millisecond })
	const conns, reqs = 8, 300
	clients := make([]*client, conns)
	for i := range clients {
		clients[i] = ts.dial(t)
	}
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Go(func() {
			for j := range reqs {
				body := fmt.Sprintf("%d-%d", i, j)
				req := fmt.Sprintf("POST /c%d HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", i, len(body), body)
				if j%50 == 49 {
					// The head in two pieces: the first may be all a
					// read that does not wait finds.
					half := len(req) / 3
					if _, err := io.WriteString(cl.c, req[:half]); err != nil {
						errs <- err
						return
					}
					time.Sleep(2 * time.Millisecond)
					req = req[half:]
				}
				if _, err := io.WriteString(cl.c, req); err != nil {
					errs <- err
					return
				}
				resp, err := http.ReadResponse(cl.br, nil)
				if err != nil {
					errs <- fmt.Errorf("client %d request %d: %w", i, j, err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				if want := fmt.Sprintf("POST /c%d %s", i, body); err != nil || string(b) != want {
					errs <- fmt.Errorf("client %d request %d: answer %q, %v; want %q", i, j, b, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, cl := range clients {
		if !cl.closed() {
			t.Errorf("client %d: idle connection kept open", i)
		}
	}
}
