// Command gendata writes the data behind LightGBM's benchmark model and its
// golden rows (internal/runtime/lightgbm/testdata/bench_binary):
//
//	gendata -train train.csv             20 000 labelled training rows
//	gendata -golden model.txt input.csv  rows to predict for the goldens
//
// Features f0..f19 are uniform on [-2, 2) with about 2 % NaN, the
// distribution of the benchmark batch (bench/lgbref), and the label is a
// noisy nonlinear function of seven of them. The golden rows are the first
// rows of the benchmark batch, then rows that put single features exactly
// on, just below and just above the thresholds of the model's first trees,
// and rows of all NaN, all zero and ±Inf. LightGBM itself is needed only
// to train the model and compute the expected outputs (bench/lgbref/golden.sh).
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

const features = 20

func main() {
	train := flag.String("train", "", "write training rows (label first) to this file")
	golden := flag.String("golden", "", "read this model.txt and write golden input rows to the file named by the argument")
	flag.Parse()
	var err error
	switch {
	case *train != "":
		err = writeTrain(*train, 20_000)
	case *golden != "" && flag.NArg() == 1:
		err = writeGolden(*golden, flag.Arg(0))
	default:
		err = fmt.Errorf("usage: gendata -train FILE | gendata -golden MODEL FILE")
	}
	if err != nil {
		log.Fatal(err)
	}
}

func header(label bool) string {
	names := make([]string, 0, features+1)
	if label {
		names = append(names, "label")
	}
	for f := range features {
		names = append(names, "f"+strconv.Itoa(f))
	}
	return strings.Join(names, ",") + "\n"
}

func format(v float64) string {
	if math.IsNaN(v) {
		return "nan"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func writeRows(path, head string, rows [][]float64) error {
	var b bytes.Buffer
	b.WriteString(head)
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(format(v))
		}
		b.WriteByte('\n')
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// writeTrain writes n rows: the label, then the features.
func writeTrain(path string, n int) error {
	rng := rand.New(rand.NewPCG(15, 2026))
	rows := make([][]float64, n)
	for i := range rows {
		x := make([]float64, features)
		for f := range x {
			x[f] = math.Floor(rng.Float64()*4*(1<<24))/(1<<24) - 2
			if rng.IntN(50) == 0 {
				x[f] = math.NaN()
			}
		}
		z := func(f int) float64 {
			if math.IsNaN(x[f]) {
				return 0
			}
			return x[f]
		}
		s := z(0)*z(1) + math.Sin(3*z(2)) - z(3) + 0.5*math.Abs(z(4)) - 0.8*z(5)*z(5) + 0.7*math.Tanh(2*z(6)) + 0.3*rng.NormFloat64()
		if math.IsNaN(x[1]) {
			s += 0.5 // missingness that carries signal
		}
		label := 0.0
		if s > 0 {
			label = 1
		}
		rows[i] = append([]float64{label}, x...)
	}
	return writeRows(path, header(true), rows)
}

// BenchInput is the benchmark batch bench/lgbref and bench/lgbref/capi
// time: a 64-bit LCG whose top 24 bits give values in [-2, 2), about 2 %
// NaN (bench/xgbref's generator, in float64).
func BenchInput(rows, cols int) []float64 {
	out := make([]float64, rows*cols)
	s := uint64(1)
	for i := range out {
		s = s*6364136223846793005 + 1442695040888963407
		top := s >> 40
		if top%50 == 0 {
			out[i] = math.NaN()
			continue
		}
		out[i] = float64(top)/float64(1<<24)*4 - 2
	}
	return out
}

// writeGolden writes 300 benchmark rows, then for each split of the
// model's first three trees three copies of a benchmark row with the
// split's feature on the threshold and one step below and above it, then
// rows of all NaN, all zero, all +Inf and all -Inf.
func writeGolden(model, path string) error {
	splits, err := firstSplits(model, 3)
	if err != nil {
		return err
	}
	const base = 300
	x := BenchInput(base+len(splits), features)
	var rows [][]float64
	for r := range base {
		rows = append(rows, x[r*features:(r+1)*features])
	}
	for i, s := range splits {
		for _, v := range []float64{s.thr, math.Nextafter(s.thr, math.Inf(-1)), math.Nextafter(s.thr, math.Inf(1))} {
			r := append([]float64(nil), x[(base+i)*features:(base+i+1)*features]...)
			r[s.feature] = v
			rows = append(rows, r)
		}
	}
	for _, v := range []float64{math.NaN(), 0, math.Inf(1), math.Inf(-1)} {
		r := make([]float64, features)
		for f := range r {
			r[f] = v
		}
		rows = append(rows, r)
	}
	return writeRows(path, header(false), rows)
}

type split struct {
	feature int
	thr     float64
}

// firstSplits reads split_feature and threshold of the first n trees.
func firstSplits(model string, n int) ([]split, error) {
	f, err := os.Open(model)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []split
	var feats []string
	trees := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() && trees < n {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "split_feature":
			feats = strings.Fields(v)
		case "threshold":
			thr := strings.Fields(v)
			if len(thr) != len(feats) {
				return nil, fmt.Errorf("%s: tree %d: %d thresholds for %d features", model, trees, len(thr), len(feats))
			}
			for i := range thr {
				fi, err := strconv.Atoi(feats[i])
				if err != nil {
					return nil, err
				}
				t, err := strconv.ParseFloat(thr[i], 64)
				if err != nil {
					return nil, err
				}
				out = append(out, split{fi, t})
			}
			trees++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if trees < n {
		return nil, fmt.Errorf("%s: %d trees, want %d", model, trees, n)
	}
	return out, nil
}
