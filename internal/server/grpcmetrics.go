package server

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryserve/ferry/internal/protocol"
	v2 "github.com/ferryserve/ferry/internal/protocol/v2"
	"github.com/ferryserve/ferry/internal/repository"
)

// seriesCache records requests in Metrics' ferry_requests_total and
// ferry_request_duration_seconds, as Metrics.ObserveRequest does, but finds
// a request's two series in one map look-up instead of hashing its label
// values twice and formatting its code each time. Metrics.ObserveRequest
// (the REST protocols) and the gRPC service use it (issue 15: their
// per-request cost is compared with bare net/http and grpc-go handlers).
//
// The cache holds one entry per (model, protocol, code): unknown model
// names are recorded under "", as ObserveRequest records them, so it is
// bounded by the models served. Metrics never deletes series, so a cached
// series is never stale.
type seriesCache struct {
	m      *Metrics
	series sync.Map // seriesKey → *series
}

type seriesKey struct {
	model, proto string
	code         int
}

type series struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

var _ v2.Observer = (*seriesCache)(nil)

func newSeriesCache(m *Metrics) *seriesCache { return &seriesCache{m: m} }

// ObserveRequest implements v2.Observer.
func (c *seriesCache) ObserveRequest(model, proto string, err error, took time.Duration) {
	if err != nil && errors.Is(err, repository.ErrModelNotFound) {
		model = "" // unknown names must not grow the label set without bound
	}
	code, _ := protocol.Status(err)
	k := seriesKey{model: model, proto: proto, code: code}
	v, ok := c.series.Load(k)
	if !ok {
		// The key outlives the request: copy its strings out of it.
		k.model, k.proto = strings.Clone(model), strings.Clone(proto)
		label := strconv.Itoa(code)
		v, _ = c.series.LoadOrStore(k, &series{
			requests: c.m.requests.WithLabelValues(k.model, k.proto, label),
			latency:  c.m.latency.WithLabelValues(k.model, k.proto, label),
		})
	}
	s := v.(*series)
	s.requests.Inc()
	s.latency.Observe(took.Seconds())
}
