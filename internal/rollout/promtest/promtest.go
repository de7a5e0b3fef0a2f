// Package promtest starts a real Prometheus (Debian's prometheus package)
// on a loopback port for end-to-end tests of metric-driven rollouts.
package promtest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Interval is the scrape and evaluation interval of the Prometheus Start
// runs.
const Interval = 500 * time.Millisecond

// Target is one scrape target: its address (host:port, or a URL whose
// scheme is dropped) and the labels Prometheus attaches to its series, as
// a Kubernetes scrape config's relabelling would (namespace, revision).
type Target struct {
	Addr   string
	Labels map[string]string
}

// Start runs prometheus scraping targets every Interval under the job
// name job, waits until every target has been scraped once, and returns
// the server's base URL; the test's end stops it. It skips the test when
// prometheus is not installed.
func Start(t testing.TB, job string, targets ...Target) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (apt-get install -y prometheus): skipping a test against a real Prometheus")
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\nscrape_configs:\n- job_name: %s\n  scrape_interval: %s\n  scrape_timeout: 400ms\n  static_configs:\n",
		Interval, Interval, job, Interval)
	for _, tg := range targets {
		a := tg.Addr
		if u, err := neturl.Parse(a); err == nil && u.Host != "" {
			a = u.Host
		}
		fmt.Fprintf(&cfg, "  - targets: [%q]\n", a)
		if len(tg.Labels) > 0 {
			cfg.WriteString("    labels:\n")
			for k, v := range tg.Labels {
				fmt.Fprintf(&cfg, "      %s: %q\n", k, v)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	url := "http://" + addr
	// Ready is not enough: target discovery reaches the scrape loop only
	// after a few seconds. Wait until every target was scraped.
	deadline := time.Now().Add(30 * time.Second)
	up := url + "/api/v1/query?query=" + neturl.QueryEscape(fmt.Sprintf(`up{job=%q} == 1`, job))
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := hc.Get(up)
		if err == nil {
			var out struct {
				Data struct{ Result []json.RawMessage }
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err == nil && len(out.Data.Result) == len(targets) {
				return url
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited: %v\n%s", err, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus on %s has not scraped its %d targets after 30s:\n%s", addr, len(targets), logs.String())
		}
	}
}
