package fairness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Request is a bias detector request: KServe's {"instances": [...],
// "outputs": [...]}, plus Ferry's optional "labels" (true labels, which
// add the classification metrics).
type Request struct {
	Instances [][]float64
	Outputs   []float64
	Labels    []float64
}

// DecodeRequest parses and checks a request body: every instance a row of
// features values, one output per instance (a number, or a one-number
// array as many predictors return), labels likewise when present, at most
// maxInstances instances. Errors wrap ErrBadInput and name the field.
func DecodeRequest(body []byte, features, maxInstances int) (Request, error) {
	return decodeRequest(body, features, maxInstances, true)
}

// decodeRequest is DecodeRequest; with needOutputs false a request may
// leave "outputs" out (Outputs is then nil: the caller asks the predictor).
func decodeRequest(body []byte, features, maxInstances int, needOutputs bool) (Request, error) {
	var raw struct {
		Instances []json.RawMessage `json:"instances"`
		Outputs   []json.RawMessage `json:"outputs"`
		Labels    []json.RawMessage `json:"labels"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Request{}, fmt.Errorf("%w: body: %w", ErrBadInput, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Request{}, fmt.Errorf("%w: body: more than one JSON value", ErrBadInput)
	}
	switch {
	case raw.Instances == nil:
		return Request{}, fmt.Errorf("%w: \"instances\" is missing", ErrBadInput)
	case len(raw.Instances) == 0:
		return Request{}, fmt.Errorf("%w: \"instances\" is empty", ErrBadInput)
	case len(raw.Instances) > maxInstances:
		return Request{}, fmt.Errorf("%w: \"instances\" has %d instances, at most %d are accepted", ErrBadInput, len(raw.Instances), maxInstances)
	case raw.Outputs == nil && needOutputs:
		return Request{}, fmt.Errorf("%w: \"outputs\" is missing (the predictions for the instances; start the detector with --predictor-host to have it ask the predictor)", ErrBadInput)
	}
	var req Request
	req.Instances = make([][]float64, len(raw.Instances))
	var row []*float64 // pointers tell a null from a zero
	for i, r := range raw.Instances {
		row = row[:0]
		if err := json.Unmarshal(r, &row); err != nil || row == nil {
			return Request{}, fmt.Errorf("%w: \"instances\"[%d] is not an array of numbers", ErrBadInput, i)
		}
		if len(row) != features {
			return Request{}, fmt.Errorf("%w: \"instances\"[%d] has %d values, want %d (one per feature name)", ErrBadInput, i, len(row), features)
		}
		vals := make([]float64, features)
		for j, v := range row {
			if v == nil {
				return Request{}, fmt.Errorf("%w: \"instances\"[%d][%d] is null", ErrBadInput, i, j)
			}
			vals[j] = *v
		}
		req.Instances[i] = vals
	}
	var err error
	if raw.Outputs != nil {
		if req.Outputs, err = scalars("outputs", raw.Outputs, len(raw.Instances)); err != nil {
			return Request{}, err
		}
	}
	if raw.Labels != nil {
		if req.Labels, err = scalars("labels", raw.Labels, len(raw.Instances)); err != nil {
			return Request{}, err
		}
	}
	return req, nil
}

// scalars reads one number per instance: 1 or [1].
func scalars(field string, raw []json.RawMessage, n int) ([]float64, error) {
	if len(raw) != n {
		return nil, fmt.Errorf("%w: %q has %d values for %d instances", ErrBadInput, field, len(raw), n)
	}
	out := make([]float64, n)
	for i, r := range raw {
		var v *float64
		if err := json.Unmarshal(r, &v); err == nil && v != nil {
			out[i] = *v
			continue
		}
		var one []*float64
		if err := json.Unmarshal(r, &one); err != nil || len(one) != 1 || one[0] == nil {
			return nil, fmt.Errorf("%w: %q[%d] is not a number or a one-number array", ErrBadInput, field, i)
		}
		out[i] = *one[0]
	}
	return out, nil
}
