package main

import (
	"fmt"
	"io"
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

// results holds the closed-loop ("max") and rate-limited ("half") runs.
type results struct {
	Max, Half map[key]run
}

var protoLabel = map[string]string{"v1": "V1 REST", "v2": "V2 REST", "grpc": "V2 gRPC"}

// loadDir reads every <server>.<proto>.b<batch>.<max|half>.<hey|ghz> file.
func loadDir(dir string) (results, error) {
	res := results{Max: map[key]run{}, Half: map[key]run{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return res, err
	}
	for _, e := range entries {
		k, mode, tool, ok := parseName(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		r, err := parseFile(filepath.Join(dir, e.Name()), tool)
		if err != nil {
			return res, fmt.Errorf("%s: %w", e.Name(), err)
		}
		if mode == "max" {
			res.Max[k] = r
		} else {
			res.Half[k] = r
		}
	}
	if len(res.Max) == 0 {
		return res, fmt.Errorf("no result files in %s", dir)
	}
	return res, nil
}

func parseName(name string) (key, string, string, bool) {
	p := strings.Split(name, ".")
	if len(p) != 5 || !strings.HasPrefix(p[2], "b") {
		return key{}, "", "", false
	}
	b, err := strconv.Atoi(p[2][1:])
	if err != nil || (p[3] != "max" && p[3] != "half") || (p[4] != "hey" && p[4] != "ghz") {
		return key{}, "", "", false
	}
	if _, ok := protoLabel[p[1]]; !ok {
		return key{}, "", "", false
	}
	return key{Server: p[0], Proto: p[1], Batch: b}, p[3], p[4], true
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
	for _, m := range []map[key]run{r.Max, r.Half} {
		for _, x := range m {
			n += x.Bad
		}
	}
	return n
}

// writeRuns prints one row per server and case: both runs' numbers.
func writeRuns(w io.Writer, r results, md bool) {
	rows := [][]string{{"protocol", "batch", "server", "max rps", "p50", "p99", "half: target rps", "achieved rps", "p50", "p99", "ok", "non-2xx", "cut at end"}}
	for _, c := range r.cases() {
		for _, s := range []string{"bare", "ferry"} {
			k := key{Server: s, Proto: c.Proto, Batch: c.Batch}
			mx, ok := r.Max[k]
			if !ok {
				continue
			}
			h, haveHalf := r.Half[k]
			row := []string{protoLabel[c.Proto], strconv.Itoa(c.Batch), s, rps(mx.RPS), ms(mx.P50), ms(mx.P99)}
			if haveHalf {
				row = append(row, rps(mx.RPS/2), rps(h.RPS), ms(h.P50), ms(h.P99))
			} else {
				row = append(row, rps(mx.RPS/2), "-", "-", "-")
			}
			row = append(row, strconv.Itoa(mx.OK+h.OK), strconv.Itoa(mx.Bad+h.Bad), strconv.Itoa(mx.Cut+h.Cut))
			rows = append(rows, row)
		}
	}
	writeTable(w, rows, md)
}

// writeSummary prints Ferry against bare and the two targets per case.
func writeSummary(w io.Writer, r results, md bool) {
	rows := [][]string{{"protocol", "batch", "ferry/bare max rps", fmt.Sprintf("≥ %.0f %%", minRatio*100), "ferry p99 @ half", fmt.Sprintf("≤ %v", maxP99Lat)}}
	for _, c := range r.cases() {
		f, okF := r.Max[key{"ferry", c.Proto, c.Batch}]
		b, okB := r.Max[key{"bare", c.Proto, c.Batch}]
		row := []string{protoLabel[c.Proto], strconv.Itoa(c.Batch)}
		if okF && okB && b.RPS > 0 {
			ratio := f.RPS / b.RPS
			row = append(row, fmt.Sprintf("%.0f %%", ratio*100), verdict(ratio >= minRatio))
		} else {
			row = append(row, "-", "-")
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
