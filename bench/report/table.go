package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets from the benchmark issue.
const (
	minRatio  = 0.70                 // Ferry max rps / bare max rps
	maxP99Lat = 1 * time.Millisecond // p99 at half of the max rps
)

// key names one load-test case: a server, a protocol and a batch size.
type key struct {
	Server string // "ferry" or "bare"
	Proto  string // "v1", "v2" or "grpc"
	Batch  int
}

// results holds the closed-loop ("max", one per round) and rate-limited
// ("half") runs.
type results struct {
	Max  map[key][]run
	Half map[key]run
}

// best is the closed-loop round with the highest rps.
func (r results) best(k key) (run, bool) {
	var out run
	for _, x := range r.Max[k] {
		if x.RPS > out.RPS {
			out = x
		}
	}
	return out, len(r.Max[k]) > 0
}

// totals sums the answer counts over every run of k.
func (r results) totals(k key) (ok, bad, cut int) {
	all := append(slices.Clone(r.Max[k]), r.Half[k])
	for _, x := range all {
		ok, bad, cut = ok+x.OK, bad+x.Bad, cut+x.Cut
	}
	return ok, bad, cut
}

var protoLabel = map[string]string{"v1": "V1 REST", "v2": "V2 REST", "grpc": "V2 gRPC"}

// loadDir reads every <server>.<proto>.b<batch>.<maxN|half>.<hey|ghz> file
// and the CPU time (microseconds) in the .cpu file beside it, if any.
func loadDir(dir string) (results, error) {
	res := results{Max: map[key][]run{}, Half: map[key]run{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return res, err
	}
	for _, e := range entries {
		k, mode, tool, ok := parseName(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		r, err := parseFile(path, tool)
		if err != nil {
			return res, fmt.Errorf("%s: %w", e.Name(), err)
		}
		if r.CPU, err = readCPU(path + ".cpu"); err != nil {
			return res, err
		}
		if mode == "max" {
			res.Max[k] = append(res.Max[k], r)
		} else {
			res.Half[k] = r
		}
	}
	if len(res.Max) == 0 {
		return res, fmt.Errorf("no result files in %s", dir)
	}
	return res, nil
}

// parseName splits a result file name; mode is "max" (for any round) or
// "half".
func parseName(name string) (key, string, string, bool) {
	p := strings.Split(name, ".")
	if len(p) != 5 || !strings.HasPrefix(p[2], "b") {
		return key{}, "", "", false
	}
	b, err := strconv.Atoi(p[2][1:])
	if err != nil || b < 0 || (p[4] != "hey" && p[4] != "ghz") {
		return key{}, "", "", false
	}
	mode := p[3]
	if round, ok := strings.CutPrefix(mode, "max"); ok {
		if n, err := strconv.Atoi(round); round != "" && (err != nil || n < 0) {
			return key{}, "", "", false
		}
		mode = "max"
	}
	if _, ok := protoLabel[p[1]]; !ok || (mode != "max" && mode != "half") {
		return key{}, "", "", false
	}
	return key{Server: p[0], Proto: p[1], Batch: b}, mode, p[4], true
}

// readCPU reads a CPU time in microseconds; a missing file is 0.
func readCPU(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	us, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || us < 0 {
		return 0, fmt.Errorf("%s: want a CPU time in microseconds, got %q", filepath.Base(path), b)
	}
	return time.Duration(us) * time.Microsecond, nil
}

func parseFile(path, tool string) (run, error) {
	f, err := os.Open(path)
	if err != nil {
		return run{}, err
	}
	defer f.Close()
	if tool == "ghz" {
		return parseGhz(f)
	}
	return parseHey(f)
}

// cases lists the (proto, batch) pairs present, in table order.
func (r results) cases() []key {
	var out []key
	for k := range r.Max {
		k.Server = ""
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	order := map[string]int{"v1": 0, "v2": 1, "grpc": 2}
	slices.SortFunc(out, func(a, b key) int {
		if a.Proto != b.Proto {
			return order[a.Proto] - order[b.Proto]
		}
		return a.Batch - b.Batch
	})
	return out
}

// badTotal sums the non-2xx / non-OK answers and errors over every run.
func (r results) badTotal() int {
	n := 0
	for _, runs := range r.Max {
		for _, x := range runs {
			n += x.Bad
		}
	}
	for _, x := range r.Half {
		n += x.Bad
	}
	return n
}

// writeRuns prints one row per server and case: the best closed-loop
// round, the half-rate run and the answer counts over all runs.
func writeRuns(w io.Writer, r results, md bool) {
	rows := [][]string{{"protocol", "batch", "server", "max rps", "p50", "p99", "CPU/req",
		"half: target rps", "achieved", "p50", "p99", "ok", "non-2xx", "cut at end"}}
	for _, c := range r.cases() {
		for _, s := range []string{"bare", "ferry"} {
			k := key{Server: s, Proto: c.Proto, Batch: c.Batch}
			mx, ok := r.best(k)
			if !ok {
				continue
			}
			row := []string{protoLabel[c.Proto], strconv.Itoa(c.Batch), s, rps(mx.RPS), ms(mx.P50), ms(mx.P99), us(mx.cpuPerRequest()),
				rps(float64(int(math.Round(mx.RPS)) / 2))}
			if h, ok := r.Half[k]; ok {
				row = append(row, rps(h.RPS), ms(h.P50), ms(h.P99))
			} else {
				row = append(row, "-", "-", "-")
			}
			okN, bad, cut := r.totals(k)
			rows = append(rows, append(row, strconv.Itoa(okN), strconv.Itoa(bad), strconv.Itoa(cut)))
		}
	}
	writeTable(w, rows, md)
}

// writeSummary prints Ferry against bare and the two targets per case.
// The CPU ratio (bare's CPU per request over Ferry's) estimates the rps
// ratio on a machine whose cores are not shared with other processes.
func writeSummary(w io.Writer, r results, md bool) {
	rows := [][]string{{"protocol", "batch", "ferry/bare max rps", fmt.Sprintf("≥ %.0f %%", minRatio*100),
		"bare/ferry CPU per req", "ferry p99 @ half", fmt.Sprintf("≤ %v", maxP99Lat)}}
	for _, c := range r.cases() {
		f, okF := r.best(key{"ferry", c.Proto, c.Batch})
		b, okB := r.best(key{"bare", c.Proto, c.Batch})
		row := []string{protoLabel[c.Proto], strconv.Itoa(c.Batch)}
		if okF && okB && b.RPS > 0 {
			ratio := f.RPS / b.RPS
			row = append(row, pct(ratio), verdict(ratio >= minRatio))
		} else {
			row = append(row, "-", "-")
		}
		if fc, bc := f.cpuPerRequest(), b.cpuPerRequest(); fc > 0 && bc > 0 {
			row = append(row, pct(float64(bc)/float64(fc)))
		} else {
			row = append(row, "-")
		}
		if h, ok := r.Half[key{"ferry", c.Proto, c.Batch}]; ok {
			row = append(row, ms(h.P99), verdict(h.P99 <= maxP99Lat && h.OK > 0))
		} else {
			row = append(row, "-", "-")
		}
		rows = append(rows, row)
	}
	writeTable(w, rows, md)
}

func verdict(ok bool) string {
	if ok {
		return "pass"
	}
	return "MISS"
}

func rps(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

func pct(v float64) string { return strconv.FormatFloat(v*100, 'f', 0, 64) + " %" }

func us(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 0, 64) + " µs"
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}

// writeTable writes rows (the first is the header) aligned for a terminal,
// or as a Markdown table.
func writeTable(w io.Writer, rows [][]string, md bool) {
	if md {
		for i, r := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
			if i == 0 {
				fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(r)))
			}
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t\n", strings.Join(r, "\t"))
	}
	tw.Flush()
}
