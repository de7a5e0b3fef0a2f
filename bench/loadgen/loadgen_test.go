package main

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echoCheck answers 200 to the request loadgenConfig describes and 400 to
// anything else, so a wrong request shows as non-2xx answers.
func echoCheck(w http.ResponseWriter, r *http.Request) bool {
	b, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.Header.Get("X-Test") != "yes" || string(b) != `{"x":1}` ||
		r.URL.RawQuery != "q=1" {
		http.Error(w, "unexpected request", http.StatusBadRequest)
		return false
	}
	return true
}

func loadgenConfig(url string) Config {
	return Config{
		URL:      url + "/p?q=1",
		Header:   []string{"X-Test: yes", "Content-Type: application/json"},
		Body:     []byte(`{"x":1}`),
		Conns:    4,
		Duration: time.Second,
		Warmup:   200 * time.Millisecond,
		Timeout:  5 * time.Second,
		// A stall of the test machine (the race detector, packages tested
		// in parallel) must not leave requests unsent.
		LateGrace: 30 * time.Second,
	}
}

func TestOpenLoopSendsTheSchedule(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if echoCheck(w, r) {
			served.Add(1)
			w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer srv.Close()
	c := loadgenConfig(srv.URL)
	c.Rate = 1000
	res, err := Run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	// The schedule holds Rate × Duration sends in the measured second (one
	// fewer or more per connection at its edges), whatever the machine's
	// speed: a late send is still counted for its intended time.
	if res.Requests < 996 || res.Requests > 1004 || res.Errors != 0 || res.Non2xx != 0 {
		t.Fatalf("requests %d errors %d non-2xx %d (first error %v), want 1000±4, 0, 0",
			res.Requests, res.Errors, res.Non2xx, res.FirstErr)
	}
	// Answers that arrived in the measured second: the same, give or take
	// those in flight at its edges. An answer to a request sent in the
	// period that comes after its end (or to a warm-up request that comes
	// in it) took at most the longest latency, so at most that long's
	// worth of the schedule moves across an edge: on a busy machine (the
	// race detector, packages tested in parallel) that is tens of
	// milliseconds' worth, not a fixed 2 %.
	checkAnswered(t, &c, res)
	for name, h := range map[string]*Histogram{"latency": &res.Latency, "service": &res.Service, "lag": &res.Lag} {
		if h.Count() != res.Requests {
			t.Errorf("%s histogram holds %d values, want %d", name, h.Count(), res.Requests)
		}
	}
	if res.Latency.Quantile(.5) <= 0 || res.Latency.Max() < res.Service.Max() {
		t.Errorf("latency p50 %v max %v, service max %v", res.Latency.Quantile(.5), res.Latency.Max(), res.Service.Max())
	}
	// The warm-up's requests were sent too.
	if n := served.Load(); n < int64(res.Requests)+150 {
		t.Errorf("server answered %d requests, want the measured %d and about 200 of warm-up", n, res.Requests)
	}
}

func TestClosedLoop(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if echoCheck(w, r) {
			served.Add(1)
		}
	}))
	defer srv.Close()
	c := loadgenConfig(srv.URL)
	c.Duration, c.Warmup = 300*time.Millisecond, 0
	res, err := Run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.Non2xx != 0 || res.Latency.Count() != res.Requests {
		t.Fatalf("requests %d errors %d non-2xx %d latencies %d (first error %v)",
			res.Requests, res.Errors, res.Non2xx, res.Latency.Count(), res.FirstErr)
	}
	if res.Requests != uint64(served.Load()) {
		t.Errorf("measured %d requests, server answered %d", res.Requests, served.Load())
	}
}

// Every other answer is chunked (flushed in three pieces), the others carry
// a Content-Length, and one in five closes the connection: all must be read
// to their end for the next answer on the connection to parse.
func TestChunkedLengthAndClose(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !echoCheck(w, r) {
			return
		}
		i := n.Add(1)
		if i%5 == 0 {
			w.Header().Set("Connection", "close")
		}
		if i%2 == 0 {
			for range 3 {
				w.Write(bytes.Repeat([]byte("x"), 1000))
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Write(bytes.Repeat([]byte("y"), 5000))
	}))
	defer srv.Close()
	c := loadgenConfig(srv.URL)
	c.Rate, c.Duration = 500, 500*time.Millisecond
	res, err := Run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests < 246 || res.Errors != 0 || res.Non2xx != 0 {
		t.Fatalf("requests %d errors %d non-2xx %d (first error %v), want 250, 0, 0",
			res.Requests, res.Errors, res.Non2xx, res.FirstErr)
	}
}

func TestNon2xxCounted(t *testing.T) {
	var n, failed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !echoCheck(w, r) {
			return
		}
		if n.Add(1)%3 == 0 {
			failed.Add(1)
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	c := loadgenConfig(srv.URL)
	c.Rate, c.Duration, c.Warmup = 600, 500*time.Millisecond, 0
	res, err := Run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Non2xx != uint64(failed.Load()) || res.Requests != uint64(n.Load()) || res.Non2xx == 0 {
		t.Fatalf("non-2xx %d of %d, server failed %d of %d", res.Non2xx, res.Requests, failed.Load(), n.Load())
	}
}

// countAbove returns how many recorded values are certainly above d.
func countAbove(h *Histogram, d time.Duration) uint64 {
	var n uint64
	for i, c := range h.counts {
		if lo, _ := bucketRange(i); time.Duration(lo)*time.Microsecond > d {
			n += c
		}
	}
	return n
}

// A server that stalls once for 300 ms, on one connection sent 200
// requests a second: the request it holds waits 300 ms, and the 60 that the
// schedule meant to send meanwhile are charged the rest of the stall, from
// their intended send times. Measured from the actual send (service time),
// only the held request looks slow: that is coordinated omission.
func TestStallChargesTheRequestsItDelayed(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if echoCheck(w, r) && n.Add(1) == 50 {
			time.Sleep(300 * time.Millisecond)
		}
	}))
	defer srv.Close()
	c := loadgenConfig(srv.URL)
	c.Rate, c.Conns, c.Duration, c.Warmup = 200, 1, time.Second, 0
	res, err := Run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 || res.Errors != 0 || res.Non2xx != 0 {
		t.Fatalf("requests %d errors %d non-2xx %d (first error %v), want 200, 0, 0",
			res.Requests, res.Errors, res.Non2xx, res.FirstErr)
	}
	// Sends intended in the stall's first 200 ms wait at least 100 ms: 40.
	if got := countAbove(&res.Latency, 100*time.Millisecond); got < 35 {
		t.Errorf("%d latencies above 100 ms, want about 40 (p99 %v, max %v)", got, res.Latency.Quantile(.99), res.Latency.Max())
	}
	// (At most a couple more if the test machine itself stalls.)
	if got := countAbove(&res.Service, 250*time.Millisecond); got < 1 || got > 3 {
		t.Errorf("%d service times above 250 ms, want the one stalled request", got)
	}
	if res.Latency.Max() < 300*time.Millisecond {
		t.Errorf("max latency %v, want the stall's 300 ms", res.Latency.Max())
	}
}

func TestCommandLine(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if echoCheck(w, r) && n.Add(1) == 7 {
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer srv.Close()
	body := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(body, []byte(`{"x":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := run([]string{"-url", srv.URL + "/p?q=1", "-body", body, "-H", "X-Test: yes",
		"-rate", "200", "-c", "2", "-d", "200ms", "-warmup", "0s"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "1 non-2xx") {
		t.Errorf("error %v, want one non-2xx answer reported", err)
	}
	for _, want := range []string{"answered in 200ms = ", "unsent    0", "non-2xx   1", "errors    0", "latency   p50 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}

	for _, args := range [][]string{
		{"-url", "https://127.0.0.1/"},
		{"-url", srv.URL, "-c", "0"},
		{"-url", srv.URL, "-c", "5000"},
		{"-url", srv.URL, "-d", "1h"},
		{"-url", srv.URL, "-H", "Content-Length: 3"},
		{"-url", srv.URL, "-H", "no colon"},
		{"-url", srv.URL, "-rate", "-1"},
	} {
		if err := run(args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) accepted", args)
		}
	}
}

// A server slower than the rate: the run still ends about lateGrace after
// its duration, reports the rate the server achieved rather than the
// schedule's, counts the requests it never sent, and the command fails.
func TestServerBehindTheRate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echoCheck(w, r)
		time.Sleep(10 * time.Millisecond) // one connection: at most 100 answers a second
	}))
	defer srv.Close()
	c := loadgenConfig(srv.URL)
	c.Rate, c.Conns, c.Duration, c.Warmup, c.LateGrace = 300, 1, time.Second, 0, 0
	began := time.Now()
	res, err := Run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > c.Duration+lateGrace+3*time.Second {
		t.Errorf("the run took %v, want about %v", took, c.Duration+lateGrace)
	}
	if rps := res.RPS(); rps < 5 || rps > 110 {
		t.Errorf("rps %.1f, want what the server achieved (under 100), not the rate", rps)
	}
	if res.Unsent < 50 || res.Requests+res.Unsent > 300 {
		t.Errorf("%d answered and %d unsent of the 300 the schedule held", res.Requests, res.Unsent)
	}
	err = run([]string{"-url", srv.URL, "-rate", "300", "-c", "1", "-d", "500ms", "-warmup", "0s"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "fell behind the rate") {
		t.Errorf("the command: %v, want it to fail naming the backlog", err)
	}
}

// checkAnswered checks that an open-loop run's rate counts the answers that
// arrived in the measured period: those to the requests meant for it, less
// those that came after its end, plus warm-up ones that came in it. Either
// took at most about the longest latency, so at most that long's worth of
// the schedule moves across an edge.
func checkAnswered(t *testing.T, c *Config, res *Result) {
	t.Helper()
	edge := 20 + c.Rate*res.Latency.Max().Seconds()
	if math.Abs(float64(res.Completed)-float64(res.Requests)) > edge || res.Unsent != 0 {
		t.Errorf("%d answered in the period (%.1f rps), unsent %d; want %d ± %.0f and 0 (latency max %v)",
			res.Completed, res.RPS(), res.Unsent, res.Requests, edge, res.Latency.Max())
	}
}

// A server that holds every answer for 80 ms near the measured period's
// end (as a busy machine can): the answers held past the end are not
// counted in the rate, and the check allows for them.
func TestOpenLoopStallAtTheEnd(t *testing.T) {
	var n atomic.Int64
	var stallUntil atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !echoCheck(w, r) {
			return
		}
		// The 1150th send is meant for 950 ms into the measured second.
		if n.Add(1) == 1150 {
			stallUntil.Store(time.Now().Add(80 * time.Millisecond).UnixNano())
		}
		if d := time.Until(time.Unix(0, stallUntil.Load())); d > 0 {
			time.Sleep(d)
		}
	}))
	defer srv.Close()
	c := loadgenConfig(srv.URL)
	c.Rate = 1000
	res, err := Run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Completed+30 > res.Requests {
		t.Errorf("%d answered in the period of %d sent in it, want the ones held past its end left out", res.Completed, res.Requests)
	}
	checkAnswered(t, &c, res)
}
