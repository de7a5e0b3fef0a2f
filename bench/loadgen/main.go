// Command loadgen is an open-loop, constant-throughput HTTP/1.1 load
// generator in the spirit of wrk2, for latency at a fixed rate: it holds
// -c keep-alive connections, sends one fixed request (pre-serialised once)
// at -rate requests per second spread evenly over them, and measures each
// request from the time the schedule meant to send it to the end of its
// answer, so a server that stalls is charged for every request it delayed
// (coordinated omission). With -rate 0 it is a closed loop, each
// connection sending as soon as its last answer is in, to find the
// maximum rate. Requests sent during -warmup are checked but not measured.
//
//	loadgen -url http://127.0.0.1:8080/v1/models/m:predict -body req.json \
//	    -H 'Content-Type: application/json' -rate 10000 -c 16 -d 10s -warmup 2s
//
// It prints the answered rate, the errors and non-2xx answers, and three
// histograms (microsecond resolution, ≤ 1.6 % bucket width): latency from
// the intended send, service time from the actual send, and the send lag
// between the two (the generator's own delay). It exits 1 when any request
// failed or was answered outside 2xx.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// headers collects repeated -H flags.
type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	var hdr headers
	fs.StringVar(&c.URL, "url", "", "http://host:port/path to send to")
	fs.StringVar(&c.Method, "m", "", "method (default GET, or POST with -body)")
	fs.Var(&hdr, "H", "header field \"Name: value\" (repeatable)")
	body := fs.String("body", "", "file whose contents are the request body")
	fs.Float64Var(&c.Rate, "rate", 0, "requests per second over all connections; 0: closed loop, as fast as answered")
	fs.IntVar(&c.Conns, "c", 16, fmt.Sprintf("connections (at most %d)", maxConns))
	fs.DurationVar(&c.Duration, "d", 10*time.Second, "measured duration, after the warm-up")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "warm-up: sent and checked, not measured")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "limit for each answer and each connect")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.Header = hdr
	if *body != "" {
		b, err := os.ReadFile(*body)
		if err != nil {
			return err
		}
		c.Body = b
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Run(ctx, c)
	if err != nil {
		return err
	}
	report(stdout, &c, res)
	if res.Unsent > 0 {
		return fmt.Errorf("the server fell behind the rate: %d requests were still unsent %s after the run, so the latencies leave out the slowest", res.Unsent, lateGrace)
	}
	if res.Errors > 0 || res.Non2xx > 0 {
		return fmt.Errorf("%d failed requests and %d non-2xx answers (first error: %v)",
			res.Errors, res.Non2xx, res.FirstErr)
	}
	return nil
}

// report prints a result, one fact per line, the first word naming it.
func report(w io.Writer, c *Config, r *Result) {
	target := "closed loop"
	if c.Rate > 0 {
		target = fmt.Sprintf("%.0f rps target", c.Rate)
	}
	fmt.Fprintf(w, "run       %s, %d connections, %s measured after %s warm-up\n", target, c.Conns, c.Duration, c.Warmup)
	fmt.Fprintf(w, "requests  %d answered in %s = %.1f rps\n", r.Completed, r.Period, r.RPS())
	fmt.Fprintf(w, "unsent    %d\n", r.Unsent)
	fmt.Fprintf(w, "non-2xx   %d\n", r.Non2xx)
	fmt.Fprintf(w, "errors    %d\n", r.Errors)
	line := func(name string, h *Histogram) {
		ms := func(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()*1e3) }
		fmt.Fprintf(w, "%-9s p50 %s p90 %s p99 %s p99.9 %s max %s ms\n", name,
			ms(h.Quantile(.5)), ms(h.Quantile(.9)), ms(h.Quantile(.99)), ms(h.Quantile(.999)), ms(h.Max()))
	}
	line("latency", &r.Latency)
	line("service", &r.Service)
	line("send-lag", &r.Lag)
}
