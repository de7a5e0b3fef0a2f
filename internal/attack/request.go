package attack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Request is a decoded attack request: n inputs of one shape, flat, with
// their labels (-1: the predictor's own class).
type Request struct {
	Inputs [][]float64
	Labels []int
	// Shape is one input's shape.
	Shape []int
	// Batched: the inputs came as a list (replies are lists too);
	// otherwise the request held one input and the reply holds scalars.
	Batched bool
}

// DecodeRequest reads KFServing's art-explainer request,
// {"instances": [inputs, labels]}:
//
//   - inputs is one input (any nesting: a row of features, an image) when
//     labels holds one label, or a list of len(labels) inputs;
//   - labels are class indices or one-hot rows; without labels
//     ({"instances": [inputs]}) inputs is one input, attacked away from the
//     predictor's own class.
//
// maxValues bounds the numbers in inputs.
func DecodeRequest(body []byte, maxValues int) (*Request, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var doc struct {
		Instances []json.RawMessage `json:"instances"`
	}
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if n := len(doc.Instances); n != 1 && n != 2 {
		return nil, fmt.Errorf(`%w: "instances" has %d elements: want [inputs, labels] or [inputs]`, ErrBadRequest, n)
	}
	var raw any
	if err := json.Unmarshal(doc.Instances[0], &raw); err != nil {
		return nil, fmt.Errorf(`%w: "instances"[0]: %w`, ErrBadRequest, err)
	}
	shape, err := shapeOf(raw)
	if err != nil {
		return nil, fmt.Errorf(`%w: "instances"[0]: %w`, ErrBadRequest, err)
	}
	size := 1
	for _, d := range shape {
		size *= d
		if size > maxValues {
			return nil, fmt.Errorf(`%w: "instances"[0] holds more than %d numbers`, ErrBadRequest, maxValues)
		}
	}
	flat := make([]float64, 0, size)
	if flat, err = flatten(raw, flat); err != nil {
		return nil, fmt.Errorf(`%w: "instances"[0]: %w`, ErrBadRequest, err)
	}
	if size == 0 {
		return nil, fmt.Errorf(`%w: "instances"[0] is empty`, ErrBadRequest)
	}
	r := &Request{}
	var labels []int
	if len(doc.Instances) == 2 {
		if labels, err = decodeLabels(doc.Instances[1]); err != nil {
			return nil, err
		}
	}
	switch {
	case len(labels) > 1 || (len(labels) == 1 && len(shape) >= 2 && shape[0] == 1):
		if len(shape) < 2 || shape[0] != len(labels) {
			return nil, fmt.Errorf(`%w: %d labels for inputs of shape %v: want one label, or a list of %d inputs`, ErrBadRequest, len(labels), shape, len(labels))
		}
		r.Batched, r.Shape, r.Labels = true, shape[1:], labels
	case len(labels) == 1:
		r.Shape, r.Labels = shape, labels
	default:
		r.Shape, r.Labels = shape, []int{-1}
	}
	if len(r.Shape) == 0 {
		r.Shape = []int{1}
	}
	n := len(r.Labels)
	step := size / n
	for i := 0; i < n; i++ {
		r.Inputs = append(r.Inputs, flat[i*step:(i+1)*step:(i+1)*step])
	}
	return r, nil
}

// shapeOf checks that v is a rectangular nesting of numbers.
func shapeOf(v any) ([]int, error) {
	switch t := v.(type) {
	case float64:
		return nil, nil
	case []any:
		if len(t) == 0 {
			return []int{0}, nil
		}
		inner, err := shapeOf(t[0])
		if err != nil {
			return nil, err
		}
		for i, e := range t[1:] {
			s, err := shapeOf(e)
			if err != nil {
				return nil, err
			}
			if !equal(s, inner) {
				return nil, fmt.Errorf("element %d has shape %v, element 0 %v: want a rectangular array", i+1, s, inner)
			}
		}
		return append([]int{len(t)}, inner...), nil
	case nil:
		return nil, fmt.Errorf("null is not a number")
	}
	return nil, fmt.Errorf("%v is not a number", v)
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// decodeLabels reads [l, ...], [[one-hot], ...] or a single number.
func decodeLabels(raw json.RawMessage) ([]int, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf(`%w: "instances"[1]: %w`, ErrBadRequest, err)
	}
	if f, ok := v.(float64); ok {
		v = []any{f}
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf(`%w: "instances"[1]: want a list of labels`, ErrBadRequest)
	}
	out := make([]int, len(list))
	for i, e := range list {
		switch t := e.(type) {
		case float64:
			if t != math.Trunc(t) || t < 0 || t > 1<<20 {
				return nil, fmt.Errorf(`%w: "instances"[1][%d] is %v: want a class index`, ErrBadRequest, i, t)
			}
			out[i] = int(t)
		case []any:
			row, err := flatten(t, nil)
			if err != nil || len(row) < 2 {
				return nil, fmt.Errorf(`%w: "instances"[1][%d]: want a class index or a one-hot row`, ErrBadRequest, i)
			}
			out[i] = argmax(row)
		default:
			return nil, fmt.Errorf(`%w: "instances"[1][%d]: want a class index or a one-hot row`, ErrBadRequest, i)
		}
	}
	return out, nil
}

// EncodeResponse writes KFServing's art-explainer answer,
// {"explanations": {"adversarial_example", "L2 error",
// "adversarial_prediction", "prediction"}}, plus Ferry's "success",
// "queries", "Linf error", "attack", "norm" and "eps". Per-instance
// values are scalars for one instance (as KFServing's argmax over one
// input gives), lists for several; adversarial examples keep the inputs'
// nesting.
func EncodeResponse(req *Request, cfg Config, res []Result) []byte {
	b := []byte(`{"explanations":{"adversarial_example":`)
	if req.Batched {
		b = append(b, '[')
	}
	for i, r := range res {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNested(b, r.Adversarial, req.Shape)
	}
	if req.Batched {
		b = append(b, ']')
	}
	many := len(res) > 1
	list := func(key string, f func(Result) []byte) {
		b = append(b, `,"`...)
		b = append(b, key...)
		b = append(b, `":`...)
		if many {
			b = append(b, '[')
		}
		for i, r := range res {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, f(r)...)
		}
		if many {
			b = append(b, ']')
		}
	}
	list("L2 error", func(r Result) []byte { return appendFloat(nil, r.L2) })
	list("Linf error", func(r Result) []byte { return appendFloat(nil, r.LInf) })
	list("adversarial_prediction", func(r Result) []byte { return strconv.AppendInt(nil, int64(r.AdvPrediction), 10) })
	list("prediction", func(r Result) []byte { return strconv.AppendInt(nil, int64(r.Prediction), 10) })
	list("success", func(r Result) []byte { return strconv.AppendBool(nil, r.Success) })
	list("queries", func(r Result) []byte { return strconv.AppendInt(nil, int64(r.Queries), 10) })
	b = append(b, `,"attack":`...)
	b = strconv.AppendQuote(b, cfg.Type)
	b = append(b, `,"norm":`...)
	b = strconv.AppendQuote(b, cfg.Norm.String())
	b = append(b, `,"eps":`...)
	b = appendFloat(b, cfg.Eps)
	return append(b, "}}\n"...)
}
