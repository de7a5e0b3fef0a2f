package explain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// LendFunc lends a model in process; release returns it.
type LendFunc func() (m runtime.Model, release func(), err error)

// ModelPredictor calls an in-process model with an FP64 [rows, features]
// tensor and reads its first output. Errors that blame the input keep
// runtime.ErrInvalidInput; others wrap ErrPredictor with the model's name.
func ModelPredictor(name string, lend LendFunc) Predictor {
	return func(ctx context.Context, rows [][]float64) ([][]float64, error) {
		if len(rows) == 0 {
			return nil, nil
		}
		cols := len(rows[0])
		flat := make([]float64, 0, len(rows)*cols)
		for _, r := range rows {
			flat = append(flat, r...)
		}
		in := runtime.NewFP64("input-0", []int64{int64(len(rows)), int64(cols)}, flat)
		return predictInProcess(ctx, name, lend, in, len(rows))
	}
}

// ModelTextPredictor calls an in-process model with a BYTES [docs]
// tensor (a text pipeline) and reads its first output, with
// ModelPredictor's error rules.
func ModelTextPredictor(name string, lend LendFunc) TextPredictor {
	return func(ctx context.Context, docs []string) ([][]float64, error) {
		if len(docs) == 0 {
			return nil, nil
		}
		in := runtime.NewBytes("input-0", []int64{int64(len(docs))}, docs)
		return predictInProcess(ctx, name, lend, in, len(docs))
	}
}

func predictInProcess(ctx context.Context, name string, lend LendFunc, in *tensor.Tensor, rows int) ([][]float64, error) {
	m, release, err := lend()
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := m.Predict(ctx, &runtime.Request{Inputs: []*tensor.Tensor{in}})
	if err != nil {
		if errors.Is(err, runtime.ErrInvalidInput) {
			return nil, fmt.Errorf("model %q: %w", name, err)
		}
		return nil, fmt.Errorf("%w: model %q: %w", ErrPredictor, name, err)
	}
	if len(res.Outputs) == 0 {
		return nil, fmt.Errorf("%w: model %q returned no outputs", ErrPredictor, name)
	}
	vals, err := res.Outputs[0].Float64s()
	if err != nil {
		return nil, fmt.Errorf("%w: model %q: output %w", ErrPredictor, name, err)
	}
	return split(vals, rows, name)
}

// split cuts a flat output into len(rows) equal rows.
func split(vals []float64, rows int, who string) ([][]float64, error) {
	if rows == 0 || len(vals)%rows != 0 || len(vals) == 0 {
		return nil, fmt.Errorf("%w: %s returned %d values for %d rows", ErrPredictor, who, len(vals), rows)
	}
	k := len(vals) / rows
	out := make([][]float64, rows)
	for i := range out {
		out[i] = vals[i*k : (i+1)*k]
	}
	return out, nil
}

// V1Predictor calls KServe's V1 predict on a predictor server:
// POST {host}/v1/models/{name}:predict with {"instances": rows}; host
// without a scheme means http. Any failure wraps ErrPredictor and names
// the URL.
func V1Predictor(client *http.Client, host, name string) Predictor {
	url := v1URL(host, name)
	return func(ctx context.Context, rows [][]float64) ([][]float64, error) {
		return v1Call(ctx, client, url, nullNaN(rows), len(rows))
	}
}

// V1TextPredictor is V1Predictor for documents: {"instances": ["text",
// ...]}, as a text pipeline (KServe's moviesentiment) takes them.
func V1TextPredictor(client *http.Client, host, name string) TextPredictor {
	url := v1URL(host, name)
	return func(ctx context.Context, docs []string) ([][]float64, error) {
		return v1Call(ctx, client, url, docs, len(docs))
	}
}

func v1URL(host, name string) string {
	base := strings.TrimSuffix(host, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return base + "/v1/models/" + name + ":predict"
}

// v1Call posts {"instances": instances} (n of them) and reads one number
// or list of numbers per instance.
func v1Call(ctx context.Context, client *http.Client, url string, instances any, n int) ([][]float64, error) {
	body, err := json.Marshal(map[string]any{"instances": instances})
	if err != nil {
		return nil, fmt.Errorf("%w: encode request: %w", ErrBadInput, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: predictor %s: %w", ErrPredictor, url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: predictor %s: %w", ErrPredictor, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: predictor %s: %w", ErrPredictor, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: predictor %s answered %d: %s", ErrPredictor, url, resp.StatusCode, bytes.TrimSpace(b[:min(len(b), 300)]))
	}
	var doc struct {
		Predictions []json.RawMessage `json:"predictions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: predictor %s: %w", ErrPredictor, url, err)
	}
	if len(doc.Predictions) != n {
		return nil, fmt.Errorf("%w: predictor %s returned %d predictions for %d rows", ErrPredictor, url, len(doc.Predictions), n)
	}
	out := make([][]float64, n)
	for i, p := range doc.Predictions {
		var v float64
		if err := json.Unmarshal(p, &v); err == nil {
			out[i] = []float64{v}
			continue
		}
		if err := json.Unmarshal(p, &out[i]); err != nil || len(out[i]) == 0 {
			return nil, fmt.Errorf("%w: predictor %s: prediction %d is not a number or a list of numbers", ErrPredictor, url, i)
		}
	}
	return out, nil
}

// nullNaN renders NaN (missing) as JSON null.
func nullNaN(rows [][]float64) [][]*float64 {
	out := make([][]*float64, len(rows))
	for i, r := range rows {
		out[i] = make([]*float64, len(r))
		for j := range r {
			if !math.IsNaN(r[j]) {
				out[i][j] = &r[j]
			}
		}
	}
	return out
}

// labels turns outputs into classes: the argmax of several outputs; a
// single output is the class itself when it is a whole number, else a
// probability of class 1.
func labels(outs [][]float64) []int {
	l := make([]int, len(outs))
	for i, o := range outs {
		if len(o) == 1 {
			v := o[0]
			if v == math.Trunc(v) {
				l[i] = int(v)
			} else if v >= 0.5 {
				l[i] = 1
			}
			continue
		}
		best := 0
		for k, v := range o {
			if v > o[best] {
				best = k
			}
		}
		l[i] = best
	}
	return l
}
