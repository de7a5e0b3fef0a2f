package quality

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Feedback across replicas. A prediction is journaled by the replica that
// answered it, but feedback can reach any replica: behind `ferry up` the
// ingress fans it out to all of them (internal/router), and behind a
// Kubernetes Service, which sends it to one pod, the replica itself does:
// with peers (Peers, ferry serve --quality-peers), the replica the client
// sent the feedback to joins what its own journal knows, forwards the
// records it does not know to every peer at once, and merges their answers
// with its own (MergeAnswers, the merge the ingress uses too), so a record
// is unknown only if no replica knew its id. Forwarded feedback carries
// HeaderForwarded: the peer answers from its own journal, never forwards it
// again and does not count it, so each record is counted once, by the
// replica the client sent it to, with its merged outcome.

// HeaderForwarded marks, by its presence, feedback a replica forwarded to
// its peers; its value names the replica that forwarded it.
const HeaderForwarded = "Ferry-Feedback-Forwarded"

// maxAnswerBytes bounds a replica's answer to fanned-out feedback: a batch
// of MaxBatch records with their ids and errors fits many times over.
const maxAnswerBytes = 64 << 20

// Answer is one replica's answer to feedback sent to it.
type Answer struct {
	Addr string
	Code int
	// Quality: the quality middleware answered (HeaderQuality), not a
	// server that does not monitor quality.
	Quality bool
	Body    []byte
	// Err: the replica could not be asked or its answer not read.
	Err error
}

// SendFeedback posts body to http://ADDR+uri for every address in addrs at
// once, with the headers in hdr, through rt, and returns their answers in
// the order of addrs. ctx bounds them all.
func SendFeedback(ctx context.Context, rt http.RoundTripper, addrs []string, uri string, body []byte, hdr http.Header) []Answer {
	out := make([]Answer, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() { out[i] = sendFeedback(ctx, rt, addr, uri, body, hdr) })
	}
	wg.Wait()
	return out
}

func sendFeedback(ctx context.Context, rt http.RoundTripper, addr, uri string, body []byte, hdr http.Header) Answer {
	a := Answer{Addr: addr}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+uri, bytes.NewReader(body))
	if err != nil {
		a.Err = err
		return a
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		a.Err = err
		return a
	}
	defer resp.Body.Close()
	a.Code, a.Quality = resp.StatusCode, resp.Header.Get(HeaderQuality) != ""
	a.Body, a.Err = io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	return a
}

// Merged is what the replicas sent one feedback body said, together.
type Merged struct {
	// Response merges the answers of every replica that took the
	// feedback, record by record (MergeFeedback); valid when Took.
	Response FeedbackResponse
	Took     bool
	// Refusal is the first refusal of the body by a replica's quality
	// middleware (400, 413: replicas refuse the same body alike).
	Refusal *Answer
	// Errs names each replica that did not take the feedback and why.
	Errs []error
}

// MergeAnswers merges the answers of replicas to one feedback body, with
// own (nil: none) as the answer of the replica merging them.
func MergeAnswers(own *FeedbackResponse, answers []Answer) (Merged, error) {
	var (
		m   Merged
		oks []FeedbackResponse
	)
	if own != nil {
		oks = append(oks, *own)
	}
	for i := range answers {
		a := &answers[i]
		switch {
		case a.Err != nil:
			m.Errs = append(m.Errs, fmt.Errorf("%s: %w", a.Addr, a.Err))
		case !a.Quality && (a.Code == http.StatusUnauthorized || a.Code == http.StatusForbidden):
			m.Errs = append(m.Errs, fmt.Errorf("%s: refused the credentials (HTTP %d)", a.Addr, a.Code))
		case !a.Quality:
			m.Errs = append(m.Errs, fmt.Errorf("%s: quality monitoring is off (HTTP %d)", a.Addr, a.Code))
		case a.Code == http.StatusOK:
			var fr FeedbackResponse
			if err := json.Unmarshal(a.Body, &fr); err != nil {
				m.Errs = append(m.Errs, fmt.Errorf("%s: %w", a.Addr, err))
				continue
			}
			oks = append(oks, fr)
		default:
			if m.Refusal == nil {
				m.Refusal = a
			}
			m.Errs = append(m.Errs, fmt.Errorf("%s: refused the feedback (HTTP %d): %.200s", a.Addr, a.Code, bytes.TrimSpace(a.Body)))
		}
	}
	if len(oks) == 0 {
		return m, nil
	}
	r, err := MergeFeedback(oks)
	if err != nil {
		return m, err
	}
	m.Response, m.Took = r, true
	return m, nil
}

// Defaults of PeerConfig.
const (
	DefaultPeerTimeout = 5 * time.Second
	DefaultPeerTTL     = 5 * time.Second
)

// Resolver looks host names up (net.Resolver does).
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// PeerConfig configures forwarding feedback to the other replicas.
type PeerConfig struct {
	// Addrs are the peers, host:port each. A host name is resolved to
	// every address it has (each ready pod of a Kubernetes headless
	// Service), again once TTL has passed.
	Addrs []string
	// Host and Port are where this replica listens (ferry serve --host,
	// --http-port): a peer address that is Host:Port, or when Host is
	// empty or unspecified (0.0.0.0) one of the machine's interface
	// addresses with Port, is this replica, left out.
	Host string
	Port int
	// Name names this replica in HeaderForwarded (default: the host name).
	Name string
	// Timeout bounds one forwarding, to every peer at once, lookups
	// included (DefaultPeerTimeout when 0).
	Timeout time.Duration
	// TTL is how long a resolution of Addrs is reused (DefaultPeerTTL
	// when 0).
	TTL time.Duration
	// Transport carries the forwarded requests (default: one of its own).
	Transport http.RoundTripper
	// Resolver looks host names up (net.DefaultResolver when nil).
	Resolver Resolver
	Logger   *slog.Logger
}

// Validate checks that every peer is host:port.
func (c *PeerConfig) Validate() error {
	if len(c.Addrs) == 0 {
		return errors.New("no peers")
	}
	for _, a := range c.Addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			return fmt.Errorf("peer %q: want HOST:PORT", a)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("peer %q: bad port", a)
		}
	}
	if c.Timeout < 0 || c.TTL < 0 {
		return errors.New("peer timeout and TTL must not be negative")
	}
	return nil
}

// Peers are the other replicas a replica forwards feedback to.
type Peers struct {
	cfg  PeerConfig
	self map[string]bool // this host's interface addresses

	mu       sync.Mutex // held while resolving: one lookup at a time
	resolved []string
	err      error
	at       time.Time

	answered, failed atomic.Int64 // forwarded requests, by result
}

// NewPeers validates cfg and returns its Peers.
func NewPeers(cfg PeerConfig) (*Peers, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultPeerTimeout
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultPeerTTL
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Transport == nil {
		cfg.Transport = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	if cfg.Name == "" {
		cfg.Name = "ferry" // the header's presence is what counts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Peers{cfg: cfg, self: map[string]bool{}}
	if ip := net.ParseIP(cfg.Host); ip != nil && !ip.IsUnspecified() {
		p.self[ip.String()] = true
		return p, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			p.self[n.IP.String()] = true
		}
	}
	return p, nil
}

// Resolve returns the peers' addresses (IP:port, this replica left out),
// looking their names up again once the last lookup is TTL old. With an
// error it returns what did resolve.
func (p *Peers) Resolve(ctx context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < p.cfg.TTL {
		return p.resolved, p.err
	}
	var (
		out  []string
		errs []error
	)
	for _, a := range p.cfg.Addrs {
		host, port, _ := net.SplitHostPort(a) // validated
		ips := []string{host}
		if net.ParseIP(host) == nil {
			var err error
			if ips, err = p.cfg.Resolver.LookupHost(ctx, host); err != nil {
				errs = append(errs, fmt.Errorf("resolve peer %s: %w", a, err))
				continue
			}
		}
		for _, ip := range ips {
			if parsed := net.ParseIP(ip); parsed != nil {
				ip = parsed.String()
			}
			if port == strconv.Itoa(p.cfg.Port) && p.self[ip] {
				continue
			}
			if addr := net.JoinHostPort(ip, port); !slices.Contains(out, addr) {
				out = append(out, addr)
			}
		}
	}
	p.resolved, p.err, p.at = out, errors.Join(errs...), time.Now()
	if ctx.Err() != nil {
		p.at = time.Time{} // a lookup cut short by the caller is not cached
	}
	return p.resolved, p.err
}

// forwardJSON is one forwarded record: the id and the truth as sent.
type forwardJSON struct {
	ID    string          `json:"id"`
	Truth json.RawMessage `json:"truth"`
}

// Forward asks the peers about the records of fb that own (this replica's
// results for fb, joined uncounted) has as unknown, merges their answers
// into own in place, and returns it. A record still unknown while a peer
// could not answer says so in its Error: the replica that journaled it
// may be the one that did not answer.
func (p *Peers) Forward(r *http.Request, model string, fb []Feedback, own []Result) []Result {
	var idx []int
	for i, x := range own {
		if x.Outcome == Unknown {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return own
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.Timeout)
	defer cancel()
	addrs, rerr := p.Resolve(ctx)
	var errs []error
	if rerr != nil {
		errs = append(errs, rerr)
	}
	if len(addrs) > 0 {
		sub := FeedbackResponse{Model: model, Outcomes: make([]Result, len(idx))}
		recs := make([]forwardJSON, len(idx))
		for j, i := range idx {
			sub.Outcomes[j] = own[i]
			recs[j] = forwardJSON{ID: fb[i].ID, Truth: truthJSON(fb[i])}
		}
		var body bytes.Buffer
		enc := json.NewEncoder(&body)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(recs) // ids are strings and truths JSON the decoder accepted
		hdr := http.Header{HeaderForwarded: {p.cfg.Name}}
		if auth := r.Header.Values("Authorization"); len(auth) > 0 {
			// The peer checks the client's credentials as its own
			// feedback route would.
			hdr["Authorization"] = auth
		}
		answers := SendFeedback(ctx, p.cfg.Transport, addrs, r.URL.RequestURI(), body.Bytes(), hdr)
		for i := range answers {
			a := &answers[i]
			if errors.Is(a.Err, context.DeadlineExceeded) {
				a.Err = fmt.Errorf("no answer within %s", p.cfg.Timeout)
			}
			if a.Err == nil && a.Quality && a.Code == http.StatusOK {
				p.answered.Add(1)
			} else {
				p.failed.Add(1)
			}
		}
		m, err := MergeAnswers(&sub, answers)
		if err != nil {
			errs = append(errs, err)
		} else {
			for j, i := range idx {
				own[i] = m.Response.Outcomes[j]
			}
			errs = append(errs, m.Errs...)
		}
	}
	if len(errs) == 0 {
		return own
	}
	err := errors.Join(errs...)
	p.cfg.Logger.Warn("feedback not asked of every peer", "model", model, "records", len(idx), "peers", len(addrs), "err", err)
	reason := "no replica that answered knows this id; " + strings.ReplaceAll(err.Error(), "\n", "; ")
	for _, i := range idx {
		if own[i].Outcome == Unknown && own[i].Error == "" {
			own[i].Error = reason
		}
	}
	return own
}

var descPeer = prometheus.NewDesc("ferry_quality_peer_requests_total",
	"Feedback requests forwarded to peer replicas, by result: answered, or failed (no answer in time, refused, or no quality monitoring there).",
	[]string{"result"}, nil)

// Describe implements prometheus.Collector.
func (p *Peers) Describe(ch chan<- *prometheus.Desc) { ch <- descPeer }

// Collect implements prometheus.Collector.
func (p *Peers) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descPeer, prometheus.CounterValue, float64(p.answered.Load()), "answered")
	ch <- prometheus.MustNewConstMetric(descPeer, prometheus.CounterValue, float64(p.failed.Load()), "failed")
}

var _ prometheus.Collector = (*Peers)(nil)
