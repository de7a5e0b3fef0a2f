package rollout

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Annotation keys. The policy keys are written by people; the state and
// control keys by the Runner and `ferry rollout`.
const (
	Prefix = "serving.ferryserve.io/"

	AnnotationSteps         = Prefix + "rollout-steps"
	AnnotationInterval      = Prefix + "rollout-interval"
	AnnotationObjectives    = Prefix + "rollout-objectives"
	AnnotationMinRequests   = Prefix + "rollout-min-requests"
	AnnotationCompareStable = Prefix + "rollout-compare-stable"
	AnnotationMinLabelled   = Prefix + "rollout-min-labelled"

	// AnnotationState holds the Runner's State as JSON.
	AnnotationState = Prefix + "rollout-state"
	// AnnotationRolledBack carries the reason of the last rollback.
	AnnotationRolledBack = Prefix + "rollout-rolled-back"
	// AnnotationPaused ("true") holds the rollout at its current step.
	AnnotationPaused = Prefix + "rollout-paused"
	// AnnotationAbort ("true") asks the Runner to roll back now.
	AnnotationAbort = Prefix + "rollout-abort"
)

// Defaults of the optional policy annotations.
const (
	DefaultInterval    = 30 * time.Second
	DefaultMinRequests = 100
	DefaultMinLabelled = 500
)

// Objective metrics.
const (
	MetricErrorRate   = "error-rate"
	MetricMeanLatency = "mean-latency"
	MetricP95Latency  = "p95-latency"
	// MetricAccuracyDrop is the stable revision's accuracy minus the
	// canary's, each over its labelled window (quality monitoring). The
	// other quality objectives are in QualityObjectives.
	MetricAccuracyDrop = "accuracy-drop"
)

// QualityObjective is an objective on a model-quality metric of quality
// monitoring (docs/quality.md), judged on the canary's and the stable
// revision's labelled windows: for a metric where higher is better the
// objective limits the drop (stable − canary), otherwise the rise
// (canary − stable).
type QualityObjective struct {
	// Metric is the quality metric, as ferry serve exports it
	// (ferry_quality_<Metric>) and quality.Scraper reads it.
	Metric       string
	HigherBetter bool
	// Fraction: the metric lies in 0..1, and so must the limit.
	Fraction bool
}

// QualityObjectives are the objective names on quality metrics:
// classification accuracy, macro F1, precision and recall and ROC AUC may
// not drop, log loss may not rise; regression R² may not drop, MAE and
// RMSE (in the target's units) may not rise.
var QualityObjectives = map[string]QualityObjective{
	MetricAccuracyDrop: {Metric: "accuracy", HigherBetter: true, Fraction: true},
	"f1-drop":          {Metric: "f1_macro", HigherBetter: true, Fraction: true},
	"precision-drop":   {Metric: "precision_macro", HigherBetter: true, Fraction: true},
	"recall-drop":      {Metric: "recall_macro", HigherBetter: true, Fraction: true},
	"roc-auc-drop":     {Metric: "roc_auc", HigherBetter: true, Fraction: true},
	"log-loss-rise":    {Metric: "log_loss"},
	"r2-drop":          {Metric: "r2", HigherBetter: true},
	"mae-rise":         {Metric: "mae"},
	"rmse-rise":        {Metric: "rmse"},
}

// isQuality reports whether metric names a quality objective.
func isQuality(metric string) bool {
	_, ok := QualityObjectives[metric]
	return ok
}

// Objective is an upper limit on one metric of the canary.
type Objective struct {
	Metric string
	// Limit is a fraction for error-rate, seconds for latencies, and in
	// the metric's own units for quality objectives.
	Limit float64
}

// String writes the objective as the annotation spells it.
func (o Objective) String() string {
	if o.Metric == MetricErrorRate || isQuality(o.Metric) {
		return fmt.Sprintf("%s<=%g", o.Metric, o.Limit)
	}
	return fmt.Sprintf("%s<=%s", o.Metric, seconds(o.Limit))
}

// Policy is a service's rollout policy, read once from its annotations.
type Policy struct {
	// Steps are the canary percents in order, each in 1..99; after the
	// last one passes, the canary is promoted (a trailing 100 in the
	// annotation means the same).
	Steps []int
	// Interval is how long each step lasts before it is judged.
	Interval time.Duration
	// Objectives must all hold for the canary to advance.
	Objectives []Objective
	// MinRequests is how many canary requests a step needs before it is
	// judged.
	MinRequests int
	// CompareStable judges the canary's excess over the stable revision
	// (canary − stable ≤ limit) instead of its absolute values.
	CompareStable bool
	// MinLabelled is how many labelled rows (predictions whose feedback
	// joined) both the canary and the stable revision need before a
	// quality objective is judged; until then a step with one cannot pass.
	MinLabelled int
}

// QualityMetrics are the quality metrics the policy's objectives read
// (nil: none, and no quality is fetched).
func (p *Policy) QualityMetrics() []string {
	var out []string
	for _, o := range p.Objectives {
		if q, ok := QualityObjectives[o.Metric]; ok {
			out = append(out, q.Metric)
		}
	}
	return out
}

// ParsePolicy reads the policy from annotations. It returns nil, nil when
// the service has no rollout-steps annotation (no policy), and an error
// naming the annotation when a value is invalid.
func ParsePolicy(ann map[string]string) (*Policy, error) {
	steps, ok := ann[AnnotationSteps]
	if !ok {
		for _, k := range []string{AnnotationInterval, AnnotationObjectives, AnnotationMinRequests, AnnotationCompareStable, AnnotationMinLabelled} {
			if _, set := ann[k]; set {
				return nil, fmt.Errorf("annotation %s is set but %s is not: a rollout policy needs its steps", k, AnnotationSteps)
			}
		}
		return nil, nil
	}
	p := &Policy{Interval: DefaultInterval, MinRequests: DefaultMinRequests, MinLabelled: DefaultMinLabelled}
	var errs []error
	var err error
	if p.Steps, err = parseSteps(steps); err != nil {
		errs = append(errs, fmt.Errorf("annotation %s %q: %w", AnnotationSteps, steps, err))
	}
	if v, ok := ann[AnnotationInterval]; ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("annotation %s %q: want a duration such as 30s", AnnotationInterval, v))
		case d < 100*time.Millisecond:
			errs = append(errs, fmt.Errorf("annotation %s %q: want at least 100ms", AnnotationInterval, v))
		default:
			p.Interval = d
		}
	}
	if v, ok := ann[AnnotationObjectives]; ok {
		if p.Objectives, err = parseObjectives(v); err != nil {
			errs = append(errs, fmt.Errorf("annotation %s %q: %w", AnnotationObjectives, v, err))
		}
	}
	if v, ok := ann[AnnotationMinRequests]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("annotation %s %q: want a whole number ≥ 0", AnnotationMinRequests, v))
		} else {
			p.MinRequests = n
		}
	}
	if v, ok := ann[AnnotationMinLabelled]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("annotation %s %q: want a whole number ≥ 1", AnnotationMinLabelled, v))
		} else {
			p.MinLabelled = n
		}
	}
	if v, ok := ann[AnnotationCompareStable]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, fmt.Errorf("annotation %s %q: want true or false", AnnotationCompareStable, v))
		}
		p.CompareStable = b
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func parseSteps(s string) ([]int, error) {
	var out []int
	parts := strings.Split(s, ",")
	for i, f := range parts {
		f = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(f), "%"))
		n, err := strconv.Atoi(f)
		switch {
		case err != nil:
			return nil, fmt.Errorf("step %q is not a whole percent", f)
		case n < 1 || n > 100:
			return nil, fmt.Errorf("step %d is outside 1..100", n)
		case n == 100 && i != len(parts)-1:
			return nil, errors.New("100 may only be the last step")
		case len(out) > 0 && n <= out[len(out)-1]:
			return nil, fmt.Errorf("steps must increase: %d after %d", n, out[len(out)-1])
		}
		if n < 100 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("want at least one step below 100, e.g. 10,25,50,100")
	}
	return out, nil
}

func parseObjectives(s string) ([]Objective, error) {
	var out []Objective
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, val, ok := strings.Cut(f, "<=")
		if !ok {
			return nil, fmt.Errorf("objective %q: want METRIC<=LIMIT, e.g. error-rate<=0.01", f)
		}
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		o := Objective{Metric: name}
		q, quality := QualityObjectives[name]
		switch {
		case name == MetricErrorRate || quality && q.Fraction:
			v, err := strconv.ParseFloat(val, 64)
			if err != nil || v < 0 || v > 1 {
				return nil, fmt.Errorf("objective %q: want a fraction in 0..1", f)
			}
			o.Limit = v
		case quality:
			v, err := strconv.ParseFloat(val, 64)
			if err != nil || v < 0 || math.IsInf(v, 0) {
				return nil, fmt.Errorf("objective %q: want a number ≥ 0 (in the %s's units)", f, q.Metric)
			}
			o.Limit = v
		case name == MetricMeanLatency || name == MetricP95Latency:
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("objective %q: want a duration such as 50ms", f)
			}
			o.Limit = d.Seconds()
		default:
			names := slices.Sorted(maps.Keys(QualityObjectives))
			return nil, fmt.Errorf("objective %q: unknown metric %q (want %s, %s, %s or a quality objective: %s)", f, name,
				MetricErrorRate, MetricMeanLatency, MetricP95Latency, strings.Join(names, ", "))
		}
		if slices.ContainsFunc(out, func(x Objective) bool { return x.Metric == name }) {
			return nil, fmt.Errorf("objective %s given twice", name)
		}
		out = append(out, o)
	}
	return out, nil
}

// seconds writes a latency in seconds the way durations are written.
func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(10 * time.Microsecond).String()
}
