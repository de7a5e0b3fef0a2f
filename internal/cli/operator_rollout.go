package cli

import (
	"fmt"
	"time"

	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/rollout"
	"github.com/spf13/pflag"
)

// operatorRollout holds `ferry operator`'s progressive-delivery flags.
type operatorRollout struct {
	prometheusURL string
	metric        string
	errorMatcher  string
	tick          time.Duration
}

// PodLatencyMetric is the histogram every `ferry serve` pod exports.
const podLatencyMetric = "ferry_request_duration_seconds"

func (o *operatorRollout) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.prometheusURL, "prometheus-url", "", "Prometheus that scrapes the predictor pods (labels namespace and revision; docs/rollout.md): turns on metric-driven rollouts of services with a rollout policy")
	f.StringVar(&o.metric, "prometheus-metric", podLatencyMetric, "latency histogram the rollout objectives read, without _count/_sum/_bucket")
	f.StringVar(&o.errorMatcher, "prometheus-error-matcher", `code=~"5.."`, "PromQL label matcher of that histogram's server errors")
	f.DurationVar(&o.tick, "rollout-tick", time.Second, "how often services with a rollout policy are examined (each policy's interval decides when a step is judged)")
}

// config is nil when no Prometheus is named: without one the operator has
// no per-revision metrics (there is no ferry ingress in the cluster).
func (o *operatorRollout) config() (*operator.RolloutConfig, error) {
	if o.prometheusURL == "" {
		return nil, nil
	}
	src, err := rollout.NewPrometheusSource(o.prometheusURL, o.metric)
	if err != nil {
		return nil, fmt.Errorf("--prometheus-url: %w", err)
	}
	if o.errorMatcher != "" {
		src.ErrorMatcher = o.errorMatcher
	}
	if o.tick <= 0 {
		return nil, fmt.Errorf("--rollout-tick %s: want a positive duration", o.tick)
	}
	return &operator.RolloutConfig{Metrics: src, Quality: src, Tick: o.tick}, nil
}
