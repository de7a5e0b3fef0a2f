package rollout

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Action is what a decision does to the canary.
type Action string

// Actions.
const (
	Hold     Action = "hold"
	Advance  Action = "advance"
	Promote  Action = "promote"
	Rollback Action = "rollback"
)

// Phases of a rollout, kept in State.
const (
	PhaseProgressing = "Progressing"
	PhasePromoted    = "Promoted"
	PhaseRolledBack  = "RolledBack"
)

// Metrics are one revision's numbers over a step's window.
type Metrics struct {
	Requests float64 `json:"requests"`
	// Errors are answers with a 5xx status.
	Errors float64 `json:"errors"`
	// MeanLatency and P95Latency are in seconds; NaN when unknown.
	MeanLatency float64 `json:"meanLatencySeconds"`
	P95Latency  float64 `json:"p95LatencySeconds"`
}

// ErrorRate is Errors/Requests, 0 without requests.
func (m Metrics) ErrorRate() float64 {
	if m.Requests <= 0 {
		return 0
	}
	return m.Errors / m.Requests
}

func (m Metrics) value(metric string) float64 {
	switch metric {
	case MetricErrorRate:
		return m.ErrorRate()
	case MetricMeanLatency:
		return m.MeanLatency
	case MetricP95Latency:
		return m.P95Latency
	}
	return math.NaN()
}

// Quality is a revision's model quality over its window of labelled rows
// (predictions whose ground truth came back as feedback).
type Quality struct {
	Labelled float64 `json:"labelled"`
	// Accuracy is the classification accuracy (0 for a regression model).
	Accuracy float64 `json:"accuracy"`
	// Values are the quality metrics by name (accuracy, f1_macro, mae,
	// ...; QualityObjectives), those the model reports.
	Values map[string]float64 `json:"values,omitempty"`
}

// value returns metric's value, and whether the revision reports it.
func (q *Quality) value(metric string) (float64, bool) {
	if q == nil {
		return math.NaN(), false
	}
	if v, ok := q.Values[metric]; ok && !math.IsNaN(v) {
		return v, true
	}
	if metric == "accuracy" && q.Values == nil && q.Labelled > 0 {
		return q.Accuracy, true // a source that reports accuracy only
	}
	return math.NaN(), false
}

// Observation is what a decision is made on: the canary's metrics, and
// the stable revision's where the policy compares with it; with an
// quality objective, both revisions' quality (nil: none reported).
type Observation struct {
	Canary        Metrics
	Stable        *Metrics
	CanaryQuality *Quality
	StableQuality *Quality
}

// Decision is Decide's answer. Percent is the canaryTrafficPercent to
// apply (100 on promote, 0 on rollback, unchanged on hold).
type Decision struct {
	Action  Action
	Percent int
	Reason  string
}

// Decide judges the current step of a rollout. It is pure: the same
// inputs give the same decision.
//
//   - A canary with at least MinRequests requests that breaks an
//     objective is rolled back at once, even mid-step; so is one whose
//     quality falls more than a quality objective's limit below the
//     stable revision's (accuracy-drop, mae-rise, ...) once both have
//     MinLabelled labelled rows.
//   - Otherwise the step holds until Interval has passed since it began
//     and it has MinRequests requests (and, with a quality objective,
//     until both revisions have MinLabelled labelled rows and report the
//     metric: labels come late, and a canary is not promoted on quality
//     it has not shown).
//   - Then it advances to the next step, or promotes after the last.
func Decide(p *Policy, s State, obs Observation, now time.Time) Decision {
	hold := Decision{Action: Hold, Percent: s.Percent}
	if s.Phase != PhaseProgressing {
		hold.Reason = "rollout is " + s.Phase
		return hold
	}
	c := obs.Canary
	enough := c.Requests >= float64(max(p.MinRequests, 1))
	if failed := p.failures(obs, enough); failed != "" {
		return Decision{Action: Rollback, Percent: 0, Reason: fmt.Sprintf("step %d (%d%%): %s", s.Step+1, s.Percent, failed)}
	}
	if left := s.StepStarted.Add(p.Interval).Sub(now); left > 0 {
		hold.Reason = fmt.Sprintf("step %d (%d%%): %s left, %.0f requests", s.Step+1, s.Percent, left.Round(time.Millisecond), c.Requests)
		return hold
	}
	if !enough {
		hold.Reason = fmt.Sprintf("step %d (%d%%): %.0f of %d requests needed", s.Step+1, s.Percent, c.Requests, p.MinRequests)
		return hold
	}
	for _, o := range p.Objectives {
		if !isQuality(o.Metric) || p.qualityJudged(o, obs) {
			continue
		}
		if !p.enoughLabelled(obs) {
			hold.Reason = fmt.Sprintf("step %d (%d%%): %s needs %d labelled rows of each revision: canary %s, stable %s",
				s.Step+1, s.Percent, o.Metric, p.MinLabelled, labelled(obs.CanaryQuality), labelled(obs.StableQuality))
		} else {
			q := QualityObjectives[o.Metric]
			hold.Reason = fmt.Sprintf("step %d (%d%%): %s needs the %s of both revisions, and the canary or the stable revision reports none (a metric of the other kind of model, classification or regression?)",
				s.Step+1, s.Percent, o.Metric, q.Metric)
		}
		return hold
	}
	passed := p.summary(obs)
	if next := s.Step + 1; next < len(p.Steps) {
		return Decision{Action: Advance, Percent: p.Steps[next], Reason: fmt.Sprintf("step %d (%d%%) passed: %s", s.Step+1, s.Percent, passed)}
	}
	return Decision{Action: Promote, Percent: 100, Reason: fmt.Sprintf("last step (%d%%) passed: %s", s.Percent, passed)}
}

// judged returns the value an objective is judged on, and how to write it.
func (p *Policy) judged(o Objective, obs Observation) (float64, string) {
	v := obs.Canary.value(o.Metric)
	text := formatValue(o.Metric, v)
	if p.CompareStable && obs.Stable != nil && obs.Stable.Requests >= float64(max(p.MinRequests, 1)) {
		sv := obs.Stable.value(o.Metric)
		if !math.IsNaN(sv) {
			text = fmt.Sprintf("%s (stable %s)", text, formatValue(o.Metric, sv))
			v -= sv
		}
	}
	return v, text
}

// enoughLabelled reports whether both revisions have enough labelled rows
// for quality objectives to be judged.
func (p *Policy) enoughLabelled(obs Observation) bool {
	min := float64(max(p.MinLabelled, 1))
	return obs.CanaryQuality != nil && obs.StableQuality != nil && obs.CanaryQuality.Labelled >= min && obs.StableQuality.Labelled >= min
}

// qualityJudged reports whether quality objective o can be judged: both
// revisions have enough labelled rows and report its metric.
func (p *Policy) qualityJudged(o Objective, obs Observation) bool {
	m := QualityObjectives[o.Metric].Metric
	_, c := obs.CanaryQuality.value(m)
	_, st := obs.StableQuality.value(m)
	return p.enoughLabelled(obs) && c && st
}

func labelled(q *Quality) string {
	if q == nil {
		return "none"
	}
	return fmt.Sprintf("%.0f", q.Labelled)
}

// qualityText returns quality objective o's judged value (the drop or
// the rise) and writes it with what it is made of.
func qualityText(o Objective, obs Observation) (float64, string) {
	q := QualityObjectives[o.Metric]
	c, _ := obs.CanaryQuality.value(q.Metric)
	st, _ := obs.StableQuality.value(q.Metric)
	v := c - st
	if q.HigherBetter {
		v = st - c
	}
	return v, fmt.Sprintf("%.4g (canary %.4g over %.0f labelled, stable %.4g over %.0f)",
		v, c, obs.CanaryQuality.Labelled, st, obs.StableQuality.Labelled)
}

// failures lists the broken objectives, or "" when all hold. An unknown
// value (a latency with no requests) breaks nothing. Request objectives
// are judged only with enough requests; quality objectives only with
// enough labelled rows.
func (p *Policy) failures(obs Observation, enough bool) string {
	var out []string
	for _, o := range p.Objectives {
		if isQuality(o.Metric) {
			if p.qualityJudged(o, obs) {
				if v, text := qualityText(o, obs); v > o.Limit {
					out = append(out, fmt.Sprintf("%s %s > %s", o.Metric, text, formatValue(o.Metric, o.Limit)))
				}
			}
			continue
		}
		if !enough {
			continue
		}
		v, text := p.judged(o, obs)
		if !math.IsNaN(v) && v > o.Limit {
			out = append(out, fmt.Sprintf("%s %s > %s", o.Metric, text, limitText(p, o)))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, ", ") + fmt.Sprintf(" (%.0f requests, %.0f errors)", obs.Canary.Requests, obs.Canary.Errors)
}

func (p *Policy) summary(obs Observation) string {
	var out []string
	for _, o := range p.Objectives {
		if isQuality(o.Metric) {
			_, text := qualityText(o, obs)
			out = append(out, fmt.Sprintf("%s %s <= %s", o.Metric, text, formatValue(o.Metric, o.Limit)))
			continue
		}
		_, text := p.judged(o, obs)
		out = append(out, fmt.Sprintf("%s %s <= %s", o.Metric, text, limitText(p, o)))
	}
	out = append(out, fmt.Sprintf("%.0f requests, %.0f errors", obs.Canary.Requests, obs.Canary.Errors))
	return strings.Join(out, ", ")
}

func limitText(p *Policy, o Objective) string {
	s := formatValue(o.Metric, o.Limit)
	if p.CompareStable {
		s = "stable + " + s
	}
	return s
}

func formatValue(metric string, v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case metric == MetricErrorRate || isQuality(metric):
		return fmt.Sprintf("%.4g", v)
	}
	return seconds(v)
}

// metricsJSON is Metrics on the wire: an unknown latency is null (JSON
// has no NaN).
type metricsJSON struct {
	Requests    float64  `json:"requests"`
	Errors      float64  `json:"errors"`
	MeanLatency *float64 `json:"meanLatencySeconds"`
	P95Latency  *float64 `json:"p95LatencySeconds"`
}

// MarshalJSON writes NaN latencies as null.
func (m Metrics) MarshalJSON() ([]byte, error) {
	opt := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(metricsJSON{m.Requests, m.Errors, opt(m.MeanLatency), opt(m.P95Latency)})
}

// UnmarshalJSON reads null latencies as NaN.
func (m *Metrics) UnmarshalJSON(b []byte) error {
	var j metricsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	val := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	*m = Metrics{Requests: j.Requests, Errors: j.Errors, MeanLatency: val(j.MeanLatency), P95Latency: val(j.P95Latency)}
	return nil
}
