package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// qualityRow is one revision's model quality as ferry up's /metrics
// exports it (ferry_quality_*{namespace,service,revision,model}).
type qualityRow struct {
	revision, model string
	values          map[string]float64
}

// describeQuality prints the Quality section of ferry describe isvc: the
// predictor revisions' windows and the ingress's feedback counts, read
// from the management API's /metrics (the numbers a Prometheus scraping
// it sees). It prints nothing for a service without quality monitoring.
func (c *client) describeQuality(ctx context.Context, w io.Writer, ns, name string) error {
	fams, err := c.metrics(ctx)
	if err != nil {
		return err
	}
	rows, feedback := qualityOf(fams, ns, name)
	if len(rows) == 0 && len(feedback) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nQuality (the predictor replicas' labelled windows; docs/quality.md):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	cols := []struct{ metric, head string }{
		{"replicas", "REPLICAS"}, {"labelled_rows", "LABELLED"}, {"accuracy", "ACCURACY"}, {"f1_macro", "F1 MACRO"},
		{"log_loss", "LOG LOSS"}, {"roc_auc", "ROC AUC"}, {"mae", "MAE"}, {"rmse", "RMSE"}, {"r2", "R2"},
	}
	head := []string{"REVISION", "MODEL"}
	for _, col := range cols {
		head = append(head, col.head)
	}
	fmt.Fprintln(tw, "  "+strings.Join(head, "\t"))
	for _, r := range rows {
		line := []string{r.revision, r.model}
		for _, col := range cols {
			v, ok := r.values[col.metric]
			switch {
			case !ok:
				line = append(line, "-")
			case col.metric == "replicas" || col.metric == "labelled_rows":
				line = append(line, strconv.FormatFloat(v, 'f', 0, 64))
			default:
				line = append(line, strconv.FormatFloat(v, 'f', 4, 64))
			}
		}
		fmt.Fprintln(tw, "  "+strings.Join(line, "\t"))
	}
	tw.Flush()
	if len(feedback) > 0 {
		var parts []string
		for _, k := range []string{"received", "joined", "duplicate", "expired", "unknown", "invalid"} {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, feedback[k]))
		}
		fmt.Fprintf(w, "  Feedback through the ingress: %s\n", strings.Join(parts, ", "))
	}
	return nil
}

// metrics reads and parses the management API's /metrics.
func (c *client) metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.server, "/")+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return fams, nil
}

// qualityOf picks a service's quality rows and feedback counts.
func qualityOf(fams map[string]*dto.MetricFamily, ns, name string) ([]qualityRow, map[string]float64) {
	byKey := map[[2]string]*qualityRow{}
	var feedback map[string]float64
	for fname, f := range fams {
		metric, ok := strings.CutPrefix(fname, "ferry_quality_")
		isFeedback := fname == "ferry_ingress_feedback_total"
		if !ok && !isFeedback {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["namespace"] != ns || l["service"] != name {
				continue
			}
			v := m.GetGauge().GetValue()
			if isFeedback {
				if feedback == nil {
					feedback = map[string]float64{}
				}
				feedback[l["result"]] = m.GetCounter().GetValue()
				continue
			}
			k := [2]string{l["revision"], l["model"]}
			r := byKey[k]
			if r == nil {
				r = &qualityRow{revision: k[0], model: k[1], values: map[string]float64{}}
				byKey[k] = r
			}
			r.values[metric] = v
		}
	}
	rows := make([]qualityRow, 0, len(byKey))
	for _, r := range byKey {
		rows = append(rows, *r)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].revision != rows[j].revision {
			return rows[i].revision < rows[j].revision
		}
		return rows[i].model < rows[j].model
	})
	return rows, feedback
}
