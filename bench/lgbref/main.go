// Command lgbref times Ferry's LightGBM runtime on the model and batch that
// bench/lgbref/capi/lgbref.c times in LightGBM's own C API, and prints the
// same per-row wall and CPU figures, so that run.sh can set the two side by
// side in one run. It needs no LightGBM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	goruntime "runtime"
	"syscall"
	"time"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/lightgbm"
	"github.com/ferryserve/ferry/internal/tensor"
)

// cycle is how many distinct rows batch 1 goes through, one per call.
const cycle = 1024

func main() {
	model := flag.String("model", "internal/runtime/lightgbm/testdata/bench_binary/model.txt", "LightGBM model.txt")
	rows := flag.Int("rows", 100_000, "rows in the large batch")
	minTime := flag.Duration("min-time", 2*time.Second, "time each batch size at least this long")
	once := flag.Bool("once", false, "predict the -rows batch once, untimed (for callgrind)")
	flag.Parse()
	if err := run(*model, *rows, *minTime, *once); err != nil {
		log.Fatal(err)
	}
}

func run(path string, rows int, minTime time.Duration, once bool) error {
	m, err := lightgbm.LoadFile(path, lightgbm.Options{})
	if err != nil {
		return err
	}
	cols := m.NumFeatures()
	x := input(max(rows, cycle), cols)
	ctx := context.Background()
	request := func(lo, n int) *runtime.Request {
		return &runtime.Request{Inputs: []*tensor.Tensor{{
			Name: "input-0", Datatype: tensor.FP64, Shape: []int64{int64(n), int64(cols)}, Data: x[lo*cols : (lo+n)*cols],
		}}}
	}
	big := request(0, rows)
	if once {
		_, err := m.Predict(ctx, big)
		return err
	}
	fmt.Printf("ferry, GOMAXPROCS %d, %s trees\n", goruntime.GOMAXPROCS(0), m.Metadata().Properties["num_trees"])

	// Batch 1: a request per row, made beforehand; call i scores row i%cycle.
	ones := make([]*runtime.Request, cycle)
	for i := range ones {
		ones[i] = request(i, 1)
	}
	n := 0
	wall, cpu, err := perCall(func() error {
		_, err := m.Predict(ctx, ones[n%cycle])
		n++
		return err
	}, 64, minTime)
	if err != nil {
		return err
	}
	fmt.Printf("Model.Predict batch %6d: %10.0f ns/row wall, %10.0f ns/row CPU\n", 1, wall, cpu)

	wall, cpu, err = perCall(func() error { _, err := m.Predict(ctx, big); return err }, 1, minTime)
	if err != nil {
		return err
	}
	fmt.Printf("Model.Predict batch %6d: %10.0f ns/row wall, %10.0f ns/row CPU\n", rows, wall/float64(rows), cpu/float64(rows))
	return nil
}

// input mirrors BenchInput in bench/lgbref/gendata and bench_input in
// capi/lgbref.c: a 64-bit LCG whose top 24 bits give values in [-2, 2),
// about 2 % NaN.
func input(rows, cols int) []float64 {
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

// perCall times fn, calling it k times between clock reads, until minTime
// has passed and returns wall and process CPU (user+system, all threads) ns
// per call.
func perCall(fn func() error, k int, minTime time.Duration) (wall, cpu float64, err error) {
	if err := fn(); err != nil { // warm up
		return 0, 0, err
	}
	start, cpu0 := time.Now(), cpuTime()
	n := 0
	for {
		for range k {
			if err := fn(); err != nil {
				return 0, 0, err
			}
			n++
		}
		if el := time.Since(start); el >= minTime {
			return float64(el.Nanoseconds()) / float64(n), float64((cpuTime() - cpu0).Nanoseconds()) / float64(n), nil
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
