package rollout_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/rollout"
	"github.com/ferryserve/ferry/internal/rollout/promtest"
)

// TestPrometheusQuality reads revisions' quality as the operator's rollout
// runner does: a real Prometheus scrapes stand-in pods exporting the
// quality metrics of `ferry serve --quality-dir`, with the namespace and
// revision labels the documented pod scrape config adds. A revision's
// labelled rows are summed over its pods and its accuracy is weighted by
// them; a pod with no labelled rows (accuracy NaN) does not poison the sum.
func TestPrometheusQuality(t *testing.T) {
	pod := func(rev string, rows float64, acc, mae float64) promtest.Target {
		body := fmt.Sprintf("# TYPE ferry_quality_labelled_rows gauge\nferry_quality_labelled_rows{model=\"m\",revision=%q} %g\n"+
			"# TYPE ferry_quality_accuracy gauge\nferry_quality_accuracy{model=\"m\",revision=%q} %g\n"+
			"# TYPE ferry_quality_mae gauge\nferry_quality_mae{model=\"m\",revision=%q} %g\n", rev, rows, rev, acc, rev, mae)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			fmt.Fprint(w, body)
		}))
		t.Cleanup(srv.Close)
		return promtest.Target{Addr: srv.URL, Labels: map[string]string{"namespace": "team", "revision": rev}}
	}
	url := promtest.Start(t, "ferry-pods",
		pod("m-predictor-00002", 300, 0.9, 2), pod("m-predictor-00002", 100, 0.5, 4), pod("m-predictor-00002", 0, math.NaN(), math.NaN()),
		pod("m-predictor-00001", 50, 1, 0))
	metrics := []string{"accuracy", "mae", "r2"}
	src, err := rollout.NewPrometheusSource(url, "ferry_request_duration_seconds")
	if err != nil {
		t.Fatal(err)
	}
	var q rollout.Quality
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		q, ok, err = src.Quality(t.Context(), "team", "m", "m-predictor-00002", metrics)
		if err != nil {
			t.Fatal(err)
		}
		if ok && q.Labelled == 400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("quality of m-predictor-00002 = %+v (ok %v) after 30 s, want 400 labelled rows", q, ok)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if want := (300*0.9 + 100*0.5) / 400; math.Abs(q.Accuracy-want) > 1e-12 {
		t.Errorf("accuracy = %v, want %v (weighted by labelled rows)", q.Accuracy, want)
	}
	if want := (300*2.0 + 100*4.0) / 400; math.Abs(q.Values["mae"]-want) > 1e-12 || q.Values["accuracy"] != q.Accuracy {
		t.Errorf("values = %v, want mae %v and the accuracy", q.Values, want)
	}
	if _, ok := q.Values["r2"]; ok {
		t.Errorf("values = %v: r2, which no pod exports, must be left out", q.Values)
	}
	if q, ok, err := src.Quality(context.Background(), "team", "m", "m-predictor-00001", metrics); err != nil || !ok || q.Labelled != 50 || q.Accuracy != 1 {
		t.Errorf("quality of m-predictor-00001 = %+v, %v, %v; want 50 rows at 1", q, ok, err)
	}
	if q, ok, err := src.Quality(context.Background(), "team", "m", "m-predictor-00009", metrics); err != nil || ok {
		t.Errorf("quality of a revision no pod reports = %+v, %v, %v; want none", q, ok, err)
	}
	if q, ok, err := src.Quality(context.Background(), "other", "m", "m-predictor-00002", metrics); err != nil || ok {
		t.Errorf("quality in another namespace = %+v, %v, %v; want none", q, ok, err)
	}
}
