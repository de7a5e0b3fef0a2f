package controlplane

import (
	"strconv"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/plan"
	"github.com/ferryserve/ferry/internal/server"
	"github.com/ferryserve/ferry/internal/supervisor"
)

// builtinExplainerTemplate runs an explainer block as plan.Explainer says
// (alibi and aix explainers as a `ferry serve` child serving only
// :explain, art as `ferry attack`), calling the predictor at PredictorAddr
// as KServe's explainer calls predictor_host.
func (c *Controller) builtinExplainerTemplate(isvc *api.InferenceService, e *api.ExplainerSpec) (ProcessTemplate, error) {
	cmd, err := plan.Explainer(isvc, e, c.cfg.PredictorAddr)
	if err != nil {
		return nil, err
	}
	return func(hp, gp int) supervisor.Config {
		args := []string{cmd.Sub, "--host", "127.0.0.1", "--http-port", strconv.Itoa(hp)}
		ready := &supervisor.HTTPGetAction{Path: "/v2/health/ready", Port: hp}
		live := &supervisor.HTTPGetAction{Path: "/v2/health/live", Port: hp}
		if cmd.Sub == "serve" {
			id := replicaID()
			ready.Header, ready.Value = server.HeaderReplicaID, id
			live.Header, live.Value = server.HeaderReplicaID, id
			args = append(append(args, "--grpc-port", strconv.Itoa(gp), "--log-format", "json", "--replica-id", id), c.cfg.ServeArgs...)
		} else {
			args = append(args, "--log-format", "json")
		}
		return supervisor.Config{
			Command:   c.cfg.FerryBinary,
			Args:      append(args, cmd.Args...),
			Env:       c.cfg.ReplicaEnv,
			Readiness: &supervisor.Probe{HTTPGet: ready, Period: 2 * time.Second, FailureThreshold: 3},
			Liveness:  &supervisor.Probe{HTTPGet: live, InitialDelay: 5 * time.Second, Period: 10 * time.Second, FailureThreshold: 3},
		}
	}, nil
}
