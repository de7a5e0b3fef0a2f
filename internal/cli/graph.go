package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/mgmt"
)

// printGraphs prints InferenceGraphs with KServe's printer columns.
func printGraphs(tw *tabwriter.Writer, items []json.RawMessage) error {
	fmt.Fprintln(tw, "NAME\tURL\tREADY\tAGE")
	for _, it := range items {
		var g api.InferenceGraph
		if err := json.Unmarshal(it, &g); err != nil {
			return err
		}
		url, ready := "", "Unknown"
		if g.Status != nil {
			url, ready = g.Status.URL, condStatus(g.Status.Conditions, "Ready")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Metadata.Name, url, ready, age(g.Metadata.CreationTimestamp))
	}
	return nil
}

// describeGraph prints a graph's conditions, where it answers, and its
// nodes with their steps.
func (c *client) describeGraph(ctx context.Context, w io.Writer, ns, name string) error {
	g, err := c.api.InferenceGraph(ctx, ns, name)
	if err != nil {
		return c.orNotFound(ctx, err, mgmt.InferenceGraphs, ns, name)
	}
	st := g.Status
	if st == nil {
		st = &api.InferenceGraphStatus{}
	}
	fmt.Fprintf(w, "Name:         %s\nNamespace:    %s\nAPI Version:  %s\nGeneration:   %d\nURL:          %s\nPath:         /graphs/%s/%s (on the ingress)\n\nConditions:\n",
		g.Metadata.Name, g.Metadata.Namespace, g.APIVersion, g.Metadata.Generation, st.URL, g.Metadata.Namespace, g.Metadata.Name)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON\tMESSAGE")
	for _, cd := range st.Conditions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", cd.Type, cd.Status, cd.Reason, cd.Message)
	}
	tw.Flush()
	names := make([]string, 0, len(g.Spec.Nodes))
	for n := range g.Spec.Nodes {
		if n != api.GraphRootNode {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if _, ok := g.Spec.Nodes[api.GraphRootNode]; ok {
		names = append([]string{api.GraphRootNode}, names...)
	}
	fmt.Fprintln(w, "\nNodes:")
	for _, n := range names {
		node := g.Spec.Nodes[n]
		fmt.Fprintf(w, "  %s (%s)\n", n, node.RouterType)
		for i, s := range node.Steps {
			var extra []string
			if s.Name != "" {
				extra = append(extra, "name "+s.Name)
			}
			if s.Data != "" {
				extra = append(extra, "data "+s.Data)
			}
			if s.Weight != nil {
				extra = append(extra, fmt.Sprintf("weight %d", *s.Weight))
			}
			if s.Condition != "" {
				extra = append(extra, "condition "+s.Condition)
			}
			if s.Dependency != "" {
				extra = append(extra, "dependency "+s.Dependency)
			}
			line := fmt.Sprintf("    %d. %s", i+1, s.Target())
			if len(extra) > 0 {
				line += "  (" + strings.Join(extra, ", ") + ")"
			}
			fmt.Fprintln(w, line)
		}
	}
	return nil
}
