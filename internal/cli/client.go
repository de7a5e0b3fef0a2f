package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/apiauth"
)

// client talks to the management API of `ferry up`.
type client struct {
	server string
	token  string
	http   *http.Client
}

// apiError is an answer of the management API that is not a success; it
// keeps the HTTP status so callers can tell "not found" from "refused".
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string {
	if e.Status == http.StatusUnauthorized {
		return "unauthorized: " + e.Message
	}
	return e.Message
}

func addServerFlag(cmd *cobra.Command, server, token *string) {
	def := os.Getenv("FERRY_SERVER")
	if def == "" {
		def = "http://127.0.0.1:8090"
	}
	cmd.Flags().StringVar(server, "server", def, "management API of ferry up (env FERRY_SERVER)")
	cmd.Flags().StringVar(token, "token", "", "management API token (env FERRY_TOKEN; default: the one a ferry up of this user recorded for --server)")
}

// connect resolves the token (flag, FERRY_TOKEN, then the record a ferry up
// of this user saved for the server's address) and the TLS trust for a
// self-signed server certificate.
func (c *client) connect(server, token string) error {
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

func (c *client) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.server, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach ferry up at %s (is it running? set --server or FERRY_SERVER): %w", c.server, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return &apiError{Status: resp.StatusCode, Message: e.Error}
		}
		return &apiError{Status: resp.StatusCode, Message: fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func newClientCmds() []*cobra.Command {
	var server, token string
	c := &client{http: &http.Client{Timeout: 30 * time.Second}}
	withServer := func(cmd *cobra.Command) *cobra.Command {
		addServerFlag(cmd, &server, &token)
		pre := cmd.PreRunE
		cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
			if err := c.connect(server, token); err != nil {
				return err
			}
			if pre != nil {
				return pre(cmd, args)
			}
			return nil
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
					var res []struct{ Kind, Namespace, Name, Action string }
					if err := c.do(cmd.Context(), "POST", "/api/v1/apply", d, &res); err != nil {
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

func kindPath(kind string) (string, error) {
	switch strings.ToLower(kind) {
	case "isvc", "inferenceservice", "inferenceservices":
		return "inferenceservices", nil
	case "tm", "trainedmodel", "trainedmodels":
		return "trainedmodels", nil
	}
	return "", fmt.Errorf("unknown kind %q: use isvc (inferenceservice) or tm (trainedmodel)", kind)
}

func newGetCmd(c *client) *cobra.Command {
	var output, namespace string
	var watch bool
	cmd := &cobra.Command{
		Use:   "get isvc|tm [NAME] [-o yaml|json|wide] [--watch]",
		Short: "List InferenceServices or TrainedModels",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kp, err := kindPath(args[0])
			if err != nil {
				return err
			}
			for {
				var items []json.RawMessage
				if len(args) == 2 {
					var one json.RawMessage
					if err := c.do(cmd.Context(), "GET", fmt.Sprintf("/api/v1/namespaces/%s/%s/%s", namespace, kp, args[1]), nil, &one); err != nil {
						return err
					}
					items = []json.RawMessage{one}
				} else {
					var list struct{ Items []json.RawMessage }
					if err := c.do(cmd.Context(), "GET", "/api/v1/"+kp+"?namespace="+namespace, nil, &list); err != nil {
						return err
					}
					items = list.Items
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
	return cmd
}

func printItems(w io.Writer, kind string, items []json.RawMessage, output string) error {
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
	if kind == "trainedmodels" {
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
		Use:   "describe isvc NAME",
		Short: "Show an InferenceService's conditions, revisions, traffic, replicas and events",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kp, err := kindPath(args[0]); err != nil || kp != "inferenceservices" {
				return errors.New("describe supports isvc")
			}
			base := fmt.Sprintf("/api/v1/namespaces/%s/inferenceservices/%s", namespace, args[1])
			var s api.InferenceService
			if err := c.do(cmd.Context(), "GET", base, nil, &s); err != nil {
				return err
			}
			var revs struct {
				Items []struct {
					Name, Component string
					Created         time.Time
				}
			}
			var events struct {
				Items []struct {
					Time                  time.Time
					Type, Reason, Message string
				}
			}
			var reps struct {
				Desired   map[string]int
				Panic     map[string]bool
				Revisions map[string][]struct {
					Name, Phase, LastExit string
					PID, Restarts         int
					HTTPPort              int `json:"httpPort"`
				}
			}
			_ = c.do(cmd.Context(), "GET", base+"/revisions", nil, &revs)
			_ = c.do(cmd.Context(), "GET", base+"/events", nil, &events)
			_ = c.do(cmd.Context(), "GET", base+"/replicas", nil, &reps)
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
			for _, r := range revs.Items {
				running := ""
				if rs, ok := reps.Revisions[r.Name]; ok {
					running = fmt.Sprintf(", replicas: %d actual / %d desired", len(rs), reps.Desired[r.Name])
					if reps.Panic[r.Name] {
						running += " (panic mode)"
					}
				}
				fmt.Fprintf(w, "  %s  (%s, created %s ago%s)\n", r.Name, r.Component, age(&r.Created), running)
				for _, rp := range reps.Revisions[r.Name] {
					fmt.Fprintf(w, "    replica %s: %s pid=%d port=%d restarts=%d %s\n", rp.Name, rp.Phase, rp.PID, rp.HTTPPort, rp.Restarts, rp.LastExit)
				}
			}
			fmt.Fprintln(w, "\nEvents:")
			for _, e := range events.Items {
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
		Use:   "delete isvc|tm NAME",
		Short: "Delete an InferenceService (its revisions and replicas) or a TrainedModel",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kp, err := kindPath(args[0])
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", fmt.Sprintf("/api/v1/namespaces/%s/%s/%s", namespace, kp, args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %q deleted\n", strings.TrimSuffix(kp, "s"), args[1])
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
			var out struct{ Replicas map[string][]string }
			path := fmt.Sprintf("/api/v1/namespaces/%s/inferenceservices/%s/logs?component=%s&tail=%d", namespace, args[1], component, tail)
			if err := c.do(cmd.Context(), "GET", path, nil, &out); err != nil {
				return err
			}
			names := make([]string, 0, len(out.Replicas))
			for n := range out.Replicas {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				for _, l := range out.Replicas[n] {
					fmt.Fprintf(cmd.OutOrStdout(), "[%s] %s\n", n, l)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace")
	cmd.Flags().StringVar(&component, "component", "predictor", "predictor, transformer or explainer")
	cmd.Flags().IntVar(&tail, "tail", 100, "lines per replica")
	return cmd
}

func newInferCmd(c *client) *cobra.Command {
	var namespace, data, ingress string
	cmd := &cobra.Command{
		Use:   "infer NAME --data JSON|@FILE",
		Short: "Send an inference request to an InferenceService through the ingress (V1 or V2 by its protocol)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := []byte(data)
			if strings.HasPrefix(data, "@") {
				var err error
				if body, err = os.ReadFile(data[1:]); err != nil {
					return err
				}
			}
			var s api.InferenceService
			if err := c.do(cmd.Context(), "GET", fmt.Sprintf("/api/v1/namespaces/%s/inferenceservices/%s", namespace, args[0]), nil, &s); err != nil {
				return err
			}
			_, _, protocol, _ := s.PredictorFormat()
			path := "/v1/models/" + args[0] + ":predict"
			if strings.HasSuffix(protocol, "v2") || bytes.Contains(body, []byte(`"inputs"`)) && bytes.Contains(body, []byte(`"datatype"`)) {
				path = "/v2/models/" + args[0] + "/infer"
			}
			base := ingress
			if base == "" && s.Status != nil && s.Status.Address != nil {
				base = s.Status.Address.URL
			}
			if base == "" {
				return errors.New("the service has no address yet; pass --ingress")
			}
			req, err := http.NewRequestWithContext(cmd.Context(), "POST", base+path, bytes.NewReader(body))
			if err != nil {
				return err
			}
			if s.Status != nil {
				req.Host = strings.TrimPrefix(s.Status.URL, "http://")
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.http.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
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
	return cmd
}
