package router

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/server/http1"
)

// oneService is a router with one service whose predictor is be.
func oneService(t *testing.T, be string) *Router {
	t.Helper()
	r := New("example.com", nil)
	if err := r.Update(&Table{Domain: "example.com", Services: []*Service{
		{Name: "iris", Namespace: "default", Components: map[string]*Component{
			Predictor: {Targets: []Target{{Revision: "iris-predictor-1", Percent: 100, Latest: true, Backends: []string{be}}}},
		}},
	}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// serveIngress serves h with the http1 engine, as ferry up does.
func serveIngress(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http1.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	})
	return "http://" + ln.Addr().String()
}

// rawReplica accepts connections on loopback and runs answer on each
// request it reads from them; answer writes raw bytes and says whether
// the connection goes on. It returns the address and a count of
// connections accepted.
func rawReplica(t *testing.T, answer func(c net.Conn, req *http.Request, body string) bool) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					b, _ := io.ReadAll(req.Body)
					if !answer(c, req, string(b)) {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), &conns
}

func postTo(t *testing.T, url, host, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return resp, string(b)
}

// The hop sends what ReverseProxy sent: the request line and Host as the
// client sent them, end-to-end fields, X-Forwarded-*, not the fields of
// one connection; and answers with the replica's end-to-end fields and
// Ferry-Revision.
func TestHopForwardsFields(t *testing.T) {
	var seen atomic.Pointer[http.Request]
	var seenBody atomic.Value
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seenBody.Store(string(b))
		seen.Store(r.Clone(context.Background()))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Model", "iris")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		_, _ = io.WriteString(w, `{"predictions": [1]}`)
	}))
	defer be.Close()
	r := oneService(t, strings.TrimPrefix(be.URL, "http://"))
	in := serveIngress(t, r)
	resp, body := postTo(t, in+"/v1/models/iris:predict?x=1", "iris.default.example.com", `{"instances": [[1, 2]]}`,
		"Content-Type", "application/json", "X-Forwarded-For", "10.0.0.1", "Connection", "X-Secret",
		"X-Secret", "s", "X-Request-Id", "abc")
	if resp.StatusCode != 200 || body != `{"predictions": [1]}` {
		t.Fatalf("answer: %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get(HeaderRevision); got != "iris-predictor-1" {
		t.Errorf("%s: %q", HeaderRevision, got)
	}
	if resp.Header.Get("X-Model") != "iris" || resp.Header.Get("Content-Type") != "application/json" ||
		strings.Join(resp.Header.Values("Set-Cookie"), ";") != "a=1;b=2" {
		t.Errorf("answer fields: %v", resp.Header)
	}
	if resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("a hop-by-hop field of the replica came through: %v", resp.Header)
	}
	req := seen.Load()
	if req == nil {
		t.Fatal("the replica saw no request")
	}
	if seenBody.Load() != `{"instances": [[1, 2]]}` || req.ContentLength != 23 {
		t.Errorf("body: %q (%d)", seenBody.Load(), req.ContentLength)
	}
	if req.Host != "iris.default.example.com" || req.RequestURI != "/v1/models/iris:predict?x=1" || req.Method != "POST" {
		t.Errorf("request: %s %s Host %s", req.Method, req.RequestURI, req.Host)
	}
	h := req.Header
	if got := h.Get("X-Forwarded-For"); got != "10.0.0.1, 127.0.0.1" {
		t.Errorf("X-Forwarded-For: %q", got)
	}
	if h.Get("X-Forwarded-Host") != "iris.default.example.com" || h.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("X-Forwarded-Host/Proto: %v", h)
	}
	if h.Get("X-Secret") != "" || h.Get("Connection") != "" {
		t.Errorf("fields of the client's connection went to the replica: %v", h)
	}
	if h.Get("X-Request-Id") != "abc" || h.Get("Content-Type") != "application/json" {
		t.Errorf("end-to-end fields lost: %v", h)
	}
	if h.Get("User-Agent") != "Go-http-client/1.1" {
		t.Errorf("User-Agent: %q, want the client's", h.Get("User-Agent"))
	}
}

// A pooled connection the replica closed while idle is not an error the
// client sees: the request goes again on a new connection. Connections are
// reused otherwise, and one the replica answers "Connection: close" on is
// not.
func TestHopReusesAndRetries(t *testing.T) {
	var n atomic.Int32
	be, conns := rawReplica(t, func(c net.Conn, req *http.Request, body string) bool {
		i := n.Add(1)
		switch {
		case i == 3: // close after answering, without saying so
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return false
		case i == 5:
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
			return false
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	r := oneService(t, be)
	for i := range 7 {
		code, body, _ := get(t, r, "iris.default.example.com", "/v1/models/iris:predict")
		if code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i+1, code, body)
		}
	}
	// 1, 2, 3 on the first connection; 4 tried on it (closed), then on a
	// second with 5 (Connection: close); 6 and 7 on a third.
	if got := conns.Load(); got != 3 {
		t.Errorf("%d connections to the replica, want 3", got)
	}
	if got := n.Load(); got != 7 {
		t.Errorf("the replica answered %d requests, want 7", got)
	}
}

// Answers without a length: chunked (trailers kept, each chunk flushed)
// and until the connection closes.
func TestHopAnswerBodies(t *testing.T) {
	be, _ := rawReplica(t, func(c net.Conn, req *http.Request, body string) bool {
		switch req.URL.Path {
		case "/chunked":
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"+
				"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n")
			return true
		case "/eof":
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nuntil the end")
			return false
		case "/head":
			_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")
			return true
		case "/bad":
			_, _ = io.WriteString(c, "HTTP/1.1 2x0 what\r\n\r\n")
			return false
		case "/short":
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
			return false
		}
		_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: "+
			strconv.Itoa(len(body))+"\r\n\r\n"+body)
		return true
	})
	r := oneService(t, be)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "http://iris.default.example.com/chunked", strings.NewReader("{}"))
	r.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "hello, world" {
		t.Errorf("chunked: %d %q", rec.Code, rec.Body.String())
	}
	if got := rec.Header().Get(http.TrailerPrefix + "X-Sum"); got != "12" {
		t.Errorf("trailer: %q (%v)", got, rec.Header())
	}
	if code, body, _ := get(t, r, "iris.default.example.com", "/eof"); code != 200 || body != "until the end" {
		t.Errorf("until EOF: %d %q", code, body)
	}
	if code, body, _ := get(t, r, "iris.default.example.com", "/head"); code != 204 || body != "" {
		t.Errorf("204: %d %q", code, body)
	}
	if code, body, _ := get(t, r, "iris.default.example.com", "/echo"); code != 201 || body != "{}" {
		t.Errorf("after 100 Continue: %d %q", code, body)
	}
	if code, body, _ := get(t, r, "iris.default.example.com", "/bad"); code != 502 || !strings.Contains(body, "malformed answer") {
		t.Errorf("bad status line: %d %q", code, body)
	}
	// Cut short after the head went out: through a server, the client's
	// connection is cut, so it sees an error, not a short body.
	in := serveIngress(t, r)
	req, _ = http.NewRequest("POST", in+"/short", strings.NewReader("{}"))
	req.Host = "iris.default.example.com"
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Errorf("an answer cut short reached the client whole: %v", resp)
	}
}

// A routing update closes the pooled connections of replicas that left.
func TestHopUpdateClosesConnectionsOfGoneReplicas(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// The next read ends when the ingress closes the connection.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var b [1]byte
		if _, err := c.Read(b[:]); err == io.EOF {
			close(closed)
		}
	}()
	r := oneService(t, ln.Addr().String())
	if code, _, _ := get(t, r, "iris.default.example.com", "/"); code != 200 {
		t.Fatalf("status %d", code)
	}
	if err := r.Update(&Table{Domain: "example.com"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection to a replica no longer routed to stayed open")
	}
}

// With SetHopSocket, the hop reaches a replica on its Unix socket, and on
// its TCP address when the socket cannot be dialled.
func TestHopDialsTheReplicaSocket(t *testing.T) {
	answer := func(via string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, via) })
	}
	tcp := httptest.NewServer(answer("tcp"))
	defer tcp.Close()
	addr := strings.TrimPrefix(tcp.URL, "http://")
	sock := t.TempDir() + "/http.sock"
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	us := &httptest.Server{Listener: ln, Config: &http.Server{Handler: answer("socket")}}
	us.Start()
	defer us.Close()
	for _, c := range []struct{ path, want string }{{sock, "socket"}, {sock + ".gone", "tcp"}, {"", "tcp"}} {
		r := oneService(t, addr)
		var asked atomic.Value
		r.SetHopSocket(func(a string) string {
			asked.Store(a)
			return c.path
		})
		if code, body, _ := get(t, r, "iris.default.example.com", "/"); code != 200 || body != c.want {
			t.Errorf("socket %q: %d %q, want %q", c.path, code, body, c.want)
		}
		if asked.Load() != addr {
			t.Errorf("socket asked for %v, want %s", asked.Load(), addr)
		}
	}
}
