package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFiles(t *testing.T) {
	tests := []struct {
		file string
		tool string
		want run
	}{
		{"bare.v2.b1.max.hey", "hey", run{RPS: 31598.0770, P50: 200 * time.Microsecond, P99: 1300 * time.Microsecond, OK: 63332}},
		{"bare.v2.b1.half.hey", "hey", run{RPS: 397.4, P50: 300 * time.Microsecond, P99: 1200 * time.Microsecond, OK: 796}},
		{"hey-errors.txt", "hey", run{Bad: 20}},
		{"bare.grpc.b1.max.ghz", "ghz", run{RPS: 14949.008018485161, P50: 374358, P99: 3549339, OK: 29909}},
		{"ghz-errors.json", "ghz", run{RPS: 2000.7422753841677, Bad: 10}},
		{"ferry.grpc.b64.max.ghz", "ghz", run{RPS: 8588.854000330837, P50: 2339914, P99: 11677103, OK: 17161, Cut: 32}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got, err := parseFile(filepath.Join("testdata", tc.file), tc.tool)
			if err != nil {
				t.Fatal(err)
			}
			if tc.file == "bare.v2.b1.half.hey" || tc.file == "hey-errors.txt" {
				got.RPS, tc.want.RPS = 0, 0 // checked by the rounding-free cases above
			}
			if !durClose(got.P50, tc.want.P50) || !durClose(got.P99, tc.want.P99) {
				t.Errorf("latencies = %v/%v, want %v/%v", got.P50, got.P99, tc.want.P50, tc.want.P99)
			}
			got.P50, got.P99, tc.want.P50, tc.want.P99 = 0, 0, 0, 0
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// durClose allows for the float seconds hey prints.
func durClose(a, b time.Duration) bool { return (a - b).Abs() < time.Microsecond }

func TestParseHeyRejectsOtherText(t *testing.T) {
	for _, in := range []string{"", "hello\n", "Requests/sec:\tfast\n", "Requests/sec:\t10\nStatus code distribution:\n  [200]\t5 responses\n"} {
		if _, err := parseHey(strings.NewReader(in)); err == nil {
			t.Errorf("parseHey(%q) = nil error", in)
		}
	}
}

func TestParseGhzRejectsOtherText(t *testing.T) {
	if _, err := parseGhz(strings.NewReader("Summary:\n  Count: 3\n")); err == nil {
		t.Error("parseGhz accepted a text summary")
	}
}

func TestParseName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
		k    key
		mode string
	}{
		{"ferry.grpc.b64.half.ghz", true, key{"ferry", "grpc", 64}, "half"},
		{"bare.v1.b1.max.hey", true, key{"bare", "v1", 1}, "max"},
		{"bare.v1.b1.max12.hey", true, key{"bare", "v1", 1}, "max"},
		{"bare.v1.b1.maxx.hey", false, key{}, ""},
		{"bare.v1.b1.max1.hey.cpu", false, key{}, ""},
		{"bare.v3.b1.max.hey", false, key{}, ""},
		{"bare.v1.bx.max.hey", false, key{}, ""},
		{"bare.v1.b1.mid.hey", false, key{}, ""},
		{"bare.v1.b1.max.txt", false, key{}, ""},
		{"ferry.log", false, key{}, ""},
	}
	for _, tc := range tests {
		k, mode, _, ok := parseName(tc.name)
		if ok != tc.ok || k != tc.k || mode != tc.mode {
			t.Errorf("parseName(%q) = %v %q %v, want %v %q %v", tc.name, k, mode, ok, tc.k, tc.mode, tc.ok)
		}
	}
}

// TestTable builds a results directory with two closed-loop rounds and a
// half-rate run per server for one case, and checks the rows, the ratios
// and the verdicts printed.
func TestTable(t *testing.T) {
	dir := t.TempDir()
	heyOut := func(rps, p99 string) string {
		return "Summary:\n  Requests/sec:\t" + rps + "\n\nLatency distribution:\n  50%% in 0.0002 secs\n  99%% in " + p99 +
			" secs\n\nStatus code distribution:\n  [200]\t1000 responses\n"
	}
	files := map[string]string{
		"bare.v2.b1.max1.hey":      heyOut("9000.0", "0.0025"),
		"bare.v2.b1.max2.hey":      heyOut("10000.0", "0.0020"),
		"bare.v2.b1.max2.hey.cpu":  "50000", // 50 µs per request
		"bare.v2.b1.half.hey":      heyOut("5000.0", "0.0004"),
		"ferry.v2.b1.max1.hey":     heyOut("8000.0", "0.0030"),
		"ferry.v2.b1.max1.hey.cpu": "62500",
		"ferry.v2.b1.max2.hey":     heyOut("7000.0", "0.0030"),
		"ferry.v2.b1.half.hey":     heyOut("4000.0", "0.0011"),
		"ferry.log":                "not a result",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := runCmd([]string{"table", "-md", dir}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| V2 REST | 1 | bare | 10000 | 0.20 ms | 2.00 ms | 50 µs | 5000 | 5000 | 0.20 ms | 0.40 ms | 3000 | 0 | 0 |",
		"| V2 REST | 1 | ferry | 8000 | 0.20 ms | 3.00 ms | 62 µs | 4000 | 4000 | 0.20 ms | 1.10 ms | 3000 | 0 | 0 |",
		"| V2 REST | 1 | 80 % | pass | 80 % | 1.10 ms | MISS |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q; got:\n%s", want, out.String())
		}
	}
}

func TestTableFailsOnErrors(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata", "hey-errors.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ferry.v1.b1.max1.hey"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = runCmd([]string{"table", dir}, &out)
	if err == nil || !strings.Contains(err.Error(), "20 requests failed") {
		t.Fatalf("err = %v, want 20 requests failed", err)
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		want, got []float64
		ok        bool
	}{
		{[]float64{0.25, 0.5}, []float64{0.25, 0.500001}, true},
		{[]float64{0.25, 0.5}, []float64{0.25, 0.51}, false},
		{[]float64{0.25}, []float64{0.25, 0.5}, false},
	}
	for _, tc := range tests {
		_, _, err := compare(tc.want, tc.got)
		if (err == nil) != tc.ok {
			t.Errorf("compare(%v, %v) error = %v, want ok=%v", tc.want, tc.got, err, tc.ok)
		}
	}
}

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exp := write("expected.json", `{"predictions":[0.1,0.9]}`)
	v1 := write("v1.json", `{"predictions":[0.1000001,0.9]}`)
	v2 := write("v2.json", `{"model_name":"bench","outputs":[{"name":"predict","datatype":"FP32","shape":[2],"data":[0.1,0.9000002]}]}`)
	grpc := write("grpc.json", `{"modelName":"bench","outputs":[{"name":"predict","datatype":"FP32","shape":["2"],"contents":{"fp32Contents":[0.1,0.9]}}]}`)
	other := write("other.json", `{"outputs":[{"name":"predict_proba","data":[0.1,0.9]}]}`)
	for _, p := range []string{v1, v2, grpc} {
		if _, n, err := checkFiles(exp, p); err != nil || n != 2 {
			t.Errorf("checkFiles(%s) = %d, %v", filepath.Base(p), n, err)
		}
	}
	if _, _, err := checkFiles(exp, other); err == nil {
		t.Error("checkFiles accepted a response without \"predict\"")
	}
}

func FuzzParseHey(f *testing.F) {
	for _, name := range []string{"bare.v2.b1.max.hey", "hey-errors.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Status code distribution:\n  [x\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := parseHey(bytes.NewReader(in))
		if err == nil && (r.OK < 0 || r.Bad < 0) {
			t.Fatalf("negative counts %+v", r)
		}
	})
}

func FuzzParseGhz(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "ghz-errors.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"statusCodeDistribution":{"OK":-1}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = parseGhz(bytes.NewReader(in))
	})
}
