// Command xgbref times Ferry's XGBoost runtime on the batch and model that
// internal/runtime/xgboost/testdata/gen/bench_libxgboost.py times in
// libxgboost, and prints the same per-row wall and CPU figures, so that
// run.sh can set the two side by side in one run. It needs no Python.
package main

import (
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	goruntime "runtime"
	"syscall"
	"time"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/xgboost"
	"github.com/ferryserve/ferry/internal/tensor"
)

const features = 20

func main() {
	model := flag.String("model", "internal/runtime/xgboost/testdata/bench/model.ubj.gz", "gzipped benchmark model")
	rows := flag.Int("rows", 100_000, "rows in the large batch")
	minTime := flag.Duration("min-time", 2*time.Second, "time each batch size at least this long")
	once := flag.Bool("once", false, "predict the -rows batch once, untimed (for callgrind)")
	flag.Parse()
	if err := run(*model, *rows, *minTime, *once); err != nil {
		log.Fatal(err)
	}
}

func run(path string, rows int, minTime time.Duration, once bool) error {
	m, err := load(path)
	if err != nil {
		return err
	}
	x := input(rows, features)
	ctx := context.Background()
	fmt.Printf("ferry, GOMAXPROCS %d, %s trees\n", goruntime.GOMAXPROCS(0), m.Metadata().Properties["num_trees"])
	sizes := []int{1, rows}
	if once {
		sizes = sizes[1:]
	}
	for _, n := range sizes {
		req := &runtime.Request{Inputs: []*tensor.Tensor{{
			Name: "input-0", Datatype: tensor.FP32, Shape: []int64{int64(n), features}, Data: x[:n*features],
		}}}
		predict := func() error { _, err := m.Predict(ctx, req); return err }
		if once {
			return predict()
		}
		wall, cpu, err := perRow(predict, n, minTime)
		if err != nil {
			return err
		}
		fmt.Printf("Model.Predict batch %6d: %10.0f ns/row wall, %10.0f ns/row CPU\n", n, wall, cpu)
	}
	return nil
}

func load(path string) (*xgboost.Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(z)
	if err != nil {
		return nil, err
	}
	return xgboost.Parse(b)
}

// input mirrors benchInput in internal/runtime/xgboost/bench_test.go and
// bench_input in bench_libxgboost.py: a 64-bit LCG whose top 24 bits give
// values in [-2, 2), about 2% NaN.
func input(rows, cols int) []float32 {
	out := make([]float32, rows*cols)
	s := uint64(1)
	for i := range out {
		s = s*6364136223846793005 + 1442695040888963407
		top := s >> 40
		if top%50 == 0 {
			out[i] = float32(math.NaN())
			continue
		}
		out[i] = float32(float64(top)/float64(1<<24)*4 - 2)
	}
	return out
}

// perRow times fn until minTime has passed and returns wall and process CPU
// (user+system, all threads, as Python's process_time) ns per row.
func perRow(fn func() error, rows int, minTime time.Duration) (wall, cpu float64, err error) {
	if err := fn(); err != nil { // warm up
		return 0, 0, err
	}
	start, cpu0 := time.Now(), cpuTime()
	n := 0
	for {
		if err := fn(); err != nil {
			return 0, 0, err
		}
		n++
		if el := time.Since(start); el >= minTime {
			per := float64(n) * float64(rows)
			return float64(el.Nanoseconds()) / per, float64((cpuTime() - cpu0).Nanoseconds()) / per, nil
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
