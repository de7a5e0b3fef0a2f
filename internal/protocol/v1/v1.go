// Package v1 implements KServe's V1 (TF-Serving style) REST protocol:
// list models, model readiness, :predict with {"instances": ...} or
// {"inputs": ...} returning {"predictions": ...}, and :explain. It is the
// only package that knows the V1 wire format.
package v1

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ferryserve/ferry/internal/protocol"
	"github.com/ferryserve/ferry/internal/protocol/jsonscan"
	v2 "github.com/ferryserve/ferry/internal/protocol/v2"
	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// RecordPredictor is implemented by models whose inputs are named, typed
// fields (PMML): V1 instances that are objects, or rows holding strings, go
// through it. ActiveFields gives the field order of list rows.
type RecordPredictor interface {
	ActiveFields() []string
	PredictRecords(ctx context.Context, records []map[string]any) ([]map[string]any, error)
}

// Config configures the V1 handlers.
type Config struct {
	Repository   *repository.Repository
	MaxBodyBytes int64
	Timeout      time.Duration
	Observer     v2.Observer
	// Logger logs a panic in a model's record path with its stack (nil:
	// not logged; the request fails with 500 either way).
	Logger *slog.Logger
}

// Handler serves the V1 routes.
type Handler struct {
	cfg Config
}

// New returns a V1 handler.
func New(cfg Config) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 100 << 20
	}
	return &Handler{cfg: cfg}
}

const protoV1 = "v1-rest"

// Register adds the V1 routes to mux. ServeMux wildcards must fill a whole
// path segment, so "{name}:predict" is matched as one segment and split on
// its last colon.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/models", h.list)
	mux.HandleFunc("GET /v1/models/{name}", h.status)
	mux.HandleFunc("POST /v1/models/{nameverb}", h.verb)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	v2.WriteJSON(w, http.StatusOK, map[string]any{"models": h.cfg.Repository.Names()})
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ok, err := h.cfg.Repository.ModelReady(name, "")
	if err != nil {
		v2.WriteError(w, err)
		return
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	v2.WriteJSON(w, code, map[string]any{"name": name, "ready": ok})
}

func (h *Handler) verb(w http.ResponseWriter, r *http.Request) {
	nv := r.PathValue("nameverb")
	i := strings.LastIndexByte(nv, ':')
	if i <= 0 {
		v2.WriteError(w, fmt.Errorf("%w: use POST /v1/models/{name}:predict or :explain", protocol.ErrBadRequest))
		return
	}
	name, verb := nv[:i], nv[i+1:]
	switch verb {
	case "predict":
		start := time.Now()
		body, err := h.predict(r, name)
		if err != nil {
			v2.WriteError(w, err)
		} else {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}
		if h.cfg.Observer != nil {
			h.cfg.Observer.ObserveRequest(name, protoV1, err, time.Since(start))
		}
	case "explain":
		if _, err := h.cfg.Repository.ModelReady(name, ""); err != nil {
			v2.WriteError(w, err)
			return
		}
		v2.WriteError(w, fmt.Errorf("%w: model %q has no explainer; explanations need an InferenceService explainer component", protocol.ErrNotImplemented, name))
	default:
		v2.WriteError(w, fmt.Errorf("%w: unknown verb %q; use :predict or :explain", protocol.ErrBadRequest, verb))
	}
}

func (h *Handler) predict(r *http.Request, name string) ([]byte, error) {
	ctx := r.Context()
	if h.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.cfg.Timeout)
		defer cancel()
	}
	body, err := v2.ReadBody(r, h.cfg.MaxBodyBytes, nil)
	if err != nil {
		return nil, err
	}
	instances, err := decodeInstances(body)
	if err != nil {
		return nil, err
	}
	m, err := h.cfg.Repository.Acquire(name, "")
	if err != nil {
		return nil, err
	}
	defer m.Release()
	if rp, ok := runtime.Unwrap(m.Model).(RecordPredictor); ok {
		// Numeric rows go through records too, so that every Output field
		// comes back per row, as KServe's pmmlserver answers.
		if instances.records == nil {
			if instances.records, err = tensorRows(instances.tensor); err != nil {
				return nil, err
			}
		}
		// The record path calls the unwrapped model, past the panic
		// containment Registry.Load wraps it in, so it contains its own.
		var out []byte
		err := runtime.Contain(func() (err error) {
			out, err = predictRecords(ctx, rp, instances)
			return err
		})
		if pe, ok := errors.AsType[*runtime.PanicError](err); ok && h.cfg.Logger != nil {
			h.cfg.Logger.ErrorContext(ctx, "model code panicked; the request fails, the server goes on", "model", name, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
		}
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	if instances.tensor == nil {
		return nil, fmt.Errorf("%w: instances must be lists of numbers (or null for missing) for this model", protocol.ErrBadRequest)
	}
	// The request and its one input's slice in one allocation.
	rr := &struct {
		req    runtime.Request
		inputs [1]*tensor.Tensor
	}{inputs: [1]*tensor.Tensor{instances.tensor}}
	rr.req.Inputs = rr.inputs[:]
	res, err := m.Model.Predict(ctx, &rr.req)
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", name, err)
	}
	if len(res.Outputs) == 0 {
		return nil, fmt.Errorf("model %q returned no outputs", name)
	}
	out := res.Outputs[0]
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("model %q produced a malformed output: %s", name, err.Error())
	}
	buf := append(make([]byte, 0, 64+out.Len()*12), `{"predictions":`...)
	buf = AppendNested(buf, out)
	return append(buf, '}'), nil
}

// instances is a decoded V1 body: a numeric tensor when every row is a list
// of numbers, and the generic records for models that take named fields.
type instances struct {
	tensor  *tensor.Tensor
	records []any
}

// decoders are reused across requests (two per request: the body and the
// instances value), each with the reader it decodes from, so that a
// request allocates neither.
var decoders = sync.Pool{New: func() any {
	p := &pooledDecoder{}
	p.dec = jsontext.NewDecoder(&p.r)
	return p
}}

type pooledDecoder struct {
	dec *jsontext.Decoder
	r   bytes.Reader
}

// done gives the decoder back; it must not be used after.
func (p *pooledDecoder) done() {
	p.r.Reset(nil)
	p.dec.Reset(&p.r)
	decoders.Put(p)
}

func getDecoder(b []byte) *pooledDecoder {
	p := decoders.Get().(*pooledDecoder)
	p.r.Reset(b)
	p.dec.Reset(&p.r)
	return p
}

func decodeInstances(body []byte) (instances, error) {
	if scanBodies {
		if t, ok := scanInstances(body); ok {
			return instances{tensor: t}, nil
		}
	}
	pd := getDecoder(body)
	defer pd.done()
	dec := pd.dec
	tok, err := dec.ReadToken()
	if err != nil || tok.Kind() != '{' {
		return instances{}, fmt.Errorf("%w: body must be a JSON object with \"instances\" or \"inputs\"", protocol.ErrBadRequest)
	}
	var out instances
	var raw jsontext.Value // kept only when the rows are not all numeric
	seen := false
	for dec.PeekKind() != '}' {
		k, err := dec.ReadToken()
		if err != nil {
			return instances{}, fmt.Errorf("%w: malformed JSON: %w", protocol.ErrBadRequest, err)
		}
		switch key := k.String(); key {
		case "instances", "inputs":
			if seen {
				return instances{}, fmt.Errorf("%w: send either \"instances\" or \"inputs\", not both", protocol.ErrBadRequest)
			}
			seen = true
			if dec.PeekKind() != '[' {
				if _, err := dec.ReadValue(); err != nil {
					return instances{}, fmt.Errorf("%w: malformed JSON in %q: %w", protocol.ErrBadRequest, key, err)
				}
				return instances{}, fmt.Errorf("%w: \"instances\" must be a list of rows", protocol.ErrBadRequest)
			}
			v, err := dec.ReadValue()
			if err != nil {
				return instances{}, fmt.Errorf("%w: malformed JSON in %q: %w", protocol.ErrBadRequest, key, err)
			}
			// Parse now: v is only valid until the next read of dec.
			if t, ok := numericRows(v); ok {
				out.tensor = t
			} else {
				raw = v.Clone()
			}
		default:
			if err := dec.SkipValue(); err != nil {
				return instances{}, fmt.Errorf("%w: malformed JSON: %w", protocol.ErrBadRequest, err)
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return instances{}, fmt.Errorf("%w: malformed JSON: %w", protocol.ErrBadRequest, err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return instances{}, fmt.Errorf("%w: unexpected data after the JSON body", protocol.ErrBadRequest)
	}
	if !seen {
		return instances{}, fmt.Errorf("%w: body needs \"instances\": [[...], ...] (or \"inputs\")", protocol.ErrBadRequest)
	}
	if out.tensor != nil {
		return out, nil
	}
	var recs []any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&recs); err != nil {
		return instances{}, fmt.Errorf("%w: instances: %w", protocol.ErrBadRequest, err)
	}
	if len(recs) == 0 {
		return instances{}, fmt.Errorf("%w: \"instances\" is empty; send at least one row", protocol.ErrBadRequest)
	}
	return instances{records: recs, tensor: stringRows(recs)}, nil
}

// stringRows turns instances that are all strings (["a", "b"]) or all
// one-string rows ([["a"], ["b"]]) into a BYTES tensor of shape [rows] or
// [rows, 1], the documents a text model takes; nil for anything else.
func stringRows(recs []any) *tensor.Tensor {
	data := make([][]byte, len(recs))
	nested := false
	for i, r := range recs {
		if l, ok := r.([]any); ok && len(l) == 1 {
			r, nested = l[0], true
		}
		s, ok := r.(string)
		if !ok {
			return nil
		}
		data[i] = []byte(s)
	}
	shape := []int64{int64(len(recs))}
	if nested {
		for _, r := range recs {
			if _, ok := r.([]any); !ok {
				return nil
			}
		}
		shape = append(shape, 1)
	}
	return &tensor.Tensor{Name: "input-0", Datatype: tensor.Bytes, Shape: shape, Data: data}
}

// scanBodies turns scanInstances on; FuzzScanInstances turns it off to
// decode its reference.
var scanBodies = true

// scanInstances decodes the common request, {"instances": [[1, 2], [3,
// null]]} (or "inputs", or one number per row), straight from body
// (package jsonscan), without a token decoder: for a batch-1 request that
// decoder cost more than the model (issue 15). It reports false for any
// other body, which decodeInstances then reads the general way;
// FuzzScanInstances checks the two agree.
func scanInstances(body []byte) (*tensor.Tensor, bool) {
	s := jsonscan.New(body)
	if !s.Byte('{') {
		return nil, false
	}
	if k, ok := s.Key(); !ok || string(k) != "instances" && string(k) != "inputs" {
		return nil, false
	}
	t, ok := scanRows(&s, len(body))
	return t, ok && s.Byte('}') && s.End()
}

// numericRows parses raw, a JSON value, when it is [[1, 2], [3, null]] (or
// [1, 2] as one feature per row) into an FP64 tensor; it reports false for
// anything else.
func numericRows(raw []byte) (*tensor.Tensor, bool) {
	s := jsonscan.New(raw)
	t, ok := scanRows(&s, len(raw))
	return t, ok && s.End()
}

// scanRows reads a list of rows of numbers and nulls (NaN), all as long,
// or of single numbers, from a JSON text of size bytes.
func scanRows(s *jsonscan.Scanner, size int) (*tensor.Tensor, bool) {
	if !s.Byte('[') || s.Peek() == ']' {
		return nil, false
	}
	data := make([]float64, 0, size/4) // every number takes at least "0," — a fair first guess
	rows, cols := 0, -1
	for more := true; more; {
		if s.Byte('[') {
			n := 0
			for m := s.Peek() != ']'; m; {
				f, ok := s.FloatOrNull()
				if !ok {
					return nil, false
				}
				data = append(data, f)
				n++
				if m, ok = s.Next(']'); !ok {
					return nil, false
				}
			}
			s.Byte(']')
			if cols >= 0 && n != cols {
				return nil, false
			}
			cols = n
		} else {
			// A number is a row of one: after rows of another length
			// (even empty ones), the rows are ragged.
			f, ok := s.FloatOrNull()
			if !ok || cols >= 0 && cols != 1 {
				return nil, false
			}
			data = append(data, f)
			cols = 1
		}
		rows++
		var ok bool
		if more, ok = s.Next(']'); !ok {
			return nil, false
		}
	}
	s.Byte(']')
	// One allocation for the tensor and its shape.
	rt := &struct {
		t     tensor.Tensor
		shape [2]int64
	}{shape: [2]int64{int64(rows), int64(cols)}}
	rt.t = tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: rt.shape[:], Data: data}
	return &rt.t, true
}

// tensorRows turns a [rows, cols] (or [rows]) numeric tensor back into list
// rows of float64 for a RecordPredictor.
func tensorRows(t *tensor.Tensor) ([]any, error) {
	vals, err := t.Float64s()
	if err != nil || len(t.Shape) < 1 || len(t.Shape) > 2 {
		return nil, fmt.Errorf("%w: instances must be rows of values for this model", protocol.ErrBadRequest)
	}
	rows, cols := int(t.Shape[0]), 1 // [1, 2] is one value per row
	if len(t.Shape) == 2 {
		cols = int(t.Shape[1])
	}
	out := make([]any, rows)
	for i := range rows {
		row := make([]any, cols)
		for j := range cols {
			if v := vals[i*cols+j]; !math.IsNaN(v) {
				row[j] = v
			} // NaN stands for a null (missing) value: leave it nil
		}
		out[i] = row
	}
	return out, nil
}

func predictRecords(ctx context.Context, rp RecordPredictor, in instances) ([]byte, error) {
	fields := rp.ActiveFields()
	recs := make([]map[string]any, len(in.records))
	for i, r := range in.records {
		switch r := r.(type) {
		case map[string]any:
			m := make(map[string]any, len(r))
			for k, v := range r {
				m[k] = plain(v)
			}
			recs[i] = m
		case []any:
			if len(r) != len(fields) {
				return nil, fmt.Errorf("%w: instances[%d] has %d values; the model's fields are %s", protocol.ErrBadRequest, i, len(r), strings.Join(fields, ", "))
			}
			m := make(map[string]any, len(r))
			for j, v := range r {
				m[fields[j]] = plain(v)
			}
			recs[i] = m
		default:
			return nil, fmt.Errorf("%w: instances[%d] must be a list of values or an object of field: value", protocol.ErrBadRequest, i)
		}
	}
	out, err := rp.PredictRecords(ctx, recs)
	if err != nil {
		return nil, err
	}
	preds := make([]any, len(out))
	for i, o := range out {
		if len(o) == 1 {
			for _, v := range o {
				preds[i] = v
			}
			continue
		}
		preds[i] = o
	}
	b, err := json.Marshal(map[string]any{"predictions": preds})
	if err != nil {
		return nil, fmt.Errorf("encode predictions: %w", err)
	}
	return b, nil
}

// plain turns json.Number into float64 so runtimes see plain Go values.
func plain(v any) any {
	if n, ok := v.(json.Number); ok {
		f, err := n.Float64()
		if err != nil {
			return string(n)
		}
		return f
	}
	return v
}

// AppendNested writes a tensor as nested JSON lists following its shape:
// [rows] becomes a flat list, [rows, k] a list of rows, and so on.
func AppendNested(dst []byte, t *tensor.Tensor) []byte {
	if len(t.Shape) <= 1 {
		return v2.AppendData(dst, t)
	}
	dst, _ = appendDim(dst, t, 0, 0)
	return dst
}

// appendDim writes the sub-array at dimension dim starting at element off and
// returns the offset after it.
func appendDim(dst []byte, t *tensor.Tensor, dim, off int) ([]byte, int) {
	dst = append(dst, '[')
	if dim == len(t.Shape)-1 {
		n := int(t.Shape[dim])
		dst = v2.AppendElems(dst, t, off, off+n)
		return append(dst, ']'), off + n
	}
	for i := int64(0); i < t.Shape[dim]; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst, off = appendDim(dst, t, dim+1, off)
	}
	return append(dst, ']'), off
}

// DecodeNumericInstances decodes a V1 body whose instances are rows of
// numbers (null = missing) into an FP64 tensor [rows, features]; it fails
// for anything else (objects, strings, ragged rows).
func DecodeNumericInstances(body []byte) (*tensor.Tensor, error) {
	in, err := decodeInstances(body)
	if err != nil {
		return nil, err
	}
	if in.tensor == nil {
		return nil, fmt.Errorf("%w: instances are not rows of numbers", protocol.ErrBadRequest)
	}
	return in.tensor, nil
}
