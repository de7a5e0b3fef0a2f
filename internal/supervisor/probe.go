// Package supervisor runs one replica of a component as a child process:
// it starts the command with its environment and ports, runs readiness and
// liveness probes (HTTP, TCP or exec, with Kubernetes' periods and
// thresholds), restarts the process with exponential backoff when it exits
// or fails liveness, captures its logs, and stops it gracefully.
package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"time"
)

// Probe is a Kubernetes-style probe against the replica.
type Probe struct {
	HTTPGet *HTTPGetAction
	TCP     *TCPAction
	Exec    []string // command and args; success = exit 0

	InitialDelay     time.Duration
	Period           time.Duration // default 10s
	Timeout          time.Duration // default 1s
	SuccessThreshold int           // default 1
	FailureThreshold int           // default 3
}

// HTTPGetAction probes with GET; 200–399 is success.
type HTTPGetAction struct {
	Path string
	Port int
	// Header and Value, if set, must be in the answer: the replica's
	// identity, so a probe never takes another process that got the port
	// (a port handed out twice) for its own.
	Header, Value string
}

// TCPAction probes by opening a connection.
type TCPAction struct {
	Port int
}

func (p *Probe) withDefaults() Probe {
	q := *p
	if q.Period <= 0 {
		q.Period = 10 * time.Second
	}
	if q.Timeout <= 0 {
		q.Timeout = time.Second
	}
	if q.SuccessThreshold <= 0 {
		q.SuccessThreshold = 1
	}
	if q.FailureThreshold <= 0 {
		q.FailureThreshold = 3
	}
	return q
}

// check runs the probe once.
func (p *Probe) check(ctx context.Context, client *http.Client, env []string) error {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	switch {
	case p.HTTPGet != nil:
		url := "http://127.0.0.1:" + strconv.Itoa(p.HTTPGet.Port) + p.HTTPGet.Path
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: status %d", p.HTTPGet.Path, resp.StatusCode)
		}
		if h := p.HTTPGet.Header; h != "" && resp.Header.Get(h) != p.HTTPGet.Value {
			return fmt.Errorf("GET %s: port %d answers for another process (%s %q)", p.HTTPGet.Path, p.HTTPGet.Port, h, resp.Header.Get(h))
		}
		return nil
	case p.TCP != nil:
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(p.TCP.Port))
		if err != nil {
			return err
		}
		return c.Close()
	case len(p.Exec) > 0:
		cmd := exec.CommandContext(ctx, p.Exec[0], p.Exec[1:]...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("exec %v: %w: %s", p.Exec, err, truncate(out, 200))
		}
		return nil
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
