package rollout

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	pol := &Policy{Steps: []int{10, 25, 50}, Interval: 10 * time.Second, MinRequests: 100,
		Objectives: []Objective{{MetricErrorRate, 0.01}, {MetricMeanLatency, 0.05}, {MetricP95Latency, 0.1}}}
	relative := *pol
	relative.CompareStable = true
	at := func(step int) State {
		return State{Revision: "m-predictor-00002", Step: step, Percent: pol.Steps[step], StepStarted: t0, Phase: PhaseProgressing}
	}
	healthy := Metrics{Requests: 200, Errors: 1, MeanLatency: 0.004, P95Latency: 0.009}
	failing := Metrics{Requests: 200, Errors: 40, MeanLatency: 0.004, P95Latency: 0.009}
	slow := Metrics{Requests: 200, MeanLatency: 0.104, P95Latency: 0.11}
	few := Metrics{Requests: 20, Errors: 10, MeanLatency: 0.2, P95Latency: 0.3}
	noData := Metrics{MeanLatency: math.NaN(), P95Latency: math.NaN()}
	stableSlow := Metrics{Requests: 500, Errors: 0, MeanLatency: 0.1, P95Latency: 0.12}
	tests := []struct {
		name    string
		pol     *Policy
		state   State
		obs     Observation
		now     time.Time
		action  Action
		percent int
		reason  string
	}{
		{"mid step, healthy", pol, at(0), Observation{Canary: healthy}, t0.Add(5 * time.Second), Hold, 10, "5s left"},
		{"step done, healthy: advance", pol, at(0), Observation{Canary: healthy}, t0.Add(10 * time.Second), Advance, 25, "error-rate 0.005 <= 0.01"},
		{"middle step passes", pol, at(1), Observation{Canary: healthy}, t0.Add(11 * time.Second), Advance, 50, "step 2 (25%) passed"},
		{"last step passes: promote", pol, at(2), Observation{Canary: healthy}, t0.Add(10 * time.Second), Promote, 100, "last step (50%) passed"},
		{"errors mid step: rollback at once", pol, at(0), Observation{Canary: failing}, t0.Add(2 * time.Second), Rollback, 0, "error-rate 0.2 > 0.01 (200 requests, 40 errors)"},
		{"slow: rollback on latency", pol, at(1), Observation{Canary: slow}, t0.Add(10 * time.Second), Rollback, 0, "mean-latency 104ms > 50ms, p95-latency 110ms > 100ms"},
		{"too few requests to judge", pol, at(0), Observation{Canary: few}, t0.Add(30 * time.Second), Hold, 10, "20 of 100 requests"},
		{"no data", pol, at(0), Observation{Canary: noData}, t0.Add(30 * time.Second), Hold, 10, "0 of 100 requests"},
		{"finished rollout holds", pol, State{Phase: PhaseRolledBack}, Observation{Canary: failing}, t0.Add(time.Hour), Hold, 0, "rollout is RolledBack"},
		{"compare with a slow stable: passes", &relative, at(0), Observation{Canary: slow, Stable: &stableSlow}, t0.Add(10 * time.Second), Advance, 25, "mean-latency 104ms (stable 100ms) <= stable + 50ms"},
		{"compare with a healthy stable: fails", &relative, at(0), Observation{Canary: failing, Stable: &healthy}, t0.Add(10 * time.Second), Rollback, 0, "error-rate 0.2 (stable 0.005) > stable + 0.01"},
		{"compare, stable without traffic: absolute", &relative, at(0), Observation{Canary: slow, Stable: &few}, t0.Add(10 * time.Second), Rollback, 0, "mean-latency 104ms > stable + 50ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.pol, tt.state, tt.obs, tt.now)
			if d.Action != tt.action || d.Percent != tt.percent {
				t.Errorf("got %s %d%% (%s), want %s %d%%", d.Action, d.Percent, d.Reason, tt.action, tt.percent)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", d.Reason, tt.reason)
			}
		})
	}
}

func TestDecideAccuracy(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	pol := &Policy{Steps: []int{10, 50}, Interval: 10 * time.Second, MinRequests: 100, MinLabelled: 500,
		Objectives: []Objective{{MetricErrorRate, 0.01}, {MetricAccuracyDrop, 0.01}}}
	at := func(step int) State {
		return State{Revision: "m-predictor-00002", Step: step, Percent: pol.Steps[step], StepStarted: t0, Phase: PhaseProgressing}
	}
	healthy := Metrics{Requests: 200, MeanLatency: 0.004, P95Latency: 0.009}
	few := Metrics{Requests: 20, MeanLatency: 0.004, P95Latency: 0.009}
	q := func(n, acc float64) *Quality { return &Quality{Labelled: n, Accuracy: acc} }
	tests := []struct {
		name    string
		obs     Observation
		step    int
		now     time.Time
		action  Action
		percent int
		reason  string
	}{
		{"worse by 3 points: rollback mid step", Observation{Canary: healthy, CanaryQuality: q(600, 0.91), StableQuality: q(1000, 0.94)}, 0, t0.Add(time.Second), Rollback, 0,
			"accuracy-drop 0.03 (canary 0.91 over 600 labelled, stable 0.94 over 1000) > 0.01"},
		{"worse with few requests this step: still rolled back", Observation{Canary: few, CanaryQuality: q(600, 0.5), StableQuality: q(1000, 0.94)}, 1, t0.Add(time.Second), Rollback, 0, "accuracy-drop"},
		{"within a point: advance", Observation{Canary: healthy, CanaryQuality: q(500, 0.935), StableQuality: q(1000, 0.94)}, 0, t0.Add(10 * time.Second), Advance, 50,
			"accuracy-drop 0.005 (canary 0.935 over 500 labelled, stable 0.94 over 1000) <= 0.01"},
		{"better than stable: promote", Observation{Canary: healthy, CanaryQuality: q(700, 0.99), StableQuality: q(1000, 0.94)}, 1, t0.Add(10 * time.Second), Promote, 100, "last step"},
		{"too few labels: hold though the step is done", Observation{Canary: healthy, CanaryQuality: q(499, 0.2), StableQuality: q(1000, 0.94)}, 0, t0.Add(time.Minute), Hold, 10,
			"accuracy-drop needs 500 labelled rows of each revision: canary 499, stable 1000"},
		{"no quality reported: hold", Observation{Canary: healthy}, 1, t0.Add(time.Minute), Hold, 50, "canary none, stable none"},
		{"stable without labels: hold", Observation{Canary: healthy, CanaryQuality: q(900, 0.5), StableQuality: q(10, 0.9)}, 0, t0.Add(time.Minute), Hold, 10, "stable 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(pol, at(tt.step), tt.obs, tt.now)
			if d.Action != tt.action || d.Percent != tt.percent {
				t.Errorf("got %s %d%% (%s), want %s %d%%", d.Action, d.Percent, d.Reason, tt.action, tt.percent)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", d.Reason, tt.reason)
			}
		})
	}
}

// TestDecideQualityObjectives: objectives on other quality metrics than
// accuracy, for regression models (mae-rise, r2-drop) and classifiers
// (f1-drop), judged like accuracy-drop on both revisions' windows, and a
// metric the model does not report holds the rollout with the reason.
func TestDecideQualityObjectives(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(pol *Policy, step int) State {
		return State{Revision: "m-predictor-00002", Step: step, Percent: pol.Steps[step], StepStarted: t0, Phase: PhaseProgressing}
	}
	healthy := Metrics{Requests: 200, MeanLatency: 0.004, P95Latency: 0.009}
	reg := func(n, mae, r2 float64) *Quality {
		return &Quality{Labelled: n, Values: map[string]float64{"mae": mae, "rmse": mae * 1.3, "r2": r2}}
	}
	cls := func(n, acc, f1 float64) *Quality {
		return &Quality{Labelled: n, Accuracy: acc, Values: map[string]float64{"accuracy": acc, "f1_macro": f1}}
	}
	regPol := &Policy{Steps: []int{10, 50}, Interval: 10 * time.Second, MinRequests: 100, MinLabelled: 500,
		Objectives: []Objective{{"mae-rise", 0.5}, {"r2-drop", 0.05}}}
	clsPol := &Policy{Steps: []int{10, 50}, Interval: 10 * time.Second, MinRequests: 100, MinLabelled: 500,
		Objectives: []Objective{{"f1-drop", 0.02}}}
	tests := []struct {
		name    string
		pol     *Policy
		obs     Observation
		step    int
		now     time.Time
		action  Action
		percent int
		reason  string
	}{
		{"mae up by 2: rollback mid step", regPol, Observation{Canary: healthy, CanaryQuality: reg(600, 5, 0.8), StableQuality: reg(1000, 3, 0.82)}, 0, t0.Add(time.Second), Rollback, 0,
			"mae-rise 2 (canary 5 over 600 labelled, stable 3 over 1000) > 0.5"},
		{"r2 down by 0.1: rollback", regPol, Observation{Canary: healthy, CanaryQuality: reg(600, 3.1, 0.7), StableQuality: reg(1000, 3, 0.8)}, 0, t0.Add(time.Second), Rollback, 0,
			"r2-drop 0.1"},
		{"within limits: advance", regPol, Observation{Canary: healthy, CanaryQuality: reg(600, 3.2, 0.79), StableQuality: reg(1000, 3, 0.8)}, 0, t0.Add(10 * time.Second), Advance, 50,
			"mae-rise 0.2 (canary 3.2 over 600 labelled, stable 3 over 1000) <= 0.5, r2-drop 0.01"},
		{"better mae: promote", regPol, Observation{Canary: healthy, CanaryQuality: reg(600, 1, 0.9), StableQuality: reg(1000, 3, 0.8)}, 1, t0.Add(10 * time.Second), Promote, 100, "mae-rise -2"},
		{"too few labels: hold", regPol, Observation{Canary: healthy, CanaryQuality: reg(100, 1, 0.9), StableQuality: reg(1000, 3, 0.8)}, 0, t0.Add(time.Minute), Hold, 10,
			"mae-rise needs 500 labelled rows of each revision: canary 100"},
		{"a classifier under a regression objective: hold, never promoted", regPol, Observation{Canary: healthy, CanaryQuality: cls(600, 0.9, 0.9), StableQuality: cls(1000, 0.9, 0.9)}, 1, t0.Add(time.Minute), Hold, 50,
			"mae-rise needs the mae of both revisions"},
		{"f1 down by 5 points: rollback", clsPol, Observation{Canary: healthy, CanaryQuality: cls(600, 0.94, 0.85), StableQuality: cls(1000, 0.94, 0.9)}, 0, t0.Add(time.Second), Rollback, 0,
			"f1-drop 0.05"},
		{"f1 within: advance", clsPol, Observation{Canary: healthy, CanaryQuality: cls(600, 0.94, 0.89), StableQuality: cls(1000, 0.94, 0.9)}, 0, t0.Add(10 * time.Second), Advance, 50, "f1-drop 0.01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.pol, at(tt.pol, tt.step), tt.obs, tt.now)
			if d.Action != tt.action || d.Percent != tt.percent {
				t.Errorf("got %s %d%% (%s), want %s %d%%", d.Action, d.Percent, d.Reason, tt.action, tt.percent)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", d.Reason, tt.reason)
			}
		})
	}
	if got := regPol.QualityMetrics(); !slices.Equal(got, []string{"mae", "r2"}) {
		t.Errorf("QualityMetrics = %v, want [mae r2]", got)
	}
}

func TestMetricsJSONKeepsUnknownLatency(t *testing.T) {
	b, err := json.Marshal(Metrics{Requests: 3, MeanLatency: math.NaN(), P95Latency: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"meanLatencySeconds":null`) {
		t.Errorf("NaN not written as null: %s", b)
	}
	var m Metrics
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(m.MeanLatency) || m.P95Latency != 0.5 || m.Requests != 3 {
		t.Errorf("round trip = %+v", m)
	}
}

func TestQuantileMatchesHistogramQuantile(t *testing.T) {
	// 100 requests: 50 ≤ 10 ms, 90 ≤ 50 ms, 100 ≤ 100 ms. The 95th is the
	// 5th of 10 in (50 ms, 100 ms]: 75 ms.
	b := []Bucket{{0.01, 50}, {0.05, 90}, {0.1, 100}}
	if got := quantile(0.95, b, 100); math.Abs(got-0.075) > 1e-9 {
		t.Errorf("p95 = %v, want 0.075", got)
	}
	if got := quantile(0.95, nil, 0); !math.IsNaN(got) {
		t.Errorf("p95 of nothing = %v, want NaN", got)
	}
}
