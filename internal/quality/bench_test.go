package quality

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/cputime"
	v1 "github.com/ferryserve/ferry/internal/protocol/v1"
	"github.com/ferryserve/ferry/internal/protocol/v2"
	"github.com/ferryserve/ferry/internal/repository"
	fruntime "github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/xgboost"
)

// BenchmarkFeedbackIngest joins feedback in batches of 100 against
// predictions journaled beforehand (three class probabilities each, as the
// xgboost iris example answers); reports joined records per second.
func BenchmarkFeedbackIngest(b *testing.B) {
	m, err := Open(Config{Dir: b.TempDir(), Window: 1000, MaxPredictions: 1 << 24})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const batch = 100
	n := b.N * batch
	now := time.Now().UnixNano()
	for i := range n {
		if err := m.Record(&Prediction{Model: "iris", Revision: "1", ID: fmt.Sprint("id-", i), Time: now, Rows: []Row{{Kind: KindProbs, Probs: []float64{0.1, 0.7, 0.2}}}}); err != nil {
			b.Fatal(err)
		}
	}
	fbs := make([][]Feedback, b.N)
	for i := range fbs {
		for j := range batch {
			fbs[i] = append(fbs[i], Feedback{ID: fmt.Sprint("id-", i*batch+j), Truth: []Truth{num(float64(j % 3))}})
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		for _, r := range m.Join("iris", fbs[i]) {
			if r.Outcome != Joined {
				b.Fatalf("%+v", r)
			}
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "feedback/s")
}

// BenchmarkJoinMemory journals 1 M outstanding predictions and reports the
// heap they hold (the index; outputs stay on disk) and the journal's size:
// as rows (gRPC answers, large responses) and as the response the
// middleware journals raw (the xgboost iris example's V2 answer). It runs
// the million once, whatever b.N is.
func BenchmarkJoinMemory(b *testing.B) {
	b.Run("rows", func(b *testing.B) {
		joinMemory(b, &Prediction{Model: "iris", Revision: "1", Rows: []Row{{Kind: KindProbs, Probs: []float64{0.1, 0.7, 0.2}}}})
	})
	b.Run("raw", func(b *testing.B) {
		body := []byte(`{"model_name":"xgboost-iris","id":"","outputs":[{"name":"predict","datatype":"FP32","shape":[2,3],"data":[0.005580268,0.97116977,0.023249961,0.99185115,0.0054369667,0.0027118712]}]}`)
		joinMemory(b, &Prediction{Model: "iris", Revision: "1", Output: &RawOutput{Body: body}})
	})
}

func joinMemory(b *testing.B, p *Prediction) {
	const n = 1_000_000
	for b.Loop() {
		dir := b.TempDir()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m, err := Open(Config{Dir: dir, MaxPredictions: n})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now().UnixNano()
		start := time.Now()
		p.Time = now
		for i := range n {
			p.ID = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) // UUID-sized ids
			if err := m.Record(p); err != nil {
				b.Fatal(err)
			}
		}
		took := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		count, size := m.Outstanding()
		if count != n {
			b.Fatalf("%d remembered", count)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/prediction")
		b.ReportMetric(float64(size)/n, "disk-B/prediction")
		b.ReportMetric(float64(n)/took.Seconds(), "records/s")
		start = time.Now()
		m.Close()
		m2, err := Open(Config{Dir: dir, MaxPredictions: n})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "replay-s")
		start = time.Now()
		if err := m2.Compact(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "compact-s")
		m2.Close()
		runtime.KeepAlive(m)
	}
}

// BenchmarkPredictOverhead serves the xgboost iris example through the V2
// REST handler with and without the quality middleware; compare ns/op.
func BenchmarkPredictOverhead(b *testing.B) {
	mux := irisMux(b)
	body := irisRequests["v2"][1]
	run := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("POST", "/v2/models/xgboost-iris/infer", strings.NewReader(body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	}
	b.Run("off", func(b *testing.B) { run(b, mux) })
	b.Run("on", func(b *testing.B) {
		m, err := Open(benchConfig(b))
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		run(b, NewHandler(HandlerConfig{Monitor: m}).Middleware(mux))
	})
}

// BenchmarkPredictRPS measures what a client sees: requests per second
// through a real HTTP server on loopback (keep-alive connections, 8
// concurrent clients per GOMAXPROCS), serving the xgboost iris example
// over V2 and V1, with and without the quality middleware (ferry serve
// with and without --quality-dir). Compare the cpu-ns/op metric of off
// and on (the process's CPU time per request: server, clients and GC,
// from getrusage); req/s moves too much on a shared machine to show a
// difference of a few percent.
func BenchmarkPredictRPS(b *testing.B) {
	mux := irisMux(b)
	reqs := irisRequests
	run := func(b *testing.B, h http.Handler, path, body string) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		tr := &http.Transport{MaxIdleConnsPerHost: 256}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		url := srv.URL + path
		b.SetParallelism(8)
		b.ResetTimer()
		start, cpu := time.Now(), cputime.Process()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("HTTP %d", resp.StatusCode)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
	}
	for _, proto := range []string{"v2", "v1"} {
		path, body := reqs[proto][0], reqs[proto][1]
		b.Run(proto+"/off", func(b *testing.B) { run(b, mux, path, body) })
		b.Run(proto+"/on", func(b *testing.B) {
			m, err := Open(benchConfig(b))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			run(b, NewHandler(HandlerConfig{Monitor: m}).Middleware(mux), path, body)
			m.mu.Lock()
			if m.writes > 0 { // not mapped
				b.ReportMetric(float64(m.total.Recorded)/float64(m.writes), "records/write")
			}
			if m.copies > 0 { // mapped, in batches
				b.ReportMetric(float64(m.total.Recorded)/float64(m.copies), "records/copy")
			}
			m.mu.Unlock()
		})
	}
}

// BenchmarkParse reads the responses the xgboost iris example answers
// (two rows of three class probabilities) with the scanner and with
// encoding/json alone.
func BenchmarkParse(b *testing.B) {
	v2body := []byte(`{"model_name":"xgboost-iris","id":"","outputs":[{"name":"predict","datatype":"FP32","shape":[2,3],"data":[0.0055,0.9711,0.0232,0.0155,0.9711,0.0134]}]}`)
	v1body := []byte(`{"predictions":[[0.0055,0.9711,0.0232],[0.0155,0.9711,0.0134]]}`)
	for _, fast := range []bool{true, false} {
		name := map[bool]string{true: "scanner", false: "encoding-json"}[fast]
		b.Run("v2/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, err := parseV2(v2body, TaskAuto, fast); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("v1/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseV1(v1body, TaskAuto, fast); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMiddleware isolates the quality middleware's own cost: a handler
// that answers a canned xgboost iris response (as the V2 and V1 services
// write it), called by 8 goroutines per GOMAXPROCS without a network, with
// and without the middleware around it. The on-off difference in
// cpu-ns/op is what journaling adds to each request.
func BenchmarkMiddleware(b *testing.B) {
	answers := map[string][2]string{
		"v2": {"/v2/models/xgboost-iris/infer", `{"model_name":"xgboost-iris","id":"","outputs":[{"name":"predict","datatype":"FP32","shape":[2,3],"data":[0.005580268,0.97116977,0.023249961,0.99185115,0.0054369667,0.0027118712]}]}`},
		"v1": {"/v1/models/xgboost-iris:predict", `{"predictions":[[0.005580268,0.97116977,0.023249961],[0.99185115,0.0054369667,0.0027118712]]}`},
	}
	for _, proto := range []string{"v2", "v1"} {
		path, answer := answers[proto][0], []byte(answers[proto][1])
		model := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(answer)
		})
		run := func(b *testing.B, h http.Handler) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			cpu := cputime.Process()
			b.RunParallel(func(pb *testing.PB) {
				w := &sinkWriter{h: http.Header{}}
				r := httptest.NewRequest("POST", path, nil)
				for pb.Next() {
					clear(w.h)
					clear(r.Header)
					w.code, w.n = 0, 0
					h.ServeHTTP(w, r)
					if w.code != http.StatusOK || w.n != len(answer) {
						b.Errorf("HTTP %d, %d bytes", w.code, w.n)
						return
					}
				}
			})
			b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
		}
		b.Run(proto+"/off", func(b *testing.B) { run(b, model) })
		b.Run(proto+"/on", func(b *testing.B) {
			m, err := Open(benchConfig(b))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			run(b, NewHandler(HandlerConfig{Monitor: m}).Middleware(model))
		})
	}
}

// sinkWriter is a ResponseWriter that keeps only the status and length.
type sinkWriter struct {
	h    http.Header
	code int
	n    int
}

func (s *sinkWriter) Header() http.Header { return s.h }

func (s *sinkWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}

func (s *sinkWriter) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	s.n += len(p)
	return len(p), nil
}

// BenchmarkPredictCPU measures what the quality middleware adds to the CPU
// time of a request served over loopback HTTP (as BenchmarkPredictRPS, 8
// concurrent keep-alive clients per GOMAXPROCS, the xgboost iris example),
// with a server without the middleware and one with it running side by
// side and taking turns in slices of 1000 requests, so that the load of
// other processes on a shared machine falls on both alike. b.N requests
// go to each. It reports the process's CPU time per request (server,
// clients and GC, from getrusage) of each and the difference in percent,
// over all requests and in the median turn.
func BenchmarkPredictCPU(b *testing.B) {
	mux := irisMux(b)
	reqs := irisRequests
	for _, proto := range []string{"v2", "v1"} {
		path, body := reqs[proto][0], reqs[proto][1]
		b.Run(proto, func(b *testing.B) {
			m, err := Open(benchConfig(b))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			servers := [2]*httptest.Server{httptest.NewServer(mux), httptest.NewServer(NewHandler(HandlerConfig{Monitor: m}).Middleware(mux))}
			tr := &http.Transport{MaxIdleConnsPerHost: 256}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			// slice sends n requests to server i from the clients.
			slice := func(i, n int) error {
				url := servers[i].URL + path
				var (
					left atomic.Int64
					errs = make(chan error, 1)
					wg   sync.WaitGroup
				)
				left.Store(int64(n))
				for range 8 * runtime.GOMAXPROCS(0) {
					wg.Go(func() {
						for left.Add(-1) >= 0 {
							resp, err := client.Post(url, "application/json", strings.NewReader(body))
							if err == nil {
								_, _ = io.Copy(io.Discard, resp.Body)
								resp.Body.Close()
								if resp.StatusCode != http.StatusOK {
									err = fmt.Errorf("HTTP %d", resp.StatusCode)
								}
							}
							if err != nil {
								select {
								case errs <- err:
								default:
								}
								return
							}
						}
					})
				}
				wg.Wait()
				select {
				case err := <-errs:
					return err
				default:
					return nil
				}
			}
			for i := range 2 { // warm both up: connections, buffers
				if err := slice(i, 1000); err != nil {
					b.Fatal(err)
				}
			}
			var (
				cpu    [2]time.Duration
				ratios []float64 // on/off of each turn
			)
			b.ResetTimer()
			for done, turn := 0, 0; done < b.N; turn++ {
				n := min(1000, b.N-done)
				var took [2]time.Duration
				for k := range 2 {
					i := (turn + k) % 2 // alternate which goes first
					start := cputime.Process()
					if err := slice(i, n); err != nil {
						b.Fatal(err)
					}
					took[i] = cputime.Process() - start
					cpu[i] += took[i]
				}
				if took[0] > 0 {
					ratios = append(ratios, float64(took[1])/float64(took[0]))
				}
				done += n
			}
			b.StopTimer()
			for _, s := range servers {
				s.Close()
			}
			off, on := float64(cpu[0])/float64(b.N), float64(cpu[1])/float64(b.N)
			b.ReportMetric(off, "off-cpu-ns/op")
			b.ReportMetric(on, "on-cpu-ns/op")
			b.ReportMetric(100*(on-off)/off, "overhead-%")
			if len(ratios) > 0 {
				// The median turn: a burst of load elsewhere that hits one
				// slice of a turn moves the mean, not the median.
				slices.Sort(ratios)
				b.ReportMetric(100*(ratios[len(ratios)/2]-1), "median-turn-overhead-%")
			}
		})
	}
}

// benchConfig is the predict-path benchmarks' journal: mapped, or, with
// FERRY_QUALITY_BENCH_WRITE_CALLS=1 in the environment, written with write
// calls (group commit), to compare the two in one binary.
func benchConfig(b *testing.B) Config {
	mode := os.Getenv("FERRY_QUALITY_BENCH_MODE")
	return Config{Dir: b.TempDir(), MaxPredictions: 1 << 24, writeCalls: mode == "write", copyAlone: mode == "alone"}
}

// irisRequests are a V2 and a V1 request (path, body) of two rows for the
// xgboost iris example.
var irisRequests = map[string][2]string{
	"v2": {"/v2/models/xgboost-iris/infer", `{"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32","data":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}]}`},
	"v1": {"/v1/models/xgboost-iris:predict", `{"instances":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}`},
}

// irisMux serves the xgboost iris example over V2 and V1 REST, as ferry
// serve does, for the benchmark's duration; it skips without the example.
func irisMux(b *testing.B) *http.ServeMux {
	b.Helper()
	if _, err := os.Stat("../../examples/models/xgboost-iris"); err != nil {
		b.Skip(err)
	}
	repo := repository.New(repository.Config{Loader: fruntime.NewRegistry(xgboost.Format)})
	repo.Add(repository.Source{Name: "xgboost-iris", Dir: "../../examples/models/xgboost-iris"})
	if err := repo.LoadAll(b.Context(), 1); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(repo.Close)
	mux := http.NewServeMux()
	v2.NewService(v2.Config{Repository: repo}).Register(mux)
	v1.New(v1.Config{Repository: repo}).Register(mux)
	return mux
}
