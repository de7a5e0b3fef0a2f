package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryserve/ferry/internal/controlplane"
	"github.com/ferryserve/ferry/internal/mgmt"
)

// newRolloutCmd is `ferry rollout status|pause|resume|abort NAME`.
func newRolloutCmd() *cobra.Command {
	var server, token, namespace string
	var wait time.Duration
	c := &client{http: &http.Client{Timeout: 30 * time.Second}}
	cmd := &cobra.Command{
		Use:   "rollout status|pause|resume|abort NAME",
		Short: "Watch or steer the metric-driven rollout of an InferenceService (see docs/rollout.md)",
		Long: `Watch or steer the metric-driven rollout of an InferenceService whose
annotations carry a rollout policy (serving.ferryserve.io/rollout-steps, ...):

  status  the policy, the current step, and the last decision with its numbers
  pause   hold the canary at its current step until resume
  resume  let the rollout go on
  abort   roll back now: all traffic to the last rolled-out revision`,
		Args:      cobra.ExactArgs(2),
		ValidArgs: []string{"status", "pause", "resume", "abort"},
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return c.start(cmd.Context(), server, token, wait)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			action, name := args[0], args[1]
			base := fmt.Sprintf("/api/v1/namespaces/%s/inferenceservices/%s/rollout", namespace, name)
			switch action {
			case "status":
			case "pause", "resume", "abort":
				if err := rolloutCall(cmd.Context(), c, "POST", base+"/"+action, nil); err != nil {
					return err
				}
			default:
				return fmt.Errorf("unknown rollout action %q: want status, pause, resume or abort", action)
			}
			var st controlplane.RolloutStatus
			if err := rolloutCall(cmd.Context(), c, "GET", base, &st); err != nil {
				return err
			}
			if action != "status" {
				fmt.Fprintf(cmd.OutOrStdout(), "rollout of %s/%s: %s requested\n\n", namespace, name, action)
			}
			printRollout(cmd.OutOrStdout(), &st)
			return nil
		},
	}
	addServerFlag(cmd, &server, &token, &wait)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace")
	return cmd
}

func printRollout(w io.Writer, st *controlplane.RolloutStatus) {
	fmt.Fprintf(w, "Name:       %s/%s\n", st.Namespace, st.Name)
	if len(st.Policy) == 0 {
		fmt.Fprintln(w, "Policy:     none (no serving.ferryserve.io/rollout-steps annotation)")
	} else {
		fmt.Fprintln(w, "Policy:")
		keys := make([]string, 0, len(st.Policy))
		for k := range st.Policy {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s: %s\n", k, st.Policy[k])
		}
	}
	if st.PolicyError != "" {
		fmt.Fprintf(w, "Policy error: %s\n", st.PolicyError)
	}
	pct := "unset (latest revision takes all traffic)"
	if st.CanaryTrafficPercent != nil {
		pct = fmt.Sprintf("%d", *st.CanaryTrafficPercent)
	}
	fmt.Fprintf(w, "canaryTrafficPercent: %s\n", pct)
	if p := st.Predictor; p != nil {
		fmt.Fprintf(w, "Revisions:  latest %s, rolled out %s\nTraffic:\n", p.LatestCreatedRevision, p.LatestRolledoutRevision)
		for _, t := range p.Traffic {
			v := int64(0)
			if t.Percent != nil {
				v = *t.Percent
			}
			fmt.Fprintf(w, "  %3d%%  %s\n", v, t.RevisionName)
		}
	}
	if st.Paused {
		fmt.Fprintln(w, "Paused:     yes (ferry rollout resume to go on)")
	}
	if s := st.State; s != nil {
		fmt.Fprintf(w, "Rollout:    %s, canary %s at %d%% (step %d, since %s)\n", s.Phase, s.Revision, s.Percent, s.Step+1, s.StepStarted.Local().Format(time.TimeOnly))
		fmt.Fprintf(w, "Last:       %s at %s: %s\n", s.LastAction, s.Updated.Local().Format(time.TimeOnly), s.Reason)
	} else if len(st.Policy) > 0 {
		fmt.Fprintln(w, "Rollout:    none yet (starts when a new revision differs from the rolled-out one)")
	}
	if st.RolledBack != "" {
		fmt.Fprintf(w, "Rolled back: %s\n", st.RolledBack)
	}
}

// rolloutCall calls a rollout route of the management API with the
// client's resolved server, token and TLS trust. A POST carries an empty
// JSON body: the API's guard wants a JSON or YAML content type.
func rolloutCall(ctx context.Context, c *client, method, path string, out any) error {
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.server, "/")+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return unreachableHint(fmt.Errorf("%w at %s: %w", mgmt.ErrUnreachable, c.server, err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}
