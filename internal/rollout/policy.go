package rollout

import (
	"errors"
	"fmt"
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
	// canary's, each over its labelled window (quality monitoring).
	MetricAccuracyDrop = "accuracy-drop"
)

// Objective is an upper limit on one metric of the canary.
type Objective struct {
	Metric string
	// Limit is a fraction for error-rate and accuracy-drop, seconds for
	// latencies.
	Limit float64
}

// String writes the objective as the annotation spells it.
func (o Objective) String() string {
	if o.Metric == MetricErrorRate || o.Metric == MetricAccuracyDrop {
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
	// joined) both the canary and the stable revision need before
	// accuracy-drop is judged; until then a step with that objective
	// cannot pass.
	MinLabelled int
}

// Accuracy returns the accuracy-drop objective, if the policy has one.
func (p *Policy) Accuracy() (Objective, bool) {
	for _, o := range p.Objectives {
		if o.Metric == MetricAccuracyDrop {
			return o, true
		}
	}
	return Objective{}, false
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
		switch name {
		case MetricErrorRate, MetricAccuracyDrop:
			v, err := strconv.ParseFloat(val, 64)
			if err != nil || v < 0 || v > 1 {
				return nil, fmt.Errorf("objective %q: want a fraction in 0..1", f)
			}
			o.Limit = v
		case MetricMeanLatency, MetricP95Latency:
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("objective %q: want a duration such as 50ms", f)
			}
			o.Limit = d.Seconds()
		default:
			return nil, fmt.Errorf("objective %q: unknown metric %q (want %s, %s, %s or %s)", f, name, MetricErrorRate, MetricMeanLatency, MetricP95Latency, MetricAccuracyDrop)
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
