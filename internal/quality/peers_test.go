package quality

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// peerReplica is one replica on loopback as ferry serve --quality-dir
// --quality-peers runs it: a predictor answering V1 predict with its
// label, behind the quality middleware with its own journal and peers.
type peerReplica struct {
	addr  string
	mon   *Monitor
	peers *Peers
	// feedback counts the feedback requests it got; forwarded, those
	// marked HeaderForwarded.
	feedback, forwarded atomic.Int64
}

type peerOptions struct {
	extra   []string // further peers (dead ones)
	timeout time.Duration
	token   string // required as "Authorization: Bearer TOKEN" when set
	host    string // IP to listen on (default 127.0.0.1)
	port    int    // port to listen on (default: any)
	// asName lists the peers as one host name the resolver answers with
	// every replica's IP (all on port), in place of their addresses.
	resolver Resolver
	name     string
}

// startPeerReplicas starts n replicas that list each other (themselves
// included, as a headless Service's name does) as peers.
func startPeerReplicas(t *testing.T, n int, o peerOptions) []*peerReplica {
	t.Helper()
	lns := make([]net.Listener, n)
	var addrs []string
	for i := range lns {
		host := o.host
		if host == "" {
			host = "127.0.0.1"
		}
		if o.host == "" && o.name != "" {
			host = "127.0.0." + strconv.Itoa(i+1)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(o.port)))
		if err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			t.Skipf("listen on %s: %v", host, err)
		}
		lns[i] = ln
		addrs = append(addrs, ln.Addr().String())
	}
	peerList := append(addrs, o.extra...)
	if o.name != "" {
		peerList = []string{net.JoinHostPort(o.name, strconv.Itoa(o.port))}
	}
	out := make([]*peerReplica, n)
	for i, ln := range lns {
		r := &peerReplica{addr: addrs[i]}
		m, err := Open(Config{Dir: t.TempDir(), Horizon: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		tcp := ln.Addr().(*net.TCPAddr)
		p, err := NewPeers(PeerConfig{Addrs: peerList, Host: tcp.IP.String(), Port: tcp.Port, Name: fmt.Sprintf("replica-%d", i),
			Timeout: o.timeout, Resolver: o.resolver})
		if err != nil {
			t.Fatal(err)
		}
		r.mon, r.peers = m, p
		label := i + 1
		predict := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `{"predictions":[%d]}`, label)
		})
		h := NewHandler(HandlerConfig{Monitor: m, Revision: fmt.Sprintf("rev-%d", i), Peers: p}).Middleware(predict)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if o.token != "" && req.Header.Get("Authorization") != "Bearer "+o.token {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			if _, ok := FeedbackPath(req.URL.Path); ok {
				r.feedback.Add(1)
				if req.Header.Get(HeaderForwarded) != "" {
					r.forwarded.Add(1)
				}
			}
			h.ServeHTTP(w, req)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		out[i] = r
	}
	return out
}

func (r *peerReplica) post(t *testing.T, path, body string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+r.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (r *peerReplica) predict(t *testing.T, id string, hdr ...string) {
	t.Helper()
	if code, b := r.post(t, "/v1/models/m:predict", `{"instances":[[1]]}`, append([]string{"X-Request-Id", id}, hdr...)...); code != http.StatusOK {
		t.Fatalf("predict %s on %s: %d %s", id, r.addr, code, b)
	}
}

func (r *peerReplica) feedbackOK(t *testing.T, path, body string, hdr ...string) FeedbackResponse {
	t.Helper()
	code, b := r.post(t, path, body, hdr...)
	if code != http.StatusOK {
		t.Fatalf("feedback to %s: %d %s", r.addr, code, b)
	}
	var fr FeedbackResponse
	if err := json.Unmarshal(b, &fr); err != nil {
		t.Fatal(err)
	}
	return fr
}

func TestPeersJoinFeedbackAcrossReplicas(t *testing.T) {
	reps := startPeerReplicas(t, 3, peerOptions{})
	for i := range 9 {
		reps[i%3].predict(t, fmt.Sprintf("p-%d", i))
	}
	var batch []string
	for i := range 9 {
		batch = append(batch, fmt.Sprintf(`{"id":"p-%d","truth":%d}`, i, i%3+1))
	}
	batch = append(batch, `{"id":"never","truth":1}`, `{"id":"p-1","truth":2}`)
	got := reps[0].feedbackOK(t, "/v2/models/m/feedback", "["+strings.Join(batch, ",")+"]")

	want := Counts{Received: 11, Joined: 9, Duplicate: 1, Unknown: 1}
	if got.Counts != want {
		t.Errorf("counts %+v, want %+v", got.Counts, want)
	}
	for i, res := range got.Outcomes[:9] {
		if wantRev := fmt.Sprintf("rev-%d", i%3); res.Outcome != Joined || res.Revision != wantRev {
			t.Errorf("record %d: %+v, want joined in %s", i, res, wantRev)
		}
	}
	if u := got.Outcomes[9]; u.ID != "never" || u.Outcome != Unknown || u.Error != "" {
		t.Errorf("unknown id: %+v, want unknown with no error (every peer answered)", u)
	}
	if d := got.Outcomes[10]; d.Outcome != Duplicate {
		t.Errorf("second feedback for p-1 in the batch: %+v, want duplicate", d)
	}

	// Counted once, by the replica the client sent the feedback to; each
	// replica's window holds what its own journal joined.
	if c, _ := reps[0].mon.Counts(""); c.Received != 11 || c.Joined != 9 || c.Unknown != 1 || c.Duplicate != 1 {
		t.Errorf("replica 0 counts %+v, want the merged outcomes", c)
	}
	for i, r := range reps[1:] {
		if c, _ := r.mon.Counts(""); c.Received != 0 || c.Unknown != 0 {
			t.Errorf("peer %d counted forwarded feedback: %+v", i+1, c)
		}
		if s := r.mon.Snapshots("m"); len(s) != 1 || s[0].Labelled != 3 {
			t.Errorf("peer %d windows %+v, want 3 labelled rows", i+1, s)
		}
	}

	// No loops: one request from the client, one forwarded to each peer.
	for i, r := range reps {
		wantFwd := int64(1)
		if i == 0 {
			wantFwd = 0
		}
		if f, fw := r.feedback.Load(), r.forwarded.Load(); f != 1 || fw != wantFwd {
			t.Errorf("replica %d got %d feedback requests (%d forwarded), want 1 (%d)", i, f, fw, wantFwd)
		}
	}

	// Feedback this replica knows all of goes nowhere else.
	reps[1].predict(t, "local")
	if got := reps[1].feedbackOK(t, "/v1/models/m:feedback", `{"id":"local","truth":2}`); got.Counts.Joined != 1 {
		t.Errorf("local feedback: %+v", got)
	}
	if f := reps[0].feedback.Load() + reps[2].feedback.Load(); f != 2 {
		t.Errorf("feedback the replica knew was forwarded: peers got %d requests in all, want 2", f)
	}

	// An unknown id sent again is unknown again, counted once each time.
	got = reps[2].feedbackOK(t, "/v1/models/m:feedback", `{"id":"never","truth":1}`)
	if got.Counts != (Counts{Received: 1, Unknown: 1}) {
		t.Errorf("unknown id again: %+v", got.Counts)
	}
	var total int64
	for _, r := range reps {
		c, _ := r.mon.Counts("")
		total += c.Unknown
	}
	if total != 2 {
		t.Errorf("unknown records counted %d times over the replicas, want 2", total)
	}
}

// hungListener accepts connections and never answers.
func hungListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestPeersDeadPeerDoesNotHang(t *testing.T) {
	hung := hungListener(t)
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	reps := startPeerReplicas(t, 2, peerOptions{extra: []string{hung, closed}, timeout: 300 * time.Millisecond})
	reps[1].predict(t, "known")

	start := time.Now()
	got := reps[0].feedbackOK(t, "/v1/models/m:feedback", `[{"id":"known","truth":2},{"id":"lost","truth":1}]`)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("feedback took %s with a peer that never answers, want about the 300ms timeout", d)
	}
	if k := got.Outcomes[0]; k.Outcome != Joined || k.Revision != "rev-1" {
		t.Errorf("record the live peer knows: %+v, want joined", k)
	}
	lost := got.Outcomes[1]
	if lost.Outcome != Unknown || !strings.Contains(lost.Error, hung+": no answer within 300ms") || !strings.Contains(lost.Error, closed+":") {
		t.Errorf("record no live replica knows: %+v, want unknown naming the peer that did not answer in time and the one that refused", lost)
	}
	if got.Counts != (Counts{Received: 2, Joined: 1, Unknown: 1}) {
		t.Errorf("counts %+v", got.Counts)
	}
	if reps[0].peers.failed.Load() != 2 || reps[0].peers.answered.Load() != 1 {
		t.Errorf("peer requests: %d answered, %d failed; want 1 and 2", reps[0].peers.answered.Load(), reps[0].peers.failed.Load())
	}
}

func TestPeersForwardTheClientsCredentials(t *testing.T) {
	reps := startPeerReplicas(t, 2, peerOptions{token: "s3cret"})
	auth := []string{"Authorization", "Bearer s3cret"}
	reps[1].predict(t, "a", auth...)
	got := reps[0].feedbackOK(t, "/v1/models/m:feedback", `{"id":"a","truth":2}`, auth...)
	if got.Outcomes[0].Outcome != Joined {
		t.Errorf("feedback with credentials, joined on the peer: %+v", got.Outcomes[0])
	}
	// Marked as forwarded, feedback still needs the credentials.
	if code, b := reps[1].post(t, "/v1/models/m:feedback", `{"id":"a","truth":2}`, HeaderForwarded, "replica-0"); code != http.StatusUnauthorized {
		t.Errorf("forwarded feedback without credentials: %d %s, want 401", code, b)
	}
	if code, _ := reps[0].post(t, "/v1/models/m:feedback", `{"id":"a","truth":2}`); code != http.StatusUnauthorized {
		t.Errorf("feedback without credentials: %d, want 401", code)
	}
}

// fakeResolver answers one name with fixed addresses, counting lookups.
type fakeResolver struct {
	name    string
	addrs   []string
	lookups atomic.Int64
}

func (f *fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	f.lookups.Add(1)
	if host != f.name {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return f.addrs, nil
}

// TestPeersByName lists the peers as one name that resolves to every
// replica (a headless Service): each replica, on an address of its own
// and the same port, skips itself and asks the others.
func TestPeersByName(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	res := &fakeResolver{name: "m-predictor-quality.default.svc.cluster.local", addrs: []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}}
	reps := startPeerReplicas(t, 3, peerOptions{name: res.name, port: port, resolver: res})
	reps[2].predict(t, "x")
	got := reps[0].feedbackOK(t, "/v1/models/m:feedback", `{"id":"x","truth":3}`)
	if got.Outcomes[0].Outcome != Joined || got.Outcomes[0].Revision != "rev-2" {
		t.Errorf("feedback by name: %+v", got.Outcomes[0])
	}
	if reps[0].forwarded.Load() != 0 || reps[1].forwarded.Load() != 1 || reps[2].forwarded.Load() != 1 {
		t.Errorf("forwarded to replica 0, 1, 2: %d %d %d; want 0 1 1 (itself skipped)", reps[0].forwarded.Load(), reps[1].forwarded.Load(), reps[2].forwarded.Load())
	}
	// Within the TTL the lookup is reused.
	reps[0].feedbackOK(t, "/v1/models/m:feedback", `{"id":"y","truth":3}`)
	if n := res.lookups.Load(); n != 1 {
		t.Errorf("%d lookups for two forwardings within the TTL, want 1", n)
	}

	// A name that does not resolve: the record says so.
	p, err := NewPeers(PeerConfig{Addrs: []string{"gone.example:8080"}, Resolver: res, Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(Config{Dir: t.TempDir(), Horizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h := NewHandler(HandlerConfig{Monitor: m, Peers: p}).Middleware(http.NotFoundHandler())
	w := do(h, http.MethodPost, "/v1/models/m:feedback", `{"id":"z","truth":1}`)
	var fr FeedbackResponse
	if err := json.Unmarshal(w.Body.Bytes(), &fr); err != nil || len(fr.Outcomes) != 1 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if o := fr.Outcomes[0]; o.Outcome != Unknown || !strings.Contains(o.Error, "resolve peer gone.example:8080") {
		t.Errorf("unresolved peers: %+v", o)
	}
}

func TestPeerConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		addrs []string
		err   string
	}{
		{[]string{"10.0.0.1:8080", "svc.ns.svc:8080", "[::1]:9"}, ""},
		{nil, "no peers"},
		{[]string{"svc.ns.svc"}, "want HOST:PORT"},
		{[]string{":8080"}, "want HOST:PORT"},
		{[]string{"svc:http"}, "bad port"},
		{[]string{"svc:0"}, "bad port"},
	} {
		c := PeerConfig{Addrs: tc.addrs}
		err := c.Validate()
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %v, want %q", tc.addrs, err, tc.err)
		}
	}
}

func TestMergeAnswers(t *testing.T) {
	ok := func(addr string, outs ...Outcome) Answer {
		fr := FeedbackResponse{Model: "m"}
		for i, o := range outs {
			fr.Outcomes = append(fr.Outcomes, Result{ID: strconv.Itoa(i), Outcome: o})
		}
		b, _ := json.Marshal(fr)
		return Answer{Addr: addr, Code: http.StatusOK, Quality: true, Body: b}
	}
	m, err := MergeAnswers(nil, []Answer{
		ok("a", Unknown, Joined),
		ok("b", Joined, Unknown),
		{Addr: "c", Err: errors.New("refused")},
		{Addr: "d", Code: http.StatusNotFound},
		{Addr: "e", Code: http.StatusRequestEntityTooLarge, Quality: true, Body: []byte(`{"error":"too big"}`)},
	})
	if err != nil || !m.Took || m.Response.Counts != (Counts{Received: 2, Joined: 2}) {
		t.Fatalf("merged %+v, %v", m, err)
	}
	if len(m.Errs) != 3 || m.Refusal == nil || m.Refusal.Addr != "e" {
		t.Errorf("errors %v, refusal %+v", m.Errs, m.Refusal)
	}
	if _, err := MergeAnswers(nil, []Answer{ok("a", Joined), ok("b", Joined, Joined)}); err == nil {
		t.Error("answers of different lengths merged")
	}
	if m, _ := MergeAnswers(nil, []Answer{{Addr: "c", Err: errors.New("x")}}); m.Took {
		t.Error("took with no answer")
	}
}
