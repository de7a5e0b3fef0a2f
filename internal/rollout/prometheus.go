package rollout

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PrometheusSource queries a Prometheus server's HTTP API for the
// ingress's per-revision histogram (ferry_revision_request_duration_seconds
// by default), the way Iter8 queries Knative's revision metrics.
type PrometheusSource struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:9090.
	URL string
	// Metric is the histogram's name (without _count, _sum, _bucket).
	Metric string
	// ErrorMatcher selects the histogram's server-error series:
	// response_code_class="5xx" for the ingress's histogram (the default),
	// code=~"5.." for ferry serve's ferry_request_duration_seconds.
	ErrorMatcher string
	Client       *http.Client
}

// DefaultErrorMatcher selects 5xx answers in the ingress's histogram.
const DefaultErrorMatcher = `response_code_class="5xx"`

var _ Source = (*PrometheusSource)(nil)

// NewPrometheusSource returns a source for the Prometheus at baseURL.
func NewPrometheusSource(baseURL, metric string) (*PrometheusSource, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus url %q: want http(s)://host:port", baseURL)
	}
	return &PrometheusSource{URL: strings.TrimRight(baseURL, "/"), Metric: metric, ErrorMatcher: DefaultErrorMatcher,
		Client: &http.Client{Timeout: 10 * time.Second}}, nil
}

// Queries returns the PromQL for a revision's requests, 5xx errors, mean
// and p95 latency over a window such as "30s".
func (p *PrometheusSource) Queries(namespace, revision, window string) (requests, errs, mean, p95 string) {
	sel := fmt.Sprintf(`namespace=%q,revision=%q`, namespace, revision)
	requests = fmt.Sprintf(`sum(increase(%s_count{%s}[%s]))`, p.Metric, sel, window)
	em := p.ErrorMatcher
	if em == "" {
		em = DefaultErrorMatcher
	}
	errs = fmt.Sprintf(`sum(increase(%s_count{%s,%s}[%s]))`, p.Metric, sel, em, window)
	mean = fmt.Sprintf(`sum(increase(%s_sum{%s}[%s])) / sum(increase(%s_count{%s}[%s]))`, p.Metric, sel, window, p.Metric, sel, window)
	p95 = fmt.Sprintf(`histogram_quantile(0.95, sum by (le) (increase(%s_bucket{%s}[%s])))`, p.Metric, sel, window)
	return requests, errs, mean, p95
}

// Query implements Source.
func (p *PrometheusSource) Query(ctx context.Context, namespace, revision string, start, end time.Time) (Metrics, error) {
	secs := int64(math.Ceil(end.Sub(start).Seconds()))
	window := strconv.FormatInt(max(secs, 1), 10) + "s"
	qr, qe, qm, qp := p.Queries(namespace, revision, window)
	m := Metrics{MeanLatency: math.NaN(), P95Latency: math.NaN()}
	for _, q := range []struct {
		promql string
		dst    *float64
		none   float64
	}{{qr, &m.Requests, 0}, {qe, &m.Errors, 0}, {qm, &m.MeanLatency, math.NaN()}, {qp, &m.P95Latency, math.NaN()}} {
		v, ok, err := p.instant(ctx, q.promql, end)
		if err != nil {
			return Metrics{}, err
		}
		if !ok {
			v = q.none
		}
		*q.dst = v
	}
	return m, nil
}

// RevisionTotals are one revision's cumulative request counters, summed
// over its pods as Prometheus last scraped them: the web console draws
// rates from two readings.
type RevisionTotals struct {
	Namespace, Revision string
	// Requests counts every answer, Errors those ErrorMatcher selects,
	// Sum their latencies in seconds.
	Requests, Errors, Sum float64
	// Buckets are the cumulative latency histogram's counts by upper
	// bound, "le" as Prometheus writes it ("+Inf" included).
	Buckets map[string]float64
}

// maxTotalsSeries bounds the series one Totals reading decodes.
const maxTotalsSeries = 50_000

// Totals reads every revision's cumulative totals with four instant
// queries, sorted by namespace and revision.
func (p *PrometheusSource) Totals(ctx context.Context) ([]RevisionTotals, error) {
	em := cmp.Or(p.ErrorMatcher, DefaultErrorMatcher)
	by := map[[2]string]*RevisionTotals{}
	get := func(l map[string]string) *RevisionTotals {
		k := [2]string{l["namespace"], l["revision"]}
		t := by[k]
		if t == nil {
			t = &RevisionTotals{Namespace: k[0], Revision: k[1], Buckets: map[string]float64{}}
			by[k] = t
		}
		return t
	}
	now := time.Now()
	for _, q := range []struct {
		promql string
		add    func(t *RevisionTotals, l map[string]string, v float64)
	}{
		{fmt.Sprintf(`sum by (namespace, revision) (%s_count)`, p.Metric), func(t *RevisionTotals, _ map[string]string, v float64) { t.Requests = v }},
		{fmt.Sprintf(`sum by (namespace, revision) (%s_count{%s})`, p.Metric, em), func(t *RevisionTotals, _ map[string]string, v float64) { t.Errors = v }},
		{fmt.Sprintf(`sum by (namespace, revision) (%s_sum)`, p.Metric), func(t *RevisionTotals, _ map[string]string, v float64) { t.Sum = v }},
		{fmt.Sprintf(`sum by (namespace, revision, le) (%s_bucket)`, p.Metric), func(t *RevisionTotals, l map[string]string, v float64) { t.Buckets[l["le"]] = v }},
	} {
		samples, err := p.vector(ctx, q.promql, now)
		if err != nil {
			return nil, err
		}
		for _, s := range samples {
			if s.labels["revision"] == "" || math.IsNaN(s.value) {
				continue
			}
			q.add(get(s.labels), s.labels, s.value)
		}
	}
	out := make([]RevisionTotals, 0, len(by))
	for _, t := range by {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b RevisionTotals) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Revision, b.Revision))
	})
	return out, nil
}

// instant runs one instant query; ok is false when the result is empty.
func (p *PrometheusSource) instant(ctx context.Context, promql string, at time.Time) (float64, bool, error) {
	samples, err := p.vector(ctx, promql, at)
	if err != nil {
		return 0, false, err
	}
	if len(samples) == 0 {
		return 0, false, nil
	}
	if len(samples) > 1 {
		return 0, false, errors.New("prometheus query " + promql + ": more than one series")
	}
	if math.IsNaN(samples[0].value) {
		return 0, false, nil
	}
	return samples[0].value, true, nil
}

// sample is one series of an instant vector.
type sample struct {
	labels map[string]string
	value  float64
}

// vector runs one instant query that answers a vector.
func (p *PrometheusSource) vector(ctx context.Context, promql string, at time.Time) ([]sample, error) {
	form := url.Values{"query": {promql}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("prometheus query: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus query: %w", err)
	}
	defer resp.Body.Close()
	const maxAnswer = 32 << 20
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("prometheus query: read answer: %w", err)
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("prometheus query %s: answer over %d MiB", promql, maxAnswer>>20)
	}
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string  `json:"metric"`
				Value  [2]json.RawMessage `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("prometheus query: %s: decode answer: %w", resp.Status, err)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("prometheus query %s: %s", promql, out.Error)
	}
	if out.Data.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus query %s: result type %q, want vector", promql, out.Data.ResultType)
	}
	if len(out.Data.Result) > maxTotalsSeries {
		return nil, fmt.Errorf("prometheus query %s: %d series, more than %d", promql, len(out.Data.Result), maxTotalsSeries)
	}
	samples := make([]sample, 0, len(out.Data.Result))
	for _, r := range out.Data.Result {
		var s string
		if err := json.Unmarshal(r.Value[1], &s); err != nil {
			return nil, fmt.Errorf("prometheus query: sample value: %w", err)
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus query: sample value %q: %w", s, err)
		}
		samples = append(samples, sample{labels: r.Metric, value: v})
	}
	return samples, nil
}

// QualityQueries are the PromQL of a revision's labelled rows and of
// each named quality metric over the quality metrics `ferry serve
// --quality-dir` exports per pod (docs/quality.md): the rows summed, each
// metric weighted by each pod's rows (pods with none left out, their
// metrics being NaN). A weighted mean is exact for accuracy and MAE; for
// the others (F1, RMSE, R², ...) it approximates the metric of the pods'
// windows pooled.
func QualityQueries(namespace, revision string, metrics ...string) (labelled string, values []string) {
	sel := fmt.Sprintf(`namespace=%q,revision=%q`, namespace, revision)
	rows := fmt.Sprintf(`(ferry_quality_labelled_rows{%s} > 0)`, sel)
	labelled = fmt.Sprintf(`sum(%s)`, rows)
	for _, m := range metrics {
		values = append(values, fmt.Sprintf(`sum(ferry_quality_%s{%s} * %s) / sum(%s)`, m, sel, rows, rows))
	}
	return labelled, values
}

// Quality implements QualitySource over the pods' quality metrics: under
// the operator each predictor pod journals its own predictions and takes
// the feedback sent to it, and Prometheus adds up their windows. A metric
// no pod reports is left out of Values.
func (p *PrometheusSource) Quality(ctx context.Context, namespace, _ string, revision string, metrics []string) (Quality, bool, error) {
	ql, qs := QualityQueries(namespace, revision, metrics...)
	now := time.Now()
	n, ok, err := p.instant(ctx, ql, now)
	if err != nil || !ok {
		return Quality{}, false, err
	}
	out := Quality{Labelled: n, Values: map[string]float64{}}
	for i, m := range metrics {
		v, ok, err := p.instant(ctx, qs[i], now)
		if err != nil {
			return Quality{}, false, err
		}
		if ok && !math.IsNaN(v) {
			out.Values[m] = v
		}
	}
	out.Accuracy = out.Values["accuracy"]
	return out, true, nil
}
