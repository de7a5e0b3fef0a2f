package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferryserve/ferry/internal/detect/fairness"
)

type fairnessOptions struct {
	port          int
	modelName     string
	features      []string
	labelNames    []string
	favorable     float64
	unfavorable   float64
	privileged    []string
	unprivileged  []string
	neighbors     int
	predictorHost string
	maxBody       int64
	maxInstances  int
	windowSize    int
	maxPending    int
	logLevel      string
	logFormat     string
	config        string
}

func newFairnessCmd() *cobra.Command {
	o := &fairnessOptions{}
	cmd := &cobra.Command{
		Use:   "fairness --feature-names a,b,... --privileged-groups JSON --unprivileged-groups JSON --favorable-label N --unfavorable-label N",
		Short: "Serve AIF360's bias metrics as KServe's AIF bias detector does",
		Long: `Serve group-fairness metrics over KServe's V1 protocol, as KServe's AIF360
bias detector does. POST /v1/models/{name}:predict (or :explain) with
{"instances": [[...], ...], "outputs": [...]} (the predictions; without
"outputs", the predictor at --predictor-host is asked for them) answers
{"predictions": [...], "metrics": {base_rate, consistency, disparate_impact, num_instances, num_negatives, num_positives,
statistical_parity_difference, ...}}. Add "labels" (true labels) for
equal_opportunity_difference, average_odds_difference and accuracy.

Groups are AIF360's: a JSON object {"attr": value, ...} (all must match) or a
list of them (any may match); repeat the flag to add groups. Flags also take
KServe's underscore spelling (--privileged_groups, --feature_names, ...).

With --window-size N it is also a sink for the request logger (logger: {mode:
all, url: http://<this>:8080/}): request and response events are joined by
ce-id, collected per InferenceService, and every N instances the window's
statistical parity difference, disparate impact, consistency and base rates
are exported as Prometheus gauges at /metrics.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected argument %q: give several names as --feature-names a,b,c (not space-separated)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndConfig(cmd.Flags(), o.config); err != nil {
				return err
			}
			return runFairness(cmd.Context(), o, cmd)
		},
	}
	f := cmd.Flags()
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	f.IntVar(&o.port, "http-port", 8080, "port for the V1 API and /healthz")
	f.StringVar(&o.modelName, "model-name", "aifserver", "the {name} in /v1/models/{name}:predict")
	f.StringSliceVar(&o.features, "feature-names", nil, "names of the instance columns, in order (required)")
	f.StringSliceVar(&o.labelNames, "label-names", nil, "accepted for KServe compatibility; not used")
	f.Float64Var(&o.favorable, "favorable-label", 1, "label value that is favourable (required)")
	f.Float64Var(&o.unfavorable, "unfavorable-label", 0, "label value that is unfavourable (required)")
	f.StringArrayVar(&o.privileged, "privileged-groups", nil, `privileged groups, e.g. '{"age": 1}' or '[{"sex": 1, "age": 1}]' (required)`)
	f.StringArrayVar(&o.unprivileged, "unprivileged-groups", nil, `unprivileged groups, same form (required)`)
	f.IntVar(&o.neighbors, "neighbors", fairness.DefaultNeighbors, "neighbours for consistency (AIF360's n_neighbors)")
	f.StringVar(&o.predictorHost, "predictor-host", "", "predictor (host:port or URL) asked over V1 for the outputs of a request that has only instances; empty: requests must carry outputs")
	f.Int64Var(&o.maxBody, "max-body-bytes", 8<<20, "largest request body accepted (413 beyond)")
	f.IntVar(&o.maxInstances, "max-instances", 10000, "most instances in one request (consistency is quadratic in them)")
	f.IntVar(&o.windowSize, "window-size", 0, "also take the request logger's CloudEvents at POST / and export per-service gauges at /metrics every this many instances (0: off)")
	f.IntVar(&o.maxPending, "max-pending", 10000, "with --window-size: events kept while waiting for their request or response (oldest dropped beyond)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "json", "json or text")
	f.StringVar(&o.config, "config", "", "YAML file of flag values (keys are flag names)")
	return cmd
}

// metricsConfig turns the flags into a validated fairness configuration.
func (o *fairnessOptions) metricsConfig(fs *pflag.FlagSet) (*fairness.Config, error) {
	for _, name := range []string{"favorable-label", "unfavorable-label"} {
		if !fs.Changed(name) {
			return nil, fmt.Errorf("--%s is required", name)
		}
	}
	c := &fairness.Config{Features: o.features, Favorable: o.favorable, Unfavorable: o.unfavorable, Neighbors: o.neighbors}
	var err error
	if c.Privileged, err = parseGroups("--privileged-groups", o.privileged); err != nil {
		return nil, err
	}
	if c.Unprivileged, err = parseGroups("--unprivileged-groups", o.unprivileged); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseGroups reads each value as one group object or a list of them.
func parseGroups(flag string, values []string) ([]fairness.Group, error) {
	var out []fairness.Group
	for _, v := range values {
		v = strings.TrimSpace(v)
		var list []fairness.Group
		if strings.HasPrefix(v, "[") {
			if err := json.Unmarshal([]byte(v), &list); err != nil {
				return nil, fmt.Errorf("%s %s: want a JSON object of attribute values or a list of them: %w", flag, v, err)
			}
		} else {
			var g fairness.Group
			if err := json.Unmarshal([]byte(v), &g); err != nil {
				return nil, fmt.Errorf("%s %s: want a JSON object of attribute values or a list of them: %w", flag, v, err)
			}
			list = []fairness.Group{g}
		}
		out = append(out, list...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s is required", flag)
	}
	return out, nil
}

func runFairness(ctx context.Context, o *fairnessOptions, cmd *cobra.Command) error {
	log, err := newLogger(cmd.ErrOrStderr(), o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	mc, err := o.metricsConfig(cmd.Flags())
	if err != nil {
		return err
	}
	hc := fairness.HandlerConfig{Metrics: mc, ModelName: o.modelName,
		MaxBodyBytes: o.maxBody, MaxInstances: o.maxInstances, Logger: log}
	if o.predictorHost != "" {
		hc.Predict = fairness.V1Predictor(&http.Client{Timeout: 10 * time.Minute}, o.predictorHost, o.modelName)
	}
	if o.windowSize > 0 {
		hc.Windows, err = fairness.NewWindows(fairness.WindowConfig{Metrics: mc, Size: o.windowSize,
			MaxPending: o.maxPending, MaxBodyBytes: o.maxBody, Logger: log})
		if err != nil {
			return err
		}
	}
	h, err := fairness.Handler(hc)
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", net.JoinHostPort("", strconv.Itoa(o.port)))
	if err != nil {
		return fmt.Errorf("fairness: listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("bias detector listening", "addr", ln.Addr().String(), "model", o.modelName,
		"protected_attributes", mc.ProtectedAttributes(), "predictor_host", o.predictorHost)
	select {
	case err := <-errc:
		return fmt.Errorf("fairness: serve: %w", err)
	case <-ctx.Done():
	}
	// Let in-flight requests finish, then return once Serve has.
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shut)
	if hc.Windows != nil {
		events, instances := hc.Windows.Pending()
		log.Info("dropping open fairness windows on shutdown", "unjoined_events", events, "instances", instances)
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
