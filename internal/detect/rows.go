package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrBadBody is wrapped by every error about an event's payload.
var ErrBadBody = errors.New("detect: bad event body")

// Rows extracts feature rows from an inference request body: V1
// {"instances": [...]} (each instance a row of numbers, or one number) or
// V2 {"inputs": [...]}: one input of shape [n, d] or [n], or several inputs
// of shape [n] or [n, 1] whose values become the columns of each row, in
// input order. maxValues bounds the total.
func Rows(body []byte, maxValues int) ([][]float64, error) {
	if rows, ok := fastV1Rows(body); ok {
		return checkRows(rows, maxValues)
	}
	return jsonRows(body, maxValues)
}

// jsonRows is Rows through encoding/json, for every body shape.
func jsonRows(body []byte, maxValues int) ([][]float64, error) {
	var req struct {
		Instances json.RawMessage `json:"instances"`
		Inputs    []v2Input       `json:"inputs"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBody, err)
	}
	var rows [][]float64
	var err error
	switch {
	case len(req.Instances) > 0:
		rows, err = v1Rows(req.Instances)
	case len(req.Inputs) > 0:
		rows, err = v2Rows(req.Inputs, maxValues)
	default:
		return nil, fmt.Errorf("%w: neither \"instances\" (V1) nor \"inputs\" (V2)", ErrBadBody)
	}
	if err != nil {
		return nil, err
	}
	return checkRows(rows, maxValues)
}

func checkRows(rows [][]float64, maxValues int) ([][]float64, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: no instances", ErrBadBody)
	}
	w := len(rows[0])
	for i, r := range rows {
		if len(r) != w || w == 0 {
			return nil, fmt.Errorf("%w: instance %d has %d values, instance 0 has %d", ErrBadBody, i, len(r), w)
		}
	}
	if len(rows) > maxValues/w {
		return nil, fmt.Errorf("%w: more than %d values", ErrBadBody, maxValues)
	}
	return rows, nil
}

func v1Rows(raw json.RawMessage) ([][]float64, error) {
	var rows [][]float64
	if err := json.Unmarshal(raw, &rows); err == nil {
		return rows, nil
	}
	var flat []float64
	if err := json.Unmarshal(raw, &flat); err != nil {
		return nil, fmt.Errorf("%w: \"instances\" must hold rows of numbers or numbers", ErrBadBody)
	}
	rows = make([][]float64, len(flat))
	for i, v := range flat {
		rows[i] = []float64{v}
	}
	return rows, nil
}

type v2Input struct {
	Name     string          `json:"name"`
	Shape    []int           `json:"shape"`
	Datatype string          `json:"datatype"`
	Data     json.RawMessage `json:"data"`
}

// values flattens data (nested or flat; BOOL as 0/1) and checks it against
// the shape.
func (in v2Input) values(maxValues int) ([]float64, error) {
	n := 1
	for _, d := range in.Shape {
		if d < 0 || (d > 0 && n > maxValues/d) {
			return nil, fmt.Errorf("%w: input %q: shape %v", ErrBadBody, in.Name, in.Shape)
		}
		n *= d
	}
	if in.Datatype == "BYTES" {
		return nil, fmt.Errorf("%w: input %q: BYTES inputs carry no numeric features", ErrBadBody, in.Name)
	}
	out := make([]float64, 0, n)
	var walk func(v any) error
	walk = func(v any) error {
		switch t := v.(type) {
		case float64:
			out = append(out, t)
		case bool:
			out = append(out, map[bool]float64{false: 0, true: 1}[t])
		case []any:
			for _, e := range t {
				if err := walk(e); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("%w: input %q: value %v is not a number", ErrBadBody, in.Name, v)
		}
		if len(out) > n {
			return fmt.Errorf("%w: input %q: more values than shape %v holds", ErrBadBody, in.Name, in.Shape)
		}
		return nil
	}
	var data any
	if err := json.Unmarshal(in.Data, &data); err != nil {
		return nil, fmt.Errorf("%w: input %q: %w", ErrBadBody, in.Name, err)
	}
	if err := walk(data); err != nil {
		return nil, err
	}
	if len(out) != n {
		return nil, fmt.Errorf("%w: input %q: %d values for shape %v", ErrBadBody, in.Name, len(out), in.Shape)
	}
	return out, nil
}

func v2Rows(inputs []v2Input, maxValues int) ([][]float64, error) {
	if len(inputs) == 1 {
		in := inputs[0]
		vals, err := in.values(maxValues)
		if err != nil {
			return nil, err
		}
		switch len(in.Shape) {
		case 1:
			return split(vals, 1), nil
		case 2:
			if in.Shape[1] == 0 {
				return nil, fmt.Errorf("%w: input %q: shape %v", ErrBadBody, in.Name, in.Shape)
			}
			return split(vals, in.Shape[1]), nil
		}
		return nil, fmt.Errorf("%w: input %q: shape %v, want [n, features] or [n]", ErrBadBody, in.Name, in.Shape)
	}
	var n int
	cols := make([][]float64, len(inputs))
	for k, in := range inputs {
		if len(in.Shape) == 0 || len(in.Shape) > 2 || (len(in.Shape) == 2 && in.Shape[1] != 1) {
			return nil, fmt.Errorf("%w: input %q: shape %v, want [n] or [n, 1] when there are several inputs", ErrBadBody, in.Name, in.Shape)
		}
		if k == 0 {
			n = in.Shape[0]
		} else if in.Shape[0] != n {
			return nil, fmt.Errorf("%w: input %q has %d rows, input %q has %d", ErrBadBody, in.Name, in.Shape[0], inputs[0].Name, n)
		}
		vals, err := in.values(maxValues)
		if err != nil {
			return nil, err
		}
		cols[k] = vals
	}
	rows := make([][]float64, n)
	for i := range rows {
		r := make([]float64, len(cols))
		for k := range cols {
			r[k] = cols[k][i]
		}
		rows[i] = r
	}
	return rows, nil
}

func split(vals []float64, w int) [][]float64 {
	rows := make([][]float64, len(vals)/w)
	for i := range rows {
		rows[i] = vals[i*w : (i+1)*w]
	}
	return rows
}
