package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// run is one load-tool run, reduced to what the table shows.
type run struct {
	RPS      float64
	P50, P99 time.Duration
	OK       int // 2xx responses (hey) or OK statuses (ghz)
	Bad      int // non-2xx responses, non-OK statuses and transport errors
	// Cut counts calls ghz itself cancelled when the run's time was up: it
	// closes its connections with calls in flight, which fail Unavailable
	// "transport is closing". At most one per worker is counted here; any
	// more are in Bad.
	Cut int
	// CPU is the server's CPU time during the run (0 = not measured).
	CPU time.Duration
}

// requests is every request the run sent that got an answer or an error.
func (r run) requests() int { return r.OK + r.Bad + r.Cut }

// cpuPerRequest is the server's CPU time per request, or 0 if unknown.
func (r run) cpuPerRequest() time.Duration {
	if r.CPU <= 0 || r.requests() == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.requests())
}

// parseHey reads hey's default text summary. hey prints latencies in
// seconds with four decimals, so P50 and P99 have 0.1 ms resolution.
func parseHey(r io.Reader) (run, error) {
	var out run
	var haveRPS, haveP99 bool
	section := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "Requests/sec:"):
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")), 64)
			if err != nil {
				return run{}, fmt.Errorf("hey: bad Requests/sec line %q", line)
			}
			out.RPS, haveRPS = v, true
		case strings.HasSuffix(line, ":") && !strings.Contains(line, " in "):
			section = line
		case strings.Contains(line, "% in ") && strings.HasSuffix(line, " secs"):
			pct, d, err := heyPercentile(line)
			if err != nil {
				return run{}, err
			}
			switch pct {
			case 50:
				out.P50 = d
			case 99:
				out.P99, haveP99 = d, true
			}
		case section == "Status code distribution:" && strings.HasPrefix(line, "["):
			code, n, err := bracketCount(line)
			if err != nil {
				return run{}, fmt.Errorf("hey: status line %q: %w", line, err)
			}
			if c, err := strconv.Atoi(code); err == nil && c >= 200 && c < 300 {
				out.OK += n
			} else {
				out.Bad += n
			}
		case section == "Error distribution:" && strings.HasPrefix(line, "["):
			n, _, err := bracketCount(line)
			if err != nil {
				return run{}, fmt.Errorf("hey: error line %q: %w", line, err)
			}
			c, err := strconv.Atoi(n)
			if err != nil || c < 0 {
				return run{}, fmt.Errorf("hey: error line %q: count %q", line, n)
			}
			out.Bad += c
		}
	}
	if err := sc.Err(); err != nil {
		return run{}, fmt.Errorf("hey: %w", err)
	}
	if !haveRPS {
		return run{}, fmt.Errorf("hey: no Requests/sec line (not a hey summary?)")
	}
	if !haveP99 && out.OK > 0 {
		return run{}, fmt.Errorf("hey: no 99%% latency line")
	}
	return out, nil
}

// heyPercentile parses "99%% in 0.0013 secs" (hey doubles the percent sign).
func heyPercentile(line string) (int, time.Duration, error) {
	pctStr, rest, _ := strings.Cut(line, "%")
	pct, err := strconv.Atoi(strings.TrimSpace(pctStr))
	if err != nil {
		return 0, 0, fmt.Errorf("hey: bad percentile line %q", line)
	}
	_, secs, _ := strings.Cut(rest, " in ")
	s, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(secs, " secs")), 64)
	if err != nil {
		return 0, 0, fmt.Errorf("hey: bad latency in %q", line)
	}
	return pct, time.Duration(s * float64(time.Second)), nil
}

// bracketCount splits "[200]\t1234 responses" into "200" and 1234, and
// "[20]\tPost ...: refused" into "20" and 0.
func bracketCount(line string) (string, int, error) {
	inner, rest, ok := strings.Cut(strings.TrimPrefix(line, "["), "]")
	if !ok {
		return "", 0, fmt.Errorf("no closing bracket")
	}
	fields := strings.Fields(rest)
	if len(fields) == 2 && fields[1] == "responses" {
		n, err := strconv.Atoi(fields[0])
		if err != nil || n < 0 {
			return "", 0, fmt.Errorf("bad count %q", fields[0])
		}
		return inner, n, nil
	}
	return inner, 0, nil
}

// ghzReport is the part of ghz's -O json report the table needs.
type ghzReport struct {
	Count   uint64  `json:"count"`
	RPS     float64 `json:"rps"`
	Latency []struct {
		Percentage int           `json:"percentage"`
		Latency    time.Duration `json:"latency"`
	} `json:"latencyDistribution"`
	Status  map[string]int `json:"statusCodeDistribution"`
	Errors  map[string]int `json:"errorDistribution"`
	Options struct {
		Concurrency int `json:"concurrency"`
	} `json:"options"`
}

// endOfRun are the errors of calls cut off by ghz closing its connections
// when the run's time is up.
var endOfRun = []string{"transport is closing", "the client connection is closing"}

// parseGhz reads ghz's JSON report (-O json). Latencies are nanoseconds.
func parseGhz(r io.Reader) (run, error) {
	var rep ghzReport
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		return run{}, fmt.Errorf("ghz: %w", err)
	}
	for _, n := range rep.Status {
		if n < 0 {
			return run{}, fmt.Errorf("ghz: negative count in the status distribution")
		}
	}
	out := run{RPS: rep.RPS}
	for _, l := range rep.Latency {
		switch l.Percentage {
		case 50:
			out.P50 = l.Latency
		case 99:
			out.P99 = l.Latency
		}
	}
	for code, n := range rep.Status {
		if code == "OK" {
			out.OK += n
		} else {
			out.Bad += n
		}
	}
	// ghz lists transport errors (connection refused, deadline) in the
	// error distribution and also under a status code; only count those
	// that have no status, so nothing is counted twice.
	if len(rep.Status) == 0 {
		for _, n := range rep.Errors {
			out.Bad += n
		}
	}
	if out.OK+out.Bad == 0 && rep.Count > 0 {
		out.Bad = int(rep.Count)
	}
	for msg, n := range rep.Errors {
		for _, e := range endOfRun {
			if n > 0 && strings.Contains(msg, e) {
				out.Cut += n
				break
			}
		}
	}
	out.Cut = max(min(out.Cut, rep.Options.Concurrency, out.Bad), 0)
	out.Bad -= out.Cut
	return out, nil
}
