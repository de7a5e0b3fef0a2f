package explain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// maxRows bounds the rows one explain request may ask for.
const maxRows = 1000

// DecodeRequest reads an explain request body: V1's {"instances": rows}
// (a single flat row is one instance) or V2's {"inputs": [{"shape": [n,
// m], "data": [...]}]} (the first input, flat or nested). Numbers or null
// (missing). Errors wrap ErrBadInput and name the field.
func DecodeRequest(body []byte) ([][]float64, error) {
	var doc struct {
		Instances json.RawMessage `json:"instances"`
		Inputs    []struct {
			Name  string          `json:"name"`
			Shape []int64         `json:"shape"`
			Data  json.RawMessage `json:"data"`
		} `json:"inputs"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: body: %w", ErrBadInput, err)
	}
	switch {
	case doc.Instances != nil:
		return rowsOf(doc.Instances, "instances")
	case len(doc.Inputs) > 0:
		in := doc.Inputs[0]
		flat, err := flatten(in.Data, "inputs[0].data", 0)
		if err != nil {
			return nil, err
		}
		rows, cols := int64(1), int64(len(flat))
		switch len(in.Shape) {
		case 1:
			if in.Shape[0] != cols {
				return nil, fmt.Errorf("%w: inputs[0].shape %v does not match %d values", ErrBadInput, in.Shape, len(flat))
			}
		case 2:
			rows, cols = in.Shape[0], in.Shape[1]
			if rows < 1 || cols < 1 || rows > maxRows || rows*cols != int64(len(flat)) {
				return nil, fmt.Errorf("%w: inputs[0].shape %v does not match %d values (at most %d rows)", ErrBadInput, in.Shape, len(flat), maxRows)
			}
		default:
			return nil, fmt.Errorf("%w: inputs[0].shape %v: want [features] or [rows, features]", ErrBadInput, in.Shape)
		}
		if cols == 0 {
			return nil, fmt.Errorf("%w: inputs[0].data is empty", ErrBadInput)
		}
		out := make([][]float64, rows)
		for i := range out {
			out[i] = flat[int64(i)*cols : int64(i+1)*cols]
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: body needs \"instances\" (V1) or \"inputs\" (V2)", ErrBadInput)
}

// rowsOf reads a list of rows, or one flat row.
func rowsOf(raw json.RawMessage, field string) ([][]float64, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || len(items) == 0 {
		return nil, fmt.Errorf("%w: %s must be a non-empty list", ErrBadInput, field)
	}
	if len(items) > maxRows {
		return nil, fmt.Errorf("%w: %s has %d rows, at most %d", ErrBadInput, field, len(items), maxRows)
	}
	if t := bytes.TrimSpace(items[0]); len(t) > 0 && t[0] != '[' {
		row, err := flatten(raw, field, 0)
		if err != nil {
			return nil, err
		}
		return [][]float64{row}, nil
	}
	out := make([][]float64, len(items))
	for i, it := range items {
		name := fmt.Sprintf("%s[%d]", field, i)
		var cells []*float64
		if err := json.Unmarshal(it, &cells); err != nil {
			return nil, fmt.Errorf("%w: %s must be a list of numbers (null for missing)", ErrBadInput, name)
		}
		if len(cells) == 0 || len(cells) != lenOf(items[0]) {
			return nil, fmt.Errorf("%w: %s has %d values, %s[0] has %d", ErrBadInput, name, len(cells), field, lenOf(items[0]))
		}
		out[i] = deref(cells)
	}
	return out, nil
}

func lenOf(raw json.RawMessage) int {
	var cells []json.RawMessage
	_ = json.Unmarshal(raw, &cells)
	return len(cells)
}

// flatten reads numbers (null: missing) nested to any depth up to 4.
func flatten(raw json.RawMessage, field string, depth int) ([]float64, error) {
	if depth > 4 {
		return nil, fmt.Errorf("%w: %s is nested too deep", ErrBadInput, field)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%w: %s must be a list of numbers", ErrBadInput, field)
	}
	var out []float64
	for _, it := range items {
		t := bytes.TrimSpace(it)
		if len(t) > 0 && t[0] == '[' {
			sub, err := flatten(it, field, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		var v *float64
		if err := json.Unmarshal(it, &v); err != nil {
			return nil, fmt.Errorf("%w: %s must hold numbers (null for missing)", ErrBadInput, field)
		}
		out = append(out, deref([]*float64{v})...)
		if len(out) > maxRows*10000 {
			return nil, fmt.Errorf("%w: %s is too large", ErrBadInput, field)
		}
	}
	return out, nil
}

func deref(cells []*float64) []float64 {
	out := make([]float64, len(cells))
	for i, c := range cells {
		out[i] = math.NaN()
		if c != nil {
			out[i] = *c
		}
	}
	return out
}

// DecodeTextRequest reads the body of an explain request for a text
// explainer: V1's {"instances": ["text", ...]} (or [["text"], ...], or
// one string) or V2's {"inputs": [{"datatype": "BYTES", "data":
// ["text", ...]}]} (the first input, flat or nested one deep). Errors
// wrap ErrBadInput and name the field.
func DecodeTextRequest(body []byte) ([]string, error) {
	var doc struct {
		Instances json.RawMessage `json:"instances"`
		Inputs    []struct {
			Datatype string          `json:"datatype"`
			Data     json.RawMessage `json:"data"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: body: %w", ErrBadInput, err)
	}
	field, raw := "instances", doc.Instances
	if raw == nil {
		if len(doc.Inputs) == 0 {
			return nil, fmt.Errorf("%w: body needs \"instances\" (V1) or \"inputs\" (V2)", ErrBadInput)
		}
		if dt := doc.Inputs[0].Datatype; dt != "" && dt != "BYTES" {
			return nil, fmt.Errorf("%w: inputs[0].datatype is %s; texts are BYTES", ErrBadInput, dt)
		}
		field, raw = "inputs[0].data", doc.Inputs[0].Data
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || len(items) == 0 {
		return nil, fmt.Errorf("%w: %s must be a non-empty list of texts", ErrBadInput, field)
	}
	if len(items) > maxRows {
		return nil, fmt.Errorf("%w: %s has %d texts, at most %d", ErrBadInput, field, len(items), maxRows)
	}
	out := make([]string, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it, &out[i]); err == nil {
			continue
		}
		var nested []string
		if err := json.Unmarshal(it, &nested); err != nil || len(nested) != 1 {
			return nil, fmt.Errorf("%w: %s[%d] must be a text (a JSON string)", ErrBadInput, field, i)
		}
		out[i] = nested[0]
	}
	return out, nil
}

// RequestInteractions reads Alibi's TreeShap explain argument
// interactions from a request: a top-level "interactions" or V2's
// "parameters": {"interactions": ...}, a boolean (or "true"/"false").
// ok is false when the request does not say.
func RequestInteractions(body []byte) (on, ok bool, err error) {
	var doc struct {
		Interactions json.RawMessage `json:"interactions"`
		Parameters   struct {
			Interactions json.RawMessage `json:"interactions"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return false, false, nil // DecodeRequest has named what is wrong
	}
	field, raw := "interactions", doc.Interactions
	if raw == nil {
		field, raw = "parameters.interactions", doc.Parameters.Interactions
	}
	if raw == nil {
		return false, false, nil
	}
	var s string
	if json.Unmarshal(raw, &on) == nil {
		return on, true, nil
	} else if json.Unmarshal(raw, &s) == nil && (s == "true" || s == "false") {
		return s == "true", true, nil
	}
	return false, false, fmt.Errorf("%w: %s must be true or false", ErrBadInput, field)
}
