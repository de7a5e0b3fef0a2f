package rollout

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/ferryserve/ferry/internal/quality"
	"github.com/ferryserve/ferry/internal/router"
)

// Source gives a revision's metrics over a window.
type Source interface {
	// Query returns the metrics of revision (in namespace) for requests
	// answered between start and end. It must honour ctx's cancellation.
	Query(ctx context.Context, namespace, revision string, start, end time.Time) (Metrics, error)
}

// QualitySource gives a revision's model quality over its labelled window.
type QualitySource interface {
	// Quality returns the quality of revision of service (in namespace):
	// its labelled rows and at least the named metrics it reports
	// (QualityObjective.Metric names); ok is false when no replica of it
	// reports any. It must honour ctx's cancellation.
	Quality(ctx context.Context, namespace, service, revision string, metrics []string) (q Quality, ok bool, err error)
}

// Counters are a revision's cumulative counts since it started serving:
// the shape of the ingress's histogram.
type Counters struct {
	Requests   float64
	Errors     float64
	SumSeconds float64
	// Buckets are cumulative counts of requests no slower than LE
	// seconds, LE increasing.
	Buckets []Bucket
}

// Bucket is one histogram bucket.
type Bucket struct {
	LE    float64
	Count float64
}

// LocalSource answers from counters read in-process (ferry up's router)
// when no Prometheus is configured. It keeps a short history of readings
// per revision and subtracts the reading at or before a window's start.
// Readings are taken when queried, so the Runner's own ticks provide the
// history; a window that starts before the first reading counts from
// zero (the revision's whole life).
type LocalSource struct {
	read func(namespace, revision string) Counters
	now  func() time.Time

	mu      sync.Mutex
	history map[string][]reading // by namespace/revision, oldest first
}

type reading struct {
	at time.Time
	c  Counters
}

// keepReadings bounds the history per revision.
const keepReadings = 512

// NewLocalSource returns a source over read.
func NewLocalSource(read func(namespace, revision string) Counters) *LocalSource {
	return &LocalSource{read: read, now: time.Now, history: map[string][]reading{}}
}

var _ Source = (*LocalSource)(nil)

// Query implements Source. end is taken as now: counters have no past.
func (l *LocalSource) Query(_ context.Context, namespace, revision string, start, _ time.Time) (Metrics, error) {
	cur := l.read(namespace, revision)
	now := l.now()
	key := namespace + "/" + revision
	l.mu.Lock()
	h := l.history[key]
	var base Counters
	for i := len(h) - 1; i >= 0; i-- {
		if !h[i].at.After(start) {
			base = h[i].c
			break
		}
	}
	h = append(h, reading{at: now, c: cur})
	if len(h) > keepReadings {
		h = h[len(h)-keepReadings:]
	}
	l.history[key] = h
	l.mu.Unlock()
	if cur.Requests < base.Requests { // counters reset: count from zero
		base = Counters{}
	}
	return delta(cur, base), nil
}

// Forget drops the history of revisions not in keep (namespace/revision).
func (l *LocalSource) Forget(keep map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.history {
		if !keep[k] {
			delete(l.history, k)
		}
	}
}

func delta(cur, base Counters) Metrics {
	m := Metrics{Requests: cur.Requests - base.Requests, Errors: cur.Errors - base.Errors, MeanLatency: math.NaN(), P95Latency: math.NaN()}
	if m.Requests <= 0 {
		return m
	}
	m.MeanLatency = (cur.SumSeconds - base.SumSeconds) / m.Requests
	bs := make([]Bucket, len(cur.Buckets))
	for i, b := range cur.Buckets {
		bs[i] = b
		if i < len(base.Buckets) && base.Buckets[i].LE == b.LE {
			bs[i].Count -= base.Buckets[i].Count
		}
	}
	m.P95Latency = quantile(0.95, bs, m.Requests)
	return m
}

// quantile estimates the q-quantile from cumulative buckets the way
// Prometheus's histogram_quantile does: linear within the bucket, the
// upper bound of the last finite bucket when the rank lies above it.
func quantile(q float64, buckets []Bucket, total float64) float64 {
	if total <= 0 || len(buckets) == 0 {
		return math.NaN()
	}
	rank := q * total
	prevLE, prevCount := 0.0, 0.0
	for _, b := range buckets {
		if b.Count >= rank {
			if b.Count == prevCount {
				return b.LE
			}
			return prevLE + (b.LE-prevLE)*(rank-prevCount)/(b.Count-prevCount)
		}
		prevLE, prevCount = b.LE, b.Count
	}
	return buckets[len(buckets)-1].LE
}

// CountersFromSnapshot turns the ingress's histogram of a revision into
// Counters (errors are the 5xx class).
func CountersFromSnapshot(s router.LatencySnapshot) Counters {
	var c Counters
	c.Buckets = make([]Bucket, len(router.LatencyBuckets))
	for i, le := range router.LatencyBuckets {
		c.Buckets[i].LE = le
	}
	for class, cs := range s.Classes {
		c.Requests += float64(cs.Count)
		c.SumSeconds += cs.SumSeconds
		if class == "5xx" {
			c.Errors += float64(cs.Count)
		}
		for i := range c.Buckets {
			c.Buckets[i].Count += float64(cs.Buckets[i])
		}
	}
	return c
}

// ScraperQuality reads revisions' accuracy from the replicas behind the
// ingress (their GET /v2/quality windows, merged per revision). A
// revision's windows are count-based (its last N labelled rows), not a
// step's: a canary revision's window holds only canary traffic, and labels
// arrive long after the step that made the predictions.
type ScraperQuality struct{ Scraper *quality.Scraper }

var _ QualitySource = ScraperQuality{}

// Quality implements QualitySource: every metric of the revision's merged
// window, classification or regression (the replicas report them all, so
// metrics is not needed).
func (s ScraperQuality) Quality(ctx context.Context, namespace, service, revision string, _ []string) (Quality, bool, error) {
	q, ok := s.Scraper.Revision(ctx, namespace, service, revision)
	if !ok {
		return Quality{}, false, nil
	}
	return QualityOf(q.Classification, q.Regression)
}

// QualityOf is the Quality of a window's classification or regression
// metrics; ok is false when it has neither.
func QualityOf(c *quality.Classification, r *quality.Regression) (Quality, bool, error) {
	out := Quality{Values: map[string]float64{}}
	switch {
	case c != nil:
		out.Labelled, out.Accuracy = float64(c.Samples), c.Accuracy
		out.Values["accuracy"] = c.Accuracy
		out.Values["f1_macro"] = c.F1Macro
		out.Values["precision_macro"] = c.PrecisionMacro
		out.Values["recall_macro"] = c.RecallMacro
		if c.LogLoss != nil {
			out.Values["log_loss"] = *c.LogLoss
		}
		if c.ROCAUC != nil {
			out.Values["roc_auc"] = *c.ROCAUC
		}
	case r != nil:
		out.Labelled = float64(r.Samples)
		out.Values["mae"] = r.MAE
		out.Values["rmse"] = r.RMSE
		if r.R2 != nil {
			out.Values["r2"] = *r.R2
		}
	default:
		return Quality{}, false, nil
	}
	return out, true, nil
}
