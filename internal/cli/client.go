package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/apiauth"
	"github.com/ferryserve/ferry/internal/mgmt"
)

// client holds what the client commands share: the management API's
// client, and the HTTP client (with the API's TLS trust) that infer also
// uses for the ingress.
type client struct {
	server string
	token  string
	http   *http.Client
	api    *mgmt.Client
}

// defaultServerWait is how long a client command waits for a ferry up on
// loopback that is still starting (refusing connections).
const defaultServerWait = 5 * time.Second

func addServerFlag(cmd *cobra.Command, server, token *string, wait *time.Duration) {
	def := os.Getenv("FERRY_SERVER")
	if def == "" {
		def = "http://127.0.0.1:8090"
	}
	cmd.Flags().StringVar(server, "server", def, "management API of ferry up (env FERRY_SERVER)")
	cmd.Flags().StringVar(token, "token", "", "management API token (env FERRY_TOKEN; default: the one a ferry up of this user recorded for --server)")
	cmd.Flags().DurationVar(wait, "server-wait", defaultServerWait, "how long to wait for a ferry up on loopback that is still starting (refusing connections); 0 waits not at all")
}

// connect resolves the token and TLS trust (see resolve) and makes the
// API client.
func (c *client) connect(server, token string) error {
	err := c.resolve(server, token)
	c.api = mgmt.NewClient(c.server, c.token, c.http)
	return err
}

// resolve resolves the token (flag, FERRY_TOKEN, then the record a ferry up
// of this user saved for the server's address) and the TLS trust for a
// self-signed server certificate.
func (c *client) resolve(server, token string) error {
	c.server, c.token = server, token
	if c.token == "" {
		c.token = os.Getenv("FERRY_TOKEN")
	}
	reg, err := apiauth.DefaultRegistry()
	if err != nil {
		return nil // no config dir: only --token/FERRY_TOKEN work
	}
	rec, ok, err := reg.Lookup(server)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	if c.token == "" {
		c.token = rec.Token
	}
	// A server that moved to TLS is reached over TLS at the same address.
	if strings.HasPrefix(rec.Server, "https://") && strings.HasPrefix(server, "http://") {
		c.server = "https://" + strings.TrimPrefix(server, "http://")
	}
	tlsCfg, err := apiauth.ClientTLS(rec.CAPEM)
	if err != nil {
		return err
	}
	if tlsCfg != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsCfg
		c.http.Transport = tr
	}
	return nil
}

// start connects, waiting for a ferry up that is still starting. A server
// that was waited for is resolved again: it may have just recorded a new
// token for this user.
func (c *client) start(ctx context.Context, server, token string, wait time.Duration) error {
	if err := c.connect(server, token); err != nil {
		return err
	}
	waited, err := c.api.WaitForServer(ctx, wait)
	if err != nil {
		return unreachableHint(err)
	}
	if waited {
		return c.connect(server, token)
	}
	return nil
}

// unreachableHint says what to check when no server answered.
func unreachableHint(err error) error {
	if errors.Is(err, mgmt.ErrUnreachable) {
		return fmt.Errorf("%w (is it running? set --server or FERRY_SERVER)", err)
	}
	return err
}

// notFoundError names what was not found and what exists instead; it
// wraps the API's 404.
type notFoundError struct {
	msg string
	err error
}

func (e *notFoundError) Error() string { return e.msg }
func (e *notFoundError) Unwrap() error { return e.err }

// orNotFound turns the API's 404 for kind ns/name into an error that
// lists the objects of that kind in ns; other errors pass unchanged.
func (c *client) orNotFound(ctx context.Context, err error, kind mgmt.Kind, ns, name string) error {
	if !mgmt.IsNotFound(err) {
		return err
	}
	return &notFoundError{msg: fmt.Sprintf("%s %q not found in namespace %s (%s)", kind.Singular(), name, ns, c.existing(ctx, kind, ns)), err: err}
}

// existing says which objects of kind are in ns, for error messages.
func (c *client) existing(ctx context.Context, kind mgmt.Kind, ns string) string {
	items, err := c.api.List(ctx, kind, ns)
	if err != nil {
		return "could not list " + string(kind) + ": " + err.Error()
	}
	names := make([]string, 0, len(items))
	for _, it := range items {
		var o struct {
			Metadata struct{ Name string }
		}
		if json.Unmarshal(it, &o) == nil {
			names = append(names, o.Metadata.Name)
		}
	}
	if len(names) == 0 {
		return "there are no " + string(kind) + " there"
	}
	sort.Strings(names)
	return string(kind) + " there: " + strings.Join(names, ", ")
}

func newClientCmds() []*cobra.Command {
	var server, token string
	var wait time.Duration
	c := &client{http: &http.Client{Timeout: 30 * time.Second}}
	withServer := func(cmd *cobra.Command) *cobra.Command {
		addServerFlag(cmd, &server, &token, &wait)
		pre, run := cmd.PreRunE, cmd.RunE
		cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
			if err := c.start(cmd.Context(), server, token, wait); err != nil {
				return err
			}
			if pre != nil {
				return pre(cmd, args)
			}
			return nil
		}
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			return unreachableHint(run(cmd, args))
		}
		return cmd
	}
	return []*cobra.Command{
		withServer(newApplyCmd(c)),
		withServer(newGetCmd(c)),
		withServer(newDescribeCmd(c)),
		withServer(newDeleteCmd(c)),
		withServer(newLogsCmd(c)),
		withServer(newInferCmd(c)),
	}
}

func newApplyCmd(c *client) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update InferenceServices and TrainedModels from KServe YAML",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("-f is required (a YAML file, a directory, or - for standard input)")
			}
			for _, f := range files {
				docs, err := readManifests(f, cmd.InOrStdin())
				if err != nil {
					return err
				}
				for _, d := range docs {
					res, err := c.api.Apply(cmd.Context(), d)
					if err != nil {
						return err
					}
					for _, r := range res {
						fmt.Fprintf(cmd.OutOrStdout(), "%s.serving.kserve.io/%s %s\n", strings.ToLower(r.Kind), r.Name, r.Action)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "YAML file, directory, or - for stdin")
	return cmd
}

func readManifests(path string, stdin io.Reader) ([][]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(stdin)
		return [][]byte{b}, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if st.IsDir() {
		files = nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".json")) {
				files = append(files, filepath.Join(path, n))
			}
		}
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, resolveRelativeURIs(b, filepath.Dir(f)))
	}
	return out, nil
}

func kindPath(kind string) (mgmt.Kind, error) {
	switch strings.ToLower(kind) {
	case "isvc", "inferenceservice", "inferenceservices":
		return mgmt.InferenceServices, nil
	case "tm", "trainedmodel", "trainedmodels":
		return mgmt.TrainedModels, nil
	case "ig", "inferencegraph", "inferencegraphs":
		return mgmt.InferenceGraphs, nil
	}
	return "", fmt.Errorf("unknown kind %q: use isvc (inferenceservice), tm (trainedmodel) or ig (inferencegraph)", kind)
}

func newGetCmd(c *client) *cobra.Command {
	var output, namespace, apiVersion string
	var watch bool
	cmd := &cobra.Command{
		Use:   "get isvc|tm|ig [NAME] [-o yaml|json|wide] [--watch]",
		Short: "List InferenceServices, TrainedModels or InferenceGraphs",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, version, _ := strings.Cut(args[0], ".") // kubectl's isvc.v1alpha2.serving.kubeflow.org
			version, _, _ = strings.Cut(version, ".")
			kp, err := kindPath(kind)
			if err != nil {
				return err
			}
			if apiVersion != "" {
				_, version, _ = strings.Cut(apiVersion, "/")
				if version == "" {
					version = apiVersion
				}
			}
			if err := checkVersion(kp, version); err != nil {
				return err
			}
			for {
				var items []json.RawMessage
				if len(args) == 2 {
					one, err := c.api.Get(cmd.Context(), kp, namespace, args[1])
					if err != nil {
						return c.orNotFound(cmd.Context(), err, kp, namespace, args[1])
					}
					items = []json.RawMessage{one}
				} else {
					if items, err = c.api.List(cmd.Context(), kp, namespace); err != nil {
						return err
					}
				}
				if version == api.VersionV1alpha2 && (output == "yaml" || output == "json") {
					if items, err = asV1alpha2(items); err != nil {
						return err
					}
				}
				if err := printItems(cmd.OutOrStdout(), kp, items, output); err != nil {
					return err
				}
				if !watch {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(2 * time.Second):
				}
				fmt.Fprintln(cmd.OutOrStdout())
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "yaml, json or wide")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print again every 2 s until interrupted")
	cmd.Flags().StringVar(&apiVersion, "api-version", "", "show InferenceServices as this version: v1beta1 (stored) or v1alpha2 (KFServing 0.5's, as serving.kubeflow.org/v1alpha2); also isvc.v1alpha2 as the kind")
	return cmd
}

// checkVersion accepts the versions get can show a kind as.
func checkVersion(kind mgmt.Kind, version string) error {
	switch {
	case version == "" || version == "v1beta1" && kind == mgmt.InferenceServices:
		return nil
	case version == api.VersionV1alpha2 && kind == mgmt.InferenceServices:
		return nil
	case kind == mgmt.InferenceServices:
		return fmt.Errorf("version %q: InferenceServices are shown as v1beta1 or v1alpha2", version)
	}
	return fmt.Errorf("version %q: only InferenceServices can be shown as another version", version)
}

// asV1alpha2 converts stored v1beta1 InferenceServices to v1alpha2, as
// KFServing's conversion webhook served them.
func asV1alpha2(items []json.RawMessage) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(items))
	for _, it := range items {
		var isvc api.InferenceService
		if err := json.Unmarshal(it, &isvc); err != nil {
			return nil, err
		}
		old, err := isvc.ToV1alpha2()
		if err != nil {
			return nil, fmt.Errorf("%s/%s as v1alpha2: %w", isvc.Metadata.Namespace, isvc.Metadata.Name, err)
		}
		b, err := json.Marshal(old)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func printItems(w io.Writer, kind mgmt.Kind, items []json.RawMessage, output string) error {
	switch output {
	case "json":
		var out any = items
		if len(items) == 1 {
			out = items[0]
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "yaml":
		for i, it := range items {
			b, err := yaml.JSONToYAML(it)
			if err != nil {
				return err
			}
			if i > 0 {
				fmt.Fprintln(w, "---")
			}
			fmt.Fprint(w, string(b))
		}
		return nil
	case "", "wide":
	default:
		return fmt.Errorf("-o %q: want yaml, json or wide", output)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	defer tw.Flush()
	if kind == mgmt.InferenceGraphs {
		return printGraphs(tw, items) // graph.go
	}
	if kind == mgmt.TrainedModels {
		fmt.Fprintln(tw, "NAME\tINFERENCESERVICE\tURL\tREADY\tAGE")
		for _, it := range items {
			var tm api.TrainedModel
			if err := json.Unmarshal(it, &tm); err != nil {
				return err
			}
			url, ready := "", "Unknown"
			if tm.Status != nil {
				url, ready = tm.Status.URL, condStatus(tm.Status.Conditions, "Ready")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", tm.Metadata.Name, tm.Spec.InferenceService, url, ready, age(tm.Metadata.CreationTimestamp))
		}
		return nil
	}
	header := "NAME\tURL\tREADY\tPREV\tLATEST\tPREVROLLEDOUTREVISION\tLATESTREADYREVISION\tAGE"
	if output == "wide" {
		header += "\tLATESTCREATEDREVISION\tREASON"
	}
	fmt.Fprintln(tw, header)
	for _, it := range items {
		var s api.InferenceService
		if err := json.Unmarshal(it, &s); err != nil {
			return err
		}
		st := s.Status
		if st == nil {
			st = &api.InferenceServiceStatus{}
		}
		p := st.Components[api.ComponentPredictor]
		prev, latest := "", ""
		for _, t := range p.Traffic {
			if t.Percent == nil {
				continue
			}
			if t.Tag == "prev" {
				prev = fmt.Sprint(*t.Percent)
			}
			if t.LatestRevision != nil && *t.LatestRevision {
				latest = fmt.Sprint(*t.Percent)
			}
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", s.Metadata.Name, st.URL, condStatus(st.Conditions, "Ready"), prev, latest, p.PreviousRolledoutRevision, p.LatestReadyRevision, age(s.Metadata.CreationTimestamp))
		if output == "wide" {
			reason := ""
			for _, c := range st.Conditions {
				if c.Status != "True" && c.Message != "" {
					reason = c.Type + ": " + c.Message
					break
				}
			}
			line += "\t" + p.LatestCreatedRevision + "\t" + reason
		}
		fmt.Fprintln(tw, line)
	}
	return nil
}

func condStatus(cs []api.Condition, typ string) string {
	for _, c := range cs {
		if c.Type == typ {
			return c.Status
		}
	}
	return "Unknown"
}

func age(t *time.Time) string {
	if t == nil {
		return ""
	}
	d := time.Since(*t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func newDescribeCmd(c *client) *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "describe isvc|ig NAME",
		Short: "Show an InferenceService's conditions, revisions, traffic, replicas and events, or an InferenceGraph's nodes",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kp, err := kindPath(args[0])
			if err == nil && kp == mgmt.InferenceGraphs {
				return c.describeGraph(cmd.Context(), cmd.OutOrStdout(), namespace, args[1]) // graph.go
			}
			if err != nil || kp != mgmt.InferenceServices {
				return errors.New("describe supports isvc and ig")
			}
			ctx, name := cmd.Context(), args[1]
			s, err := c.api.InferenceService(ctx, namespace, name)
			if err != nil {
				return c.orNotFound(ctx, err, mgmt.InferenceServices, namespace, name)
			}
			// The rest is shown as far as the server has it: a missing
			// part leaves its section empty rather than hiding the others.
			revs, _ := c.api.Revisions(ctx, namespace, name)
			events, _ := c.api.Events(ctx, namespace, name)
			reps, err := c.api.Replicas(ctx, namespace, name)
			if err != nil {
				reps = &mgmt.Replicas{}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Name:         %s\nNamespace:    %s\nAPI Version:  %s\nGeneration:   %d\n", s.Metadata.Name, s.Metadata.Namespace, s.APIVersion, s.Metadata.Generation)
			st := s.Status
			if st == nil {
				st = &api.InferenceServiceStatus{}
			}
			fmt.Fprintf(w, "URL:          %s\n\nConditions:\n", st.URL)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON\tMESSAGE")
			for _, c := range st.Conditions {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
			}
			tw.Flush()
			comps := make([]string, 0, len(st.Components))
			for k := range st.Components {
				comps = append(comps, k)
			}
			sort.Strings(comps)
			for _, k := range comps {
				cs := st.Components[k]
				fmt.Fprintf(w, "\nComponent %s:\n  Latest created:  %s\n  Latest ready:    %s\n  Rolled out:      %s (previous: %s)\n  Traffic:\n", k, cs.LatestCreatedRevision, cs.LatestReadyRevision, cs.LatestRolledoutRevision, cs.PreviousRolledoutRevision)
				for _, t := range cs.Traffic {
					pct := int64(0)
					if t.Percent != nil {
						pct = *t.Percent
					}
					tag := ""
					if t.Tag != "" {
						tag = " (tag " + t.Tag + ")"
					}
					fmt.Fprintf(w, "    %3d%%  %s%s\n", pct, t.RevisionName, tag)
				}
			}
			fmt.Fprintln(w, "\nRevisions:")
			for _, r := range revs {
				running := ""
				if rs, ok := reps.Revisions[r.Name]; ok {
					running = fmt.Sprintf(", replicas: %d actual / %d desired", len(rs), reps.Desired[r.Name])
					if reps.Panic[r.Name] {
						running += " (panic mode)"
					}
				}
				fmt.Fprintf(w, "  %s  (%s, created %s ago%s)\n", r.Name, r.Component, age(&r.Created), running)
				for _, rp := range reps.Revisions[r.Name] {
					where := ""
					if rp.InProcess {
						where = " in-process"
					}
					fmt.Fprintf(w, "    replica %s: %s%s pid=%d port=%d restarts=%d %s\n", rp.Name, rp.Phase, where, rp.PID, rp.HTTPPort, rp.Restarts, rp.LastExit)
				}
			}
			if err := c.describeQuality(ctx, w, namespace, name); err != nil { // describe_quality.go
				fmt.Fprintf(w, "\nQuality: %v\n", err)
			}
			fmt.Fprintln(w, "\nEvents:")
			for _, e := range events {
				fmt.Fprintf(w, "  %s  %-7s  %-16s  %s\n", e.Time.Local().Format("15:04:05"), e.Type, e.Reason, e.Message)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace")
	return cmd
}

func newDeleteCmd(c *client) *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "delete isvc|tm|ig NAME",
		Short: "Delete an InferenceService (its revisions and replicas), a TrainedModel or an InferenceGraph",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kp, err := kindPath(args[0])
			if err != nil {
				return err
			}
			if err := c.api.Delete(cmd.Context(), kp, namespace, args[1]); err != nil {
				return c.orNotFound(cmd.Context(), err, kp, namespace, args[1])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %q deleted\n", kp.Singular(), args[1])
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace")
	return cmd
}

func newLogsCmd(c *client) *cobra.Command {
	var namespace, component string
	var tail int
	cmd := &cobra.Command{
		Use:   "logs isvc NAME [--component predictor]",
		Short: "Print the recent logs of a component's replicas",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kp, err := kindPath(args[0]); err != nil || kp != mgmt.InferenceServices {
				return errors.New("logs supports isvc")
			}
			ctx, name := cmd.Context(), args[1]
			s, err := c.api.InferenceService(ctx, namespace, name)
			if err != nil {
				return c.orNotFound(ctx, err, mgmt.InferenceServices, namespace, name)
			}
			if comps := components(s); !slices.Contains(comps, component) {
				return fmt.Errorf("inferenceservice %q has no component %q (it has: %s)", name, component, strings.Join(comps, ", "))
			}
			logs, err := c.api.Logs(ctx, namespace, name, mgmt.LogOptions{Component: component, Tail: tail})
			if err != nil {
				return err
			}
			if len(logs) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "no running replicas of %s's %s (scaled to zero, or not started yet)\n", name, component)
				return nil
			}
			names := make([]string, 0, len(logs))
			for n := range logs {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				for _, l := range logs[n] {
					fmt.Fprintf(cmd.OutOrStdout(), "[%s] %s\n", n, l)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace")
	cmd.Flags().StringVar(&component, "component", api.ComponentPredictor, "predictor, transformer or explainer")
	cmd.Flags().IntVar(&tail, "tail", 100, "lines per replica")
	return cmd
}

// components lists the components a service's spec has.
func components(s *api.InferenceService) []string {
	out := []string{api.ComponentPredictor}
	if s.Spec.Transformer != nil {
		out = append(out, api.ComponentTransformer)
	}
	if s.Spec.Explainer != nil {
		out = append(out, api.ComponentExplainer)
	}
	return out
}

func newInferCmd(c *client) *cobra.Command {
	var namespace, data, ingress, model string
	cmd := &cobra.Command{
		Use:   "infer NAME --data JSON|@FILE [--model MODEL]",
		Short: "Send an inference request through the ingress to an InferenceService or a TrainedModel (V1 or V2 by its protocol)",
		Long: `Send an inference request through the ingress. NAME is an InferenceService, or a
TrainedModel (the request goes to its InferenceService, for the model of that
name). --model names another model on the service than the service's own name,
as a multi-model server holds.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := []byte(data)
			if strings.HasPrefix(data, "@") {
				var err error
				if body, err = os.ReadFile(data[1:]); err != nil {
					return err
				}
			}
			s, model, err := c.inferTarget(cmd.Context(), namespace, args[0], model)
			if err != nil {
				return err
			}
			req, err := inferRequest(cmd.Context(), s, model, ingress, body)
			if err != nil {
				return err
			}
			resp, err := c.http.Do(req)
			if err != nil {
				return fmt.Errorf("infer through the ingress: %w", err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return fmt.Errorf("read the answer: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			if resp.StatusCode >= 300 {
				return fmt.Errorf("status %s", resp.Status)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace")
	cmd.Flags().StringVarP(&data, "data", "d", "", "request body, or @file")
	cmd.Flags().StringVar(&ingress, "ingress", "", "ingress URL (default: the service's address)")
	cmd.Flags().StringVar(&model, "model", "", "model to ask (default: NAME; a TrainedModel's or any model the service serves)")
	return cmd
}

// inferTarget resolves NAME to the service that serves it and the model
// to ask: an InferenceService serves the model of its own name (or
// --model); a TrainedModel is served by its spec.inferenceService.
func (c *client) inferTarget(ctx context.Context, ns, name, model string) (*api.InferenceService, string, error) {
	s, err := c.api.InferenceService(ctx, ns, name)
	if err == nil {
		if model == "" {
			model = name
		}
		return s, model, nil
	}
	if !mgmt.IsNotFound(err) {
		return nil, "", err
	}
	tm, err := c.api.TrainedModel(ctx, ns, name)
	if mgmt.IsNotFound(err) {
		return nil, "", &notFoundError{err: err, msg: fmt.Sprintf("no inferenceservice or trainedmodel %q in namespace %s (%s; %s)",
			name, ns, c.existing(ctx, mgmt.InferenceServices, ns), c.existing(ctx, mgmt.TrainedModels, ns))}
	}
	if err != nil {
		return nil, "", err
	}
	if model != "" && model != name {
		return nil, "", fmt.Errorf("--model %q: %q is a trainedmodel, which serves only itself (ask its inferenceservice %q for other models)", model, name, tm.Spec.InferenceService)
	}
	s, err = c.api.InferenceService(ctx, ns, tm.Spec.InferenceService)
	if err != nil {
		return nil, "", fmt.Errorf("trainedmodel %q: %w", name, c.orNotFound(ctx, err, mgmt.InferenceServices, ns, tm.Spec.InferenceService))
	}
	return s, name, nil
}

// inferRequest builds the request for model on s through the ingress:
// V2 when the predictor speaks it (or the body is a V2 request), V1
// otherwise, with the service's host as the Host header.
func inferRequest(ctx context.Context, s *api.InferenceService, model, ingress string, body []byte) (*http.Request, error) {
	_, _, protocol, _ := s.PredictorFormat()
	path := "/v1/models/" + url.PathEscape(model) + ":predict"
	if strings.HasSuffix(protocol, "v2") || bytes.Contains(body, []byte(`"inputs"`)) && bytes.Contains(body, []byte(`"datatype"`)) {
		path = "/v2/models/" + url.PathEscape(model) + "/infer"
	}
	base := ingress
	if base == "" && s.Status != nil && s.Status.Address != nil {
		base = s.Status.Address.URL
	}
	if base == "" {
		return nil, fmt.Errorf("inferenceservice %q has no address yet; pass --ingress", s.Metadata.Name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("infer request: %w", err)
	}
	if s.Status != nil && s.Status.URL != "" {
		if u, err := url.Parse(s.Status.URL); err == nil && u.Host != "" {
			req.Host = u.Host
		}
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}
