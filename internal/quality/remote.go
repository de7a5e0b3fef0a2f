package quality

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MergeClassification merges the classification metrics of disjoint
// windows (the replicas of one revision) as if computed over their union.
// Accuracy, precision, recall, F1 and the confusion matrix are exact (they
// are functions of the summed confusion matrix); log loss is exact (a mean
// weighted by its samples); ROC AUC is not mergeable and is left out.
func MergeClassification(cs []*Classification) *Classification {
	var parts []*Classification
	for _, c := range cs {
		if c != nil && c.Samples > 0 {
			parts = append(parts, c)
		}
	}
	switch len(parts) {
	case 0:
		return nil
	case 1:
		return parts[0]
	}
	var labels []string
	for _, c := range parts {
		labels = sortedLabels(labels, c.Labels)
	}
	idx := make(map[string]int, len(labels))
	for i, l := range labels {
		idx[l] = i
	}
	cm := make([][]int64, len(labels))
	for i := range cm {
		cm[i] = make([]int64, len(labels))
	}
	var llSum float64
	var llN int
	for _, c := range parts {
		for i, row := range c.Confusion {
			for j, v := range row {
				cm[idx[c.Labels[i]]][idx[c.Labels[j]]] += v
			}
		}
		if c.LogLoss != nil {
			llSum += *c.LogLoss * float64(c.ProbSamples)
			llN += c.ProbSamples
		}
	}
	out := fromConfusion(labels, cm)
	if llN > 0 {
		ll := llSum / float64(llN)
		out.LogLoss, out.ProbSamples = &ll, llN
	}
	return out
}

// MergeRegression merges regression metrics of disjoint windows: MAE and
// RMSE exactly (weighted means of |e| and e²); R² needs the truths' own
// mean and is left out.
func MergeRegression(rs []*Regression) *Regression {
	var parts []*Regression
	for _, r := range rs {
		if r != nil && r.Samples > 0 {
			parts = append(parts, r)
		}
	}
	switch len(parts) {
	case 0:
		return nil
	case 1:
		return parts[0]
	}
	out := &Regression{}
	var sq float64
	for _, r := range parts {
		out.Samples += r.Samples
		out.MAE += r.MAE * float64(r.Samples)
		sq += r.RMSE * r.RMSE * float64(r.Samples)
	}
	out.MAE /= float64(out.Samples)
	out.RMSE = math.Sqrt(sq / float64(out.Samples))
	return out
}

// Replicas names the replicas of one revision of a service, where a
// Scraper reads their windows.
type Replicas struct {
	Namespace string
	Service   string
	Revision  string
	// Backends are the replicas' HTTP addresses (host:port).
	Backends []string
}

// RevisionQuality is one model's window in one revision, merged over the
// revision's replicas.
type RevisionQuality struct {
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	Revision  string `json:"revision"`
	Model     string `json:"model"`
	// Replicas is how many replicas had a window for the model.
	Replicas       int             `json:"replicas"`
	Labelled       int             `json:"labelled"`
	Classification *Classification `json:"classification,omitempty"`
	Regression     *Regression     `json:"regression,omitempty"`
}

// ScraperConfig configures a Scraper.
type ScraperConfig struct {
	// Revisions lists the revisions to read, with their ready replicas.
	Revisions func() []Replicas
	// Client reads the replicas (default: a 2s timeout).
	Client *http.Client
	// MaxAge is how long a reading is reused (default 1s), so a scrape and
	// a rollout tick that come together read the replicas once.
	MaxAge time.Duration
	Logger *slog.Logger
	Now    func() time.Time
}

// Scraper reads the quality windows of the replicas behind an ingress
// (GET /v2/quality on each) and merges them per revision. It serves them
// as Prometheus metrics labelled by namespace, service, model and revision
// (Collector) and to the rollout runner (Revision).
type Scraper struct {
	cfg ScraperConfig

	mu   sync.Mutex // held during a reading: concurrent callers share it
	at   time.Time
	last []RevisionQuality
}

// NewScraper returns a Scraper.
func NewScraper(cfg ScraperConfig) *Scraper {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 2 * time.Second}
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Scraper{cfg: cfg}
}

// All returns every revision's windows, sorted, read at most MaxAge ago.
// A replica that does not answer (quality off, starting, gone) is left
// out; its windows come back when it answers again.
func (s *Scraper) All(ctx context.Context) []RevisionQuality {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := s.cfg.Now(); s.last == nil || now.Sub(s.at) >= s.cfg.MaxAge {
		s.last, s.at = s.read(ctx), now
	}
	return s.last
}

// Revision returns the windows of one revision, merged over its models
// (one model in the usual single-model service), and whether any replica
// of it reported one.
func (s *Scraper) Revision(ctx context.Context, namespace, service, revision string) (RevisionQuality, bool) {
	out := RevisionQuality{Namespace: namespace, Service: service, Revision: revision}
	var cls []*Classification
	var regs []*Regression
	found := false
	for _, q := range s.All(ctx) {
		if q.Namespace != namespace || q.Service != service || q.Revision != revision {
			continue
		}
		found = true
		out.Model = q.Model
		out.Replicas = max(out.Replicas, q.Replicas)
		out.Labelled += q.Labelled
		cls, regs = append(cls, q.Classification), append(regs, q.Regression)
	}
	out.Classification, out.Regression = MergeClassification(cls), MergeRegression(regs)
	return out, found
}

func (s *Scraper) read(ctx context.Context) []RevisionQuality {
	type key struct{ ns, svc, rev, model string }
	type acc struct {
		n    int
		lab  int
		cls  []*Classification
		regs []*Regression
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		accs = map[key]*acc{}
	)
	for _, r := range s.cfg.Revisions() {
		for _, be := range r.Backends {
			wg.Go(func() {
				q, err := s.fetch(ctx, be)
				if err != nil {
					s.cfg.Logger.Debug("quality: replica not read", "revision", r.Revision, "backend", be, "err", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, snap := range q.Revisions {
					// A replica serves one revision; its label is the
					// revision ferry up gave it (--quality-revision).
					k := key{r.Namespace, r.Service, r.Revision, snap.Model}
					a := accs[k]
					if a == nil {
						a = &acc{}
						accs[k] = a
					}
					a.n++
					a.lab += snap.Labelled
					a.cls, a.regs = append(a.cls, snap.Classification), append(a.regs, snap.Regression)
				}
			})
		}
	}
	wg.Wait()
	out := make([]RevisionQuality, 0, len(accs))
	for k, a := range accs {
		out = append(out, RevisionQuality{Namespace: k.ns, Service: k.svc, Revision: k.rev, Model: k.model, Replicas: a.n, Labelled: a.lab,
			Classification: MergeClassification(a.cls), Regression: MergeRegression(a.regs)})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Revision != b.Revision {
			return a.Revision < b.Revision
		}
		return a.Model < b.Model
	})
	return out
}

func (s *Scraper) fetch(ctx context.Context, backend string) (*QualityResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+backend+PathAllQuality, nil)
	if err != nil {
		return nil, fmt.Errorf("read quality: %w", err)
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read quality: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("read quality: %s", resp.Status)
	}
	var q QualityResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(&q); err != nil {
		return nil, fmt.Errorf("read quality: %w", err)
	}
	return &q, nil
}

var (
	labelsSvc    = []string{"namespace", "service", "revision", "model"}
	descSvcRows  = prometheus.NewDesc("ferry_quality_labelled_rows", "Labelled rows in the metrics windows of a revision's replicas.", labelsSvc, nil)
	descSvcRepl  = prometheus.NewDesc("ferry_quality_replicas", "Replicas of a revision whose quality windows were read.", labelsSvc, nil)
	descSvcValue = map[string]*prometheus.Desc{}
)

func init() {
	for _, n := range metricNames {
		descSvcValue[n] = prometheus.NewDesc("ferry_quality_"+n, "Model quality of a revision over its replicas' labelled windows: "+n+".", labelsSvc, nil)
	}
}

// Collector exposes the merged windows: ferry_quality_accuracy and the
// rest labelled {namespace, service, revision, model}. ROC AUC and R² are
// exported only for revisions read from one replica (they do not merge).
func (s *Scraper) Collector() prometheus.Collector { return scraperCollector{s} }

type scraperCollector struct{ s *Scraper }

func (c scraperCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSvcRows
	ch <- descSvcRepl
	for _, d := range descSvcValue {
		ch <- d
	}
}

func (c scraperCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // a Collect has no context of its own
	defer cancel()
	for _, q := range c.s.All(ctx) {
		lv := []string{q.Namespace, q.Service, q.Revision, q.Model}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
		}
		gauge(descSvcRows, float64(q.Labelled))
		gauge(descSvcRepl, float64(q.Replicas))
		if cl := q.Classification; cl != nil {
			gauge(descSvcValue["accuracy"], cl.Accuracy)
			gauge(descSvcValue["precision_macro"], cl.PrecisionMacro)
			gauge(descSvcValue["recall_macro"], cl.RecallMacro)
			gauge(descSvcValue["f1_macro"], cl.F1Macro)
			if cl.LogLoss != nil {
				gauge(descSvcValue["log_loss"], *cl.LogLoss)
			}
			if cl.ROCAUC != nil {
				gauge(descSvcValue["roc_auc"], *cl.ROCAUC)
			}
		}
		if rg := q.Regression; rg != nil {
			gauge(descSvcValue["mae"], rg.MAE)
			gauge(descSvcValue["rmse"], rg.RMSE)
			if rg.R2 != nil {
				gauge(descSvcValue["r2"], *rg.R2)
			}
		}
	}
}
