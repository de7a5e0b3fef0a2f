package detect

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"

	"github.com/ferryserve/ferry/internal/cputime"
	"github.com/ferryserve/ferry/internal/detect/drift"
	"github.com/ferryserve/ferry/internal/detect/outlier"
)

// benchEvents are n one-row V1 request events of d features.
func benchEvents(n, d int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 1))
	out := make([][]byte, n)
	for i := range out {
		out[i] = instances(gaussRows(rng, 1, d, 0))
	}
	return out
}

func benchIngest(b *testing.B, cfg Config) {
	const d = 20
	ref := gaussRows(rand.New(rand.NewPCG(2, 2)), 1000, d, 0)
	det, err := drift.NewTabular(drift.TabularConfig{Reference: ref})
	if err != nil {
		b.Fatal(err)
	}
	cfg.Drift = det
	if cfg.Outlier != nil {
		if cfg.Outlier, err = outlier.NewMahalanobis(outlier.MahalanobisConfig{Reference: ref}); err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	h := s.Handler()
	events := benchEvents(1024, d)
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Type", TypeRequest)
	req.Header.Set("Ce-Inferenceservicename", "iris")
	b.ReportAllocs()
	cpu0 := cputime.Process()
	for i := 0; b.Loop(); i++ {
		r := req.Clone(req.Context())
		r.Header.Set("Ce-Id", strconv.Itoa(i))
		r.Body = readCloser{bytes.NewReader(events[i%len(events)])}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	// Per CPU-second (all threads: handler, GC), which is the rate one
	// core sustains, whatever else the machine runs.
	if cpu := cputime.Process() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// BenchmarkIngest measures events per second through the detector's
// handler (decode, count, and every 500th event a KS test of 20 features
// against 1000 reference rows), one row of 20 features per event.
// events/cpu-s is the rate per core (run with -cpu 1).
func BenchmarkIngest(b *testing.B) {
	b.Run("ks", func(b *testing.B) { benchIngest(b, Config{WindowSize: 500}) })
	b.Run("ks+mahalanobis", func(b *testing.B) { benchIngest(b, Config{WindowSize: 500, Outlier: &outlier.Mahalanobis{}}) })
	b.Run("ks+state-dir", func(b *testing.B) { benchIngest(b, Config{WindowSize: 500, StateDir: b.TempDir()}) })
}

// BenchmarkWindowMemory reports the heap one open window of 500 rows of
// 20 features holds, as events of one row each fill it.
func BenchmarkWindowMemory(b *testing.B) {
	const d, rows = 20, 500
	det, err := drift.NewTabular(drift.TabularConfig{Reference: gaussRows(rand.New(rand.NewPCG(2, 2)), 100, d, 0)})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	var perWindow float64
	for b.Loop() {
		s, err := New(Config{Drift: det, WindowSize: rows + 1})
		if err != nil {
			b.Fatal(err)
		}
		const services = 20
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range services * rows {
			// Each event's rows are allocated as a request's decode does;
			// only what the windows keep survives the GC below.
			if _, err := s.collect("svc"+strconv.Itoa(i%services), "id", nil, gaussRows(rng, 1, d, 0)); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perWindow = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / services
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perWindow, "bytes/window")
}
