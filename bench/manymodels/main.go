// Command manymodels measures multi-model density: it loads N copies of a
// small XGBoost model (examples/models/xgboost-iris, 20 trees) into one
// repository from local disk, then reports time per load, resident memory
// per model, and V2 REST inference latency with all of them loaded.
//
//	go run ./bench/manymodels -n 10000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/xgboost"
	"github.com/ferryserve/ferry/internal/server"
)

func main() {
	n := flag.Int("n", 10000, "models to load")
	model := flag.String("model", "examples/models/xgboost-iris/model.json", "model file copied (symlinked) N times")
	requests := flag.Int("requests", 2000, "inference requests to random models once all are loaded")
	flag.Parse()
	if err := run(*n, *model, *requests); err != nil {
		log.Fatal(err)
	}
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(l, "VmRSS: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}

func run(n int, model string, requests int) error {
	abs, err := filepath.Abs(model)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ferry-manymodels")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for i := range n {
		d := filepath.Join(dir, fmt.Sprintf("m%05d", i))
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
		if err := os.Symlink(abs, filepath.Join(d, "model.json")); err != nil {
			return err
		}
	}
	reg := runtime.NewRegistry(xgboost.Format)
	repo := repository.New(repository.Config{Loader: reg})
	srcs, err := repository.Discover(dir, "", "", reg.HasModelFile)
	if err != nil {
		return err
	}
	goruntime.GC()
	rss0 := rssBytes()
	start := time.Now()
	for _, s := range srcs {
		repo.Add(s)
	}
	if err := repo.LoadAll(context.Background(), goruntime.GOMAXPROCS(0)); err != nil {
		return err
	}
	took := time.Since(start)
	goruntime.GC()
	rss1 := rssBytes()
	fmt.Printf("models: %d (%s, symlinked)\n", n, model)
	fmt.Printf("load: %v total, %.0f µs per model (%d loaders)\n", took.Round(time.Millisecond), float64(took.Microseconds())/float64(n), goruntime.GOMAXPROCS(0))
	fmt.Printf("resident memory: %.1f MiB total growth, %.1f KiB per model\n", float64(rss1-rss0)/(1<<20), float64(rss1-rss0)/1024/float64(n))

	srv, err := server.New(server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Repository: repo})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	body := `{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP32","data":[6.8,2.8,4.8,1.4]}]}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	lat := make([]time.Duration, 0, requests)
	for range requests {
		name := fmt.Sprintf("m%05d", rand.IntN(n))
		t0 := time.Now()
		resp, err := client.Post("http://"+srv.HTTPAddr()+"/v2/models/"+name+"/infer", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: status %d", name, resp.StatusCode)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	fmt.Printf("V2 REST infer to a random one of %d models (%d sequential requests): p50 %v, p99 %v\n",
		n, requests, lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond))
	return nil
}
