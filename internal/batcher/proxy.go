package batcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	v1 "github.com/ferryserve/ferry/internal/protocol/v1"
	v2 "github.com/ferryserve/ferry/internal/protocol/v2"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// Proxy batches requests in front of an upstream model server (the agent's
// batcher): V1 :predict bodies whose instances are rows of numbers, and V2
// /infer JSON bodies, are merged per model and sent upstream as one
// request; each caller gets its own rows, or the upstream's error with its
// status. Everything else passes to next unchanged.
type Proxy struct {
	upstream string
	next     http.Handler
	cfg      Config
	client   *http.Client

	mu       sync.Mutex
	batchers map[string]*Batcher
}

// NewProxy batches for the server at upstream (e.g. http://127.0.0.1:8080).
func NewProxy(upstream string, next http.Handler, cfg Config) *Proxy {
	return &Proxy{upstream: strings.TrimRight(upstream, "/"), next: next, cfg: cfg, client: &http.Client{}, batchers: map[string]*Batcher{}}
}

func (p *Proxy) batcher(proto, model string) *Batcher {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := proto + "|" + model
	b, ok := p.batchers[k]
	if !ok {
		b = New(&upstream{p: p, proto: proto, model: model}, p.cfg)
		p.batchers[k] = b
	}
	return b
}

// Close stops every batcher.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.batchers {
		_ = b.Close()
	}
}

// upstreamError carries the upstream's status and body to every caller.
type upstreamError struct {
	code int
	body []byte
}

func (e *upstreamError) Error() string {
	return fmt.Sprintf("upstream answered %d: %s", e.code, e.body)
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	proto, model := route(r)
	if proto == "" {
		p.next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	passThrough := func() {
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.next.ServeHTTP(w, r)
	}
	var req *runtime.Request
	var id string
	switch proto {
	case "v1":
		t, err := v1.DecodeNumericInstances(body)
		if err != nil {
			passThrough() // the upstream answers what we cannot batch
			return
		}
		req = &runtime.Request{Inputs: []*tensor.Tensor{t}}
	case "v2":
		d, err := v2.DecodeRequest(body, -1)
		if err != nil {
			passThrough()
			return
		}
		id = d.ID
		req = &runtime.Request{Inputs: d.Inputs, Parameters: d.Parameters}
		for _, o := range d.Outputs {
			req.Outputs = append(req.Outputs, o.Name)
		}
	}
	res, err := p.batcher(proto, model).Predict(r.Context(), req)
	if err != nil {
		if ue, ok := err.(*upstreamError); ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(ue.code)
			_, _ = w.Write(ue.body)
			return
		}
		v2.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if proto == "v1" {
		out := append([]byte(`{"predictions":`), v1.AppendNested(nil, res.Outputs[0])...)
		_, _ = w.Write(append(out, '}'))
		return
	}
	js, _ := v2.EncodeResponse(nil, nil, &v2.InferResponse{ModelName: model, ID: id, Parameters: res.Parameters, Outputs: res.Outputs}, nil)
	_, _ = w.Write(js)
}

// route recognises the requests the proxy batches.
func route(r *http.Request) (proto, model string) {
	if r.Method != http.MethodPost || r.Header.Get(v2.HeaderInferenceLength) != "" {
		return "", ""
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/models/"); ok {
		if name, ok := strings.CutSuffix(rest, ":predict"); ok && !strings.Contains(name, "/") {
			return "v1", name
		}
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v2/models/"); ok {
		if name, ok := strings.CutSuffix(rest, "/infer"); ok && !strings.Contains(name, "/") {
			return "v2", name
		}
	}
	return "", ""
}

// upstream is the model the batcher wraps: one merged call is one request
// to the upstream server.
type upstream struct {
	p     *Proxy
	proto string
	model string
}

func (u *upstream) Metadata() runtime.Metadata { return runtime.Metadata{} }
func (u *upstream) Close() error               { return nil }

func (u *upstream) Predict(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	var body []byte
	var path string
	if u.proto == "v1" {
		body = append([]byte(`{"instances":`), v1.AppendNested(nil, req.Inputs[0])...)
		body = append(body, '}')
		path = "/v1/models/" + u.model + ":predict"
	} else {
		r := &v2.InferRequest{Inputs: req.Inputs, Parameters: req.Parameters}
		for _, o := range req.Outputs {
			r.Outputs = append(r.Outputs, v2.RequestedOutput{Name: o})
		}
		body = v2.EncodeRequest(nil, r)
		path = "/v2/models/" + u.model + "/infer"
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u.p.upstream+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := u.p.client.Do(hr)
	if err != nil {
		return nil, &upstreamError{code: http.StatusBadGateway, body: fmt.Appendf(nil, `{"error":%q}`, err.Error())}
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &upstreamError{code: http.StatusBadGateway, body: fmt.Appendf(nil, `{"error":%q}`, err.Error())}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &upstreamError{code: resp.StatusCode, body: rb}
	}
	if u.proto == "v2" {
		d, err := v2.DecodeResponse(rb)
		if err != nil {
			return nil, &upstreamError{code: http.StatusBadGateway, body: fmt.Appendf(nil, `{"error":%q}`, "upstream response: "+err.Error())}
		}
		return &runtime.Response{Outputs: d.Outputs, Parameters: d.Parameters}, nil
	}
	t, err := predictionsTensor(rb)
	if err != nil {
		return nil, &upstreamError{code: http.StatusBadGateway, body: fmt.Appendf(nil, `{"error":%q}`, err.Error())}
	}
	return &runtime.Response{Outputs: []*tensor.Tensor{t}}, nil
}

// predictionsTensor turns V1 predictions into a tensor the batcher can
// split by rows: numbers, rows of numbers, or strings.
func predictionsTensor(b []byte) (*tensor.Tensor, error) {
	var out struct {
		Predictions []json.RawMessage `json:"predictions"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("upstream predictions: %w", err)
	}
	n := len(out.Predictions)
	var nums []float64
	var strs [][]byte
	cols := -1
	for _, p := range out.Predictions {
		var f float64
		var s string
		var row []float64
		switch {
		case json.Unmarshal(p, &f) == nil && cols <= 0:
			nums, cols = append(nums, f), 0
		case json.Unmarshal(p, &s) == nil && cols < 0:
			strs = append(strs, []byte(s))
		case json.Unmarshal(p, &row) == nil && (cols < 0 || cols == len(row)) && len(row) > 0:
			nums, cols = append(nums, row...), len(row)
		default:
			return nil, fmt.Errorf("upstream predictions of mixed or nested shapes cannot be split by rows")
		}
	}
	switch {
	case strs != nil:
		if len(strs) != n {
			return nil, fmt.Errorf("upstream predictions mix strings and numbers")
		}
		return &tensor.Tensor{Name: "predictions", Datatype: tensor.Bytes, Shape: []int64{int64(n)}, Data: strs}, nil
	case cols > 0:
		return &tensor.Tensor{Name: "predictions", Datatype: tensor.FP64, Shape: []int64{int64(n), int64(cols)}, Data: nums}, nil
	}
	return &tensor.Tensor{Name: "predictions", Datatype: tensor.FP64, Shape: []int64{int64(n)}, Data: nums}, nil
}
