package router

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestLatencyHistogramThroughTheRouter(t *testing.T) {
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") != "" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("{}"))
	}))
	defer fail.Close()
	rt := New("example.com", nil)
	be := strings.TrimPrefix(fail.URL, "http://")
	if err := rt.Update(&Table{Domain: "example.com", Services: []*Service{{Name: "m", Namespace: "default",
		Components: map[string]*Component{Predictor: {Targets: []Target{{Revision: "m-predictor-00001", Percent: 100, Backends: []string{be}}}}}}}}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"", "", "", "?fail=1"} {
		req := httptest.NewRequest("POST", "/v1/models/m:predict"+q, strings.NewReader("{}"))
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, req)
	}
	snap := rt.Stats("default", "m-predictor-00001").Latency.Snapshot()
	if got := snap.Classes["2xx"].Count; got != 3 {
		t.Errorf("2xx count = %d, want 3", got)
	}
	if got := snap.Classes["5xx"].Count; got != 1 {
		t.Errorf("5xx count = %d, want 1", got)
	}
	if b := snap.Classes["2xx"].Buckets; b[len(b)-1] != 3 {
		t.Errorf("cumulative buckets %v do not end at 3", b)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(rt.LatencyCollector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != LatencyMetricName {
		t.Fatalf("gathered %d families, want one %s", len(mfs), LatencyMetricName)
	}
	counts := map[string]uint64{}
	for _, m := range mfs[0].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["namespace"] != "default" || labels["revision"] != "m-predictor-00001" {
			t.Errorf("labels = %v", labels)
		}
		counts[labels["response_code_class"]] = m.GetHistogram().GetSampleCount()
	}
	if counts["2xx"] != 3 || counts["5xx"] != 1 || len(counts) != 2 {
		t.Errorf("exported counts by class = %v, want 2xx:3 5xx:1", counts)
	}
}

func TestLatencyObserveBuckets(t *testing.T) {
	var h LatencyHistogram
	h.Observe(200, 3*time.Millisecond)
	h.Observe(200, 120*time.Millisecond)
	h.Observe(503, 20*time.Second)
	s := h.Snapshot()
	c := s.Classes["2xx"]
	// 3 ms lands in le=0.005 (index 2), 120 ms in le=0.15 (index 8).
	if c.Buckets[1] != 0 || c.Buckets[2] != 1 || c.Buckets[7] != 1 || c.Buckets[8] != 2 {
		t.Errorf("2xx buckets = %v", c.Buckets)
	}
	if s.Classes["5xx"].Buckets[len(LatencyBuckets)-1] != 0 {
		t.Error("a 20 s request counted below the 10 s bucket")
	}
	if d := c.SumSeconds - 0.123; d > 1e-9 || d < -1e-9 {
		t.Errorf("sum = %v, want 0.123", c.SumSeconds)
	}
}
