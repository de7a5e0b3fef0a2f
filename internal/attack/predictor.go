package attack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// Protocols a Predictor speaks.
const (
	ProtocolV1 = "v1"
	ProtocolV2 = "v2"
)

// Predictor is a Classifier that calls a predictor server over HTTP: V1
// (POST /v1/models/{name}:predict with {"instances": [...]}, inputs nested
// in their shape) or V2 (POST /v2/models/{name}/infer, one input of shape
// [n, shape...]). Any server that speaks either will do.
type Predictor struct {
	Client   *http.Client
	Protocol string // v1 (default) or v2
	// Host is host:port or a base URL.
	Host, Model string
	// Shape is one input's shape, set per request by the handler.
	Shape []int
	// V2: the input's name (default "input-0") and datatype (default
	// FP32; FP64 keeps every bit the attack computed).
	InputName, Datatype string
	// MaxResponseBytes bounds one answer (default 64 MiB).
	MaxResponseBytes int64
}

var _ Classifier = (*Predictor)(nil)

// Predict implements Classifier.
func (p *Predictor) Predict(ctx context.Context, inputs [][]float64) ([][]float64, error) {
	if len(inputs) == 0 {
		return nil, nil
	}
	base := strings.TrimSuffix(p.Host, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	var url string
	var body []byte
	if p.Protocol == ProtocolV2 {
		url = base + "/v2/models/" + p.Model + "/infer"
		body = p.v2Body(inputs)
	} else {
		url = base + "/v1/models/" + p.Model + ":predict"
		body = append([]byte(`{"instances":[`), nil...)
		for k, in := range inputs {
			if k > 0 {
				body = append(body, ',')
			}
			body = appendNested(body, in, p.Shape)
		}
		body = append(body, "]}"...)
	}
	code, b, err := p.post(ctx, url, body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrPredictor, url, err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered %d: %s", ErrPredictor, url, code, bytes.TrimSpace(b[:min(len(b), 300)]))
	}
	var out [][]float64
	if p.Protocol == ProtocolV2 {
		out, err = readV2(b, len(inputs))
	} else {
		out, err = readV1(b, len(inputs))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrPredictor, url, err)
	}
	return out, nil
}

func (p *Predictor) post(ctx context.Context, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	c := p.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	limit := p.MaxResponseBytes
	if limit <= 0 {
		limit = 64 << 20
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	return resp.StatusCode, b, err
}

func (p *Predictor) v2Body(inputs [][]float64) []byte {
	name, dt := p.InputName, p.Datatype
	if name == "" {
		name = "input-0"
	}
	if dt == "" {
		dt = "FP32"
	}
	b := []byte(`{"inputs":[{"name":`)
	b = strconv.AppendQuote(b, name)
	b = append(b, `,"datatype":"`...)
	b = append(b, dt...)
	b = append(b, `","shape":[`...)
	b = strconv.AppendInt(b, int64(len(inputs)), 10)
	for _, d := range p.Shape {
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(d), 10)
	}
	b = append(b, `],"data":[`...)
	for k, in := range inputs {
		for i, v := range in {
			if k > 0 || i > 0 {
				b = append(b, ',')
			}
			b = appendFloat(b, v)
		}
	}
	return append(b, "]}]}"...)
}

func appendFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendNested writes flat as a JSON array nested in shape.
func appendNested(b []byte, flat []float64, shape []int) []byte {
	if len(shape) == 0 {
		return appendFloat(b, flat[0])
	}
	b = append(b, '[')
	step := len(flat) / max(shape[0], 1)
	for i := 0; i < shape[0]; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNested(b, flat[i*step:(i+1)*step], shape[1:])
	}
	return append(b, ']')
}

// readV1 reads {"predictions": [...]}: each prediction a number or a
// (nested) list of numbers, flattened.
func readV1(b []byte, n int) ([][]float64, error) {
	var doc struct {
		Predictions []json.RawMessage `json:"predictions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if len(doc.Predictions) != n {
		return nil, fmt.Errorf("%d predictions for %d inputs", len(doc.Predictions), n)
	}
	out := make([][]float64, n)
	for i, raw := range doc.Predictions {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		row, err := flatten(v, nil)
		if err != nil || len(row) == 0 {
			return nil, fmt.Errorf("prediction %d is not a number or a list of numbers", i)
		}
		out[i] = row
	}
	return out, nil
}

func flatten(v any, dst []float64) ([]float64, error) {
	switch t := v.(type) {
	case float64:
		return append(dst, t), nil
	case []any:
		var err error
		for _, e := range t {
			if dst, err = flatten(e, dst); err != nil {
				return nil, err
			}
		}
		return dst, nil
	}
	return nil, fmt.Errorf("not a number: %v", v)
}

// readV2 reads the first output's data as n equal rows.
func readV2(b []byte, n int) ([][]float64, error) {
	var doc struct {
		Outputs []struct {
			Name string    `json:"name"`
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if len(doc.Outputs) == 0 {
		return nil, fmt.Errorf("no outputs")
	}
	d := doc.Outputs[0].Data
	if len(d) == 0 || len(d)%n != 0 {
		return nil, fmt.Errorf("output %q has %d values for %d inputs", doc.Outputs[0].Name, len(d), n)
	}
	k := len(d) / n
	out := make([][]float64, n)
	for i := range out {
		out[i] = d[i*k : (i+1)*k]
	}
	return out, nil
}
