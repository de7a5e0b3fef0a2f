package fairness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrPredictor marks a failed call to the predictor (502).
var ErrPredictor = errors.New("predictor failed")

// PredictFunc returns one output per instance: the predicted label.
type PredictFunc func(ctx context.Context, instances [][]float64) ([]float64, error)

// V1Predictor calls POST {host}/v1/models/{name}:predict with
// {"instances": [...]}, as KServe's explainers call predictor_host. Each
// prediction is read as a label: a number, a one-number list, or the index
// of the largest of several scores.
func V1Predictor(client *http.Client, host, name string) PredictFunc {
	base := strings.TrimSuffix(host, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	url := base + "/v1/models/" + name + ":predict"
	return func(ctx context.Context, instances [][]float64) ([]float64, error) {
		body, err := json.Marshal(map[string]any{"instances": instances})
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrPredictor, url, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrPredictor, url, err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrPredictor, url, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrPredictor, url, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%w: %s answered %d: %s", ErrPredictor, url, resp.StatusCode, bytes.TrimSpace(b[:min(len(b), 300)]))
		}
		var doc struct {
			Predictions []json.RawMessage `json:"predictions"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrPredictor, url, err)
		}
		if len(doc.Predictions) != len(instances) {
			return nil, fmt.Errorf("%w: %s returned %d predictions for %d instances", ErrPredictor, url, len(doc.Predictions), len(instances))
		}
		out := make([]float64, len(instances))
		for i, p := range doc.Predictions {
			var v float64
			if err := json.Unmarshal(p, &v); err == nil {
				out[i] = v
				continue
			}
			var scores []float64
			if err := json.Unmarshal(p, &scores); err != nil || len(scores) == 0 {
				return nil, fmt.Errorf("%w: %s: prediction %d is not a number or a list of numbers", ErrPredictor, url, i)
			}
			if len(scores) == 1 {
				out[i] = scores[0]
				continue
			}
			best := 0
			for k, s := range scores {
				if s > scores[best] {
					best = k
				}
			}
			out[i] = float64(best)
		}
		return out, nil
	}
}
