package fairness

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ferryserve/ferry/internal/explain"
)

// ErrPredictor marks a failed call to the predictor (502). It is the
// explainers' own: both call a predictor the same way.
var ErrPredictor = explain.ErrPredictor

// PredictFunc returns one output per instance: the predicted label.
type PredictFunc func(ctx context.Context, instances [][]float64) ([]float64, error)

// V1Predictor calls POST {host}/v1/models/{name}:predict with
// {"instances": [...]}, as KServe's explainers call predictor_host (it is
// explain.V1Predictor). Each prediction is read as a label: a number, a
// one-number list, or the index of the largest of several scores.
func V1Predictor(client *http.Client, host, name string) PredictFunc {
	predict := explain.V1Predictor(client, host, name)
	return func(ctx context.Context, instances [][]float64) ([]float64, error) {
		rows, err := predict(ctx, instances)
		if err != nil {
			return nil, err
		}
		out := make([]float64, len(rows))
		for i, scores := range rows {
			if len(scores) == 0 {
				return nil, fmt.Errorf("%w: prediction %d is empty", ErrPredictor, i)
			}
			best := 0
			for k, s := range scores {
				if s > scores[best] {
					best = k
				}
			}
			out[i] = scores[best]
			if len(scores) > 1 {
				out[i] = float64(best)
			}
		}
		return out, nil
	}
}
