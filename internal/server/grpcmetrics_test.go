package server

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/protocol"
	"github.com/ferryserve/ferry/internal/repository"
)

// The cache records exactly what Metrics.ObserveRequest records: the same
// series, unknown models under "", one sample per request.
func TestSeriesCacheMatchesMetrics(t *testing.T) {
	calls := []struct {
		model string
		err   error
	}{
		{"m", nil},
		{"m", nil},
		{"m", fmt.Errorf("%w: bad", protocol.ErrBadRequest)},
		{"nope", fmt.Errorf("model %q: %w", "nope", repository.ErrModelNotFound)},
		{"other", fmt.Errorf("model %q: %w", "other", repository.ErrModelNotFound)},
		{"m", errors.New("boom")},
	}
	direct, cached := NewMetrics(nil), NewMetrics(nil)
	cache := newSeriesCache(cached)
	for _, c := range calls {
		direct.ObserveRequest(c.model, "v2-grpc", c.err, time.Millisecond)
		cache.ObserveRequest(c.model, "v2-grpc", c.err, time.Millisecond)
	}
	want := map[string]uint64{"m/200": 2, "m/400": 1, "/404": 2, "m/500": 1}
	for name, m := range map[string]*Metrics{"direct": direct, "cached": cached} {
		reqs, lat := gatherSeries(t, m)
		if fmt.Sprint(reqs) != fmt.Sprint(want) || fmt.Sprint(lat) != fmt.Sprint(want) {
			t.Errorf("%s: requests %v, latency samples %v, want %v in both", name, reqs, lat, want)
		}
	}
}

// gatherSeries reads ferry_requests_total and the latency histogram's sample
// counts by "model/code".
func gatherSeries(t *testing.T, m *Metrics) (reqs, lat map[string]uint64) {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	reqs, lat = map[string]uint64{}, map[string]uint64{}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range s.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["protocol"] != "v2-grpc" {
				continue
			}
			k := l["model"] + "/" + l["code"]
			switch f.GetName() {
			case "ferry_requests_total":
				reqs[k] = uint64(s.GetCounter().GetValue())
			case "ferry_request_duration_seconds":
				lat[k] = s.GetHistogram().GetSampleCount()
			}
		}
	}
	return reqs, lat
}
