package cli

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryserve/ferry/internal/detect"
	"github.com/ferryserve/ferry/internal/detect/drift"
	"github.com/ferryserve/ferry/internal/detect/outlier"
	"github.com/ferryserve/ferry/internal/detect/refdata"
	"github.com/ferryserve/ferry/internal/detect/stats"
)

type detectOptions struct {
	port           int
	reference      string
	replyURL       string
	drift          string
	outlier        string
	categorical    []int
	pVal           float64
	correction     string
	windowSize     int
	windowDuration time.Duration
	permutations   int
	sigma          float64
	threshold      float64
	falseAlarm     float64
	online         bool
	trees          int
	seed           uint64
	maxBody        int64
	stateDir       string
	stateSync      bool
	storage        storageOptions
	logLevel       string
	logFormat      string
	config         string
}

func newDetectCmd() *cobra.Command {
	o := &detectOptions{}
	cmd := &cobra.Command{
		Use:   "detect --reference URI [--drift ks|mmd] [--outlier mahalanobis|iforest] --reply-url URL",
		Short: "Run a drift and outlier detector fed by the request logger's CloudEvents",
		Long: `Run a CloudEvents sink that detects drift and outliers in logged inference
traffic, as alibi-detect's server does under KServe. Point a request logger at
it (ferry serve --log-url, ferry agent --log-url, or an InferenceService's
logger: {mode: request|all, url: ...}). Each request event's instances are
scored for outliers (--outlier) and collected per InferenceService into
windows of --window-size rows (or --window-duration) that are tested for drift
against --reference (--drift). Verdicts go to --reply-url as CloudEvents
(org.kubeflow.serving.inference.outlier / .drift, same ce-id) and to
/metrics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndConfig(cmd.Flags(), o.config); err != nil {
				return err
			}
			return runDetect(cmd.Context(), o, cmd)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.port, "http-port", 8080, "port for events (POST /), /metrics and /healthz")
	f.StringVar(&o.reference, "reference", "", "reference rows: a .csv, .npy or .json file as a local path or storage URI (s3://, gs://, https://, …)")
	f.StringVar(&o.replyURL, "reply-url", "", "where verdicts are sent as CloudEvents (empty: metrics only)")
	f.StringVar(&o.drift, "drift", "ks", "drift test: ks (per feature; chi-squared for --categorical), mmd, or none")
	f.StringVar(&o.outlier, "outlier", "none", "outlier detector: mahalanobis, iforest, or none")
	f.IntSliceVar(&o.categorical, "categorical", nil, "with --drift ks: indices of categorical features (chi-squared test)")
	f.Float64Var(&o.pVal, "p-val", 0.05, "drift test level (family-wise for ks)")
	f.StringVar(&o.correction, "correction", "bonferroni", "with --drift ks: bonferroni or fdr")
	f.IntVar(&o.windowSize, "window-size", 500, "rows per drift test (alibi-detect's drift_batch_size)")
	f.DurationVar(&o.windowDuration, "window-duration", 0, "also test a window once its first row is this old (0: by count only)")
	f.IntVar(&o.permutations, "permutations", 100, "with --drift mmd: permutations for the p-value")
	f.Float64Var(&o.sigma, "sigma", 0, "with --drift mmd: RBF bandwidth (0: median heuristic on the reference)")
	f.Float64Var(&o.threshold, "threshold", 0, "outlier score threshold (0: derived from --false-alarm)")
	f.Float64Var(&o.falseAlarm, "false-alarm", 0.01, "target share of normal instances flagged when --threshold is 0")
	f.BoolVar(&o.online, "online", false, "with --outlier mahalanobis: update mean and covariance with every normal instance")
	f.IntVar(&o.trees, "trees", 100, "with --outlier iforest: trees in the forest")
	f.Uint64Var(&o.seed, "seed", 0, "seed for permutations and the forest")
	f.Int64Var(&o.maxBody, "max-body-bytes", 8<<20, "largest event body accepted (413 beyond)")
	f.StringVar(&o.stateDir, "state-dir", "", "keep open drift windows here across restarts (a log written before each acknowledgement, and a snapshot); empty: in memory only")
	f.BoolVar(&o.stateSync, "state-fsync", false, "with --state-dir: sync the log before each acknowledgement (survives power loss, not only a killed process)")
	o.storage.addFlags(f)
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "json", "json or text")
	f.StringVar(&o.config, "config", "", "YAML file of flag values (keys are flag names)")
	return cmd
}

func runDetect(ctx context.Context, o *detectOptions, cmd *cobra.Command) error {
	log, err := newLogger(cmd.ErrOrStderr(), o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	if o.reference == "" {
		return fmt.Errorf("--reference is required")
	}
	path := o.reference
	if strings.Contains(path, "://") {
		st, err := newStorage(o.storage, log, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, o.storage.timeout)
		path, err = st.Pull(pctx, o.reference)
		cancel()
		if err != nil {
			return fmt.Errorf("--reference: %w", err)
		}
	}
	ref, err := refdata.ReadFile(filepath.Clean(path), refdata.Limits{})
	if err != nil {
		return fmt.Errorf("--reference: %w", err)
	}
	cfg := detect.Config{
		Addr: net.JoinHostPort("", strconv.Itoa(o.port)), ReplyURL: o.replyURL,
		WindowSize: o.windowSize, WindowDuration: o.windowDuration, MaxBodyBytes: o.maxBody,
		StateDir: o.stateDir, StateSync: o.stateSync,
		Logger: log, Version: "ferry " + Version,
	}
	if cfg.Drift, err = o.newDrift(ref); err != nil {
		return err
	}
	if cfg.Outlier, err = o.newOutlier(ref); err != nil {
		return err
	}
	srv, err := detect.New(cfg)
	if err != nil {
		return err
	}
	log.Info("reference loaded", "rows", len(ref), "features", len(ref[0]), "drift", o.drift, "outlier", o.outlier)
	return srv.Run(ctx)
}

func (o *detectOptions) newDrift(ref [][]float64) (drift.Detector, error) {
	switch o.drift {
	case "none":
		return nil, nil
	case "ks":
		return drift.NewTabular(drift.TabularConfig{Reference: ref, Categorical: o.categorical, PVal: o.pVal, Correction: stats.Correction(o.correction)})
	case "mmd":
		return drift.NewMMD(drift.MMDConfig{Reference: ref, PVal: o.pVal, Sigma: o.sigma, Permutations: o.permutations, Seed: o.seed})
	}
	return nil, fmt.Errorf("--drift %q: want ks, mmd or none", o.drift)
}

func (o *detectOptions) newOutlier(ref [][]float64) (outlier.Detector, error) {
	switch o.outlier {
	case "none":
		return nil, nil
	case "mahalanobis":
		return outlier.NewMahalanobis(outlier.MahalanobisConfig{Reference: ref, Threshold: o.threshold, FalseAlarm: o.falseAlarm, Online: o.online})
	case "iforest":
		return outlier.NewIForest(outlier.IForestConfig{Reference: ref, Trees: o.trees, Threshold: o.threshold, Contamination: o.falseAlarm, Seed: o.seed})
	}
	return nil, fmt.Errorf("--outlier %q: want mahalanobis, iforest or none", o.outlier)
}
