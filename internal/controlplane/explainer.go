package controlplane

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/attack"
	"github.com/ferryserve/ferry/internal/explain"
	"github.com/ferryserve/ferry/internal/runtime/builtin"
	"github.com/ferryserve/ferry/internal/supervisor"
)

// builtinExplainerTemplate runs an explainer block's alibi explainer as a
// `ferry serve` child serving only :explain. A black-box explainer
// (KernelShap, AnchorTabular, AnchorText) calls the predictor over V1 at
// PredictorAddr, as KServe's explainer calls predictor_host, and pulls its
// training data (explainer.json) from storageUri itself; AnchorText,
// AnchorImages and AIX's LimeImages read none, so their storageUri
// (Alibi's explainer.dill) is not passed. TreeShap reads the trees, so its
// child loads the predictor's own model. ART blocks run `ferry attack`.
// Types or config keys Ferry does not implement are refused naming the
// field.
func (c *Controller) builtinExplainerTemplate(isvc *api.InferenceService, e *api.ExplainerSpec) (ProcessTemplate, error) {
	const base = "spec.explainer"
	x := e.Alibi
	block := "alibi"
	switch {
	case e.AIX != nil:
		// AIX's LimeImages is built in as well; it reads no training data.
		x, block = e.AIX, "aix"
	case e.ART != nil:
		return c.artExplainerTemplate(isvc, e.ART)
	}
	if err := (explain.Options{Type: x.Type}).Validate(); err != nil {
		return nil, fmt.Errorf("%s.%s.type: %w", base, block, stripConfigErr(err))
	}
	if err := (explain.Options{Type: x.Type, Config: x.Config}).Validate(); err != nil {
		return nil, fmt.Errorf("%s.%s.config: %w", base, block, stripConfigErr(err))
	}
	name := isvc.Metadata.Name
	var own []string // what the child explains with
	if x.Type == explain.TypeTreeShap {
		format, uri, _, custom := isvc.PredictorFormat()
		if custom != nil || uri == "" || !builtin.Has(format) {
			return nil, fmt.Errorf("%s.alibi.type: TreeShap reads the predictor's trees: it needs a built-in predictor (xgboost, lightgbm, sklearn) with a storageUri", base)
		}
		own = []string{"--model-uri", uri, "--model-name", name, "--model-format", format}
		if x.StorageURI != "" {
			own = append(own, "--explainer-data", x.StorageURI)
		}
	} else {
		if x.StorageURI == "" && explain.NeedsData(x.Type) {
			return nil, fmt.Errorf("%s.%s.storageUri: %s needs training data: a storage URI holding %s", base, block, x.Type, explain.DataFile)
		}
		own = []string{"--predictor-host", c.cfg.PredictorAddr}
		if explain.NeedsData(x.Type) {
			own = append(own, "--explainer-data", x.StorageURI)
		}
	}
	own = append(own, "--explainer-type", x.Type)
	for _, k := range slices.Sorted(maps.Keys(x.Config)) {
		own = append(own, "--explainer-config", k+"="+x.Config[k])
	}
	return func(hp, gp int) supervisor.Config {
		args := append([]string{"serve", "--host", "127.0.0.1", "--http-port", strconv.Itoa(hp), "--grpc-port", strconv.Itoa(gp), "--log-format", "json"},
			c.cfg.ServeArgs...)
		return supervisor.Config{
			Command:   c.cfg.FerryBinary,
			Args:      append(args, own...),
			Env:       c.cfg.ReplicaEnv,
			Readiness: &supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/v2/health/ready", Port: hp}, Period: 2 * time.Second, FailureThreshold: 3},
			Liveness:  &supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/v2/health/live", Port: hp}, InitialDelay: 5 * time.Second, Period: 10 * time.Second, FailureThreshold: 3},
		}
	}, nil
}

// artExplainerTemplate runs an art block as a `ferry attack` child that
// calls the predictor over V1, as KServe's art-explainer does.
func (c *Controller) artExplainerTemplate(isvc *api.InferenceService, x *api.ExplainerExtensionSpec) (ProcessTemplate, error) {
	own, err := attack.Args(x.Type, x.Config)
	if err != nil {
		return nil, fmt.Errorf("spec.explainer.art: %w", err)
	}
	return func(hp, _ int) supervisor.Config {
		args := append([]string{"attack", "--host", "127.0.0.1", "--http-port", strconv.Itoa(hp), "--log-format", "json",
			"--model-name", isvc.Metadata.Name, "--predictor-host", c.cfg.PredictorAddr}, own...)
		return supervisor.Config{
			Command:   c.cfg.FerryBinary,
			Args:      args,
			Env:       c.cfg.ReplicaEnv,
			Readiness: &supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/v2/health/ready", Port: hp}, Period: 2 * time.Second, FailureThreshold: 3},
			Liveness:  &supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/v2/health/live", Port: hp}, InitialDelay: 5 * time.Second, Period: 10 * time.Second, FailureThreshold: 3},
		}
	}, nil
}

// stripConfigErr drops explain's "explainer config: " prefix, which the
// field path replaces.
func stripConfigErr(err error) error {
	if errors.Is(err, explain.ErrConfig) {
		if s, ok := strings.CutPrefix(err.Error(), explain.ErrConfig.Error()+": "); ok {
			return errors.New(s)
		}
	}
	return err
}
