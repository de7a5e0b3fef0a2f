package quality

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Task is what a model does, when its outputs alone do not say.
type Task string

// Tasks. TaskAuto reads JSON numbers written with a fraction or exponent as
// regression values and whole numbers as class labels.
const (
	TaskAuto           Task = ""
	TaskClassification Task = "classification"
	TaskRegression     Task = "regression"
)

// Validate checks a task name.
func (t Task) Validate() error {
	switch t {
	case TaskAuto, TaskClassification, TaskRegression:
		return nil
	}
	return fmt.Errorf("task %q: want classification or regression", string(t))
}

var errOutputs = errors.New("outputs not understood")

// v1Response is the part of a V1 predict response the journal reads.
type v1Response struct {
	Predictions []json.RawMessage `json:"predictions"`
}

// ParseV1 reads the rows of a V1 predict response: each prediction is a
// label (string or whole number), a value, or an array of class
// probabilities.
func ParseV1(body []byte, task Task) ([]Row, error) { return parseV1(body, task, true) }

// parseV1 is ParseV1 with the scanner (fast) or with encoding/json only.
func parseV1(body []byte, task Task, fast bool) ([]Row, error) {
	r, ok := v1Response{}, false
	if fast {
		r, ok = scanV1(body)
	}
	if !ok {
		r = v1Response{}
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, fmt.Errorf("%w: %w", errOutputs, err)
		}
	}
	if len(r.Predictions) == 0 {
		return nil, fmt.Errorf("%w: no predictions", errOutputs)
	}
	rows := make([]Row, len(r.Predictions))
	for i, p := range r.Predictions {
		row, err := parseRow(p, task, fast)
		if err != nil {
			return nil, fmt.Errorf("%w: predictions[%d]: %w", errOutputs, i, err)
		}
		rows[i] = row
	}
	return rows, nil
}

func parseRow(p json.RawMessage, task Task, fast bool) (Row, error) {
	if len(p) == 0 {
		return Row{}, errors.New("empty")
	}
	switch p[0] {
	case '"':
		s, ok := "", false
		if fast {
			s, ok = plainString(p)
		}
		if !ok {
			if err := json.Unmarshal(p, &s); err != nil {
				return Row{}, err
			}
		}
		return Row{Kind: KindLabel, Label: s}, nil
	case '[':
		probs, ok := []float64(nil), false
		if fast {
			probs, ok = flatFloats(p)
		}
		if !ok {
			probs = nil
			if err := json.Unmarshal(p, &probs); err != nil {
				return Row{}, err
			}
		}
		if len(probs) == 1 {
			return numberRow(probs[0], true, task), nil
		}
		if len(probs) == 0 {
			return Row{}, errors.New("empty array")
		}
		return Row{Kind: KindProbs, Probs: probs}, nil
	}
	f, err := strconv.ParseFloat(string(p), 64)
	if err != nil {
		return Row{}, fmt.Errorf("want a label, a number or probabilities: %w", err)
	}
	whole := true
	for _, c := range p {
		if c == '.' || c == 'e' || c == 'E' {
			whole = false
		}
	}
	return numberRow(f, !whole, task), nil
}

// numberRow makes a row of a number: a value when the task says
// regression, or (auto) when it is written as a fraction or comes from a
// float tensor; else a label.
func numberRow(f float64, float bool, task Task) Row {
	if task == TaskRegression || (task == TaskAuto && float) {
		return Row{Kind: KindValue, Value: f}
	}
	return Row{Kind: KindLabel, Label: formatNumber(f)}
}

// v2Response is the part of a V2 infer response the journal reads.
type v2Response struct {
	ID           string     `json:"id"`
	ModelVersion string     `json:"model_version"`
	Outputs      []v2Output `json:"outputs"`
}

type v2Output struct {
	Name     string          `json:"name"`
	Datatype string          `json:"datatype"`
	Shape    []int64         `json:"shape"`
	Data     json.RawMessage `json:"data"`
	// nums is Data's numbers, where the scanner converted them as
	// parseNumbers would (nil: convert Data).
	nums []float64
}

// ParseV2 reads the rows of a V2 infer response's first output, its id
// and model version. An output of shape [n] is n labels (BYTES, integer
// and BOOL tensors) or values (FP tensors); [n, k] with k ≥ 2 is n rows of
// class probabilities; [n, 1] is as [n].
func ParseV2(body []byte, task Task) (rows []Row, id, version string, err error) {
	return parseV2(body, task, true)
}

// parseV2 is ParseV2 with the scanner (fast) or with encoding/json only.
func parseV2(body []byte, task Task, fast bool) (rows []Row, id, version string, err error) {
	r, ok := v2Response{}, false
	if fast {
		r, ok = scanV2(body)
	}
	if !ok {
		r = v2Response{}
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, "", "", fmt.Errorf("%w: %w", errOutputs, err)
		}
	}
	if len(r.Outputs) == 0 {
		return nil, "", "", fmt.Errorf("%w: no outputs", errOutputs)
	}
	o := r.Outputs[0]
	if len(o.Data) == 0 {
		return nil, "", "", fmt.Errorf("%w: output %q has no JSON data (binary outputs are not journaled)", errOutputs, o.Name)
	}
	rows, err = v2Rows(o, task, fast)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w: output %q: %w", errOutputs, o.Name, err)
	}
	return rows, r.ID, r.ModelVersion, nil
}

func v2Rows(o v2Output, task Task, fast bool) ([]Row, error) {
	n, k, err := rowShape(o.Shape)
	if err != nil {
		return nil, err
	}
	if o.Datatype == "BYTES" {
		flat, ok := []string(nil), false
		if fast {
			flat, ok = flatStrings(o.Data)
		}
		if !ok {
			var err error
			if flat, err = unmarshalFlat[string](o.Data); err != nil {
				return nil, err
			}
		}
		return labelRows(flat, o.Shape, n, k)
	}
	var flat []float64
	if o.Datatype == "BOOL" {
		bs, err := unmarshalFlat[bool](o.Data)
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			flat = append(flat, map[bool]float64{false: 0, true: 1}[b])
		}
	} else if o.nums != nil {
		flat = o.nums
	} else if flat, err = parseNumbers(o.Data, int(n*k)); err != nil {
		return nil, err
	}
	return numberRows(flat, o.Shape, n, k, isFloatType(o.Datatype), task)
}

// rowShape reads an output's shape: n rows of k values.
func rowShape(shape []int64) (n, k int64, err error) {
	if len(shape) == 0 || len(shape) > 2 {
		return 0, 0, fmt.Errorf("shape %v: want [n] or [n, k]", shape)
	}
	n, k = shape[0], int64(1)
	if len(shape) == 2 {
		k = shape[1]
	}
	if n <= 0 || k <= 0 || n*k > 1<<24 {
		return 0, 0, fmt.Errorf("shape %v", shape)
	}
	return n, k, nil
}

// isFloatType reports whether a datatype's numbers are regression values
// (when the task does not say).
func isFloatType(datatype string) bool {
	return datatype == "FP32" || datatype == "FP64" || datatype == "FP16"
}

// labelRows makes the rows of a BYTES output: one label per row.
func labelRows(flat []string, shape []int64, n, k int64) ([]Row, error) {
	if int64(len(flat)) != n || k != 1 {
		return nil, fmt.Errorf("shape %v holds %d labels", shape, len(flat))
	}
	rows := make([]Row, 0, n)
	for _, s := range flat {
		rows = append(rows, Row{Kind: KindLabel, Label: s})
	}
	return rows, nil
}

// numberRows makes the rows of a numeric output: a label or value per row
// (k = 1), or k class probabilities.
func numberRows(flat []float64, shape []int64, n, k int64, isFloat bool, task Task) ([]Row, error) {
	if int64(len(flat)) != n*k {
		return nil, fmt.Errorf("shape %v holds %d values", shape, len(flat))
	}
	rows := make([]Row, 0, n)
	if k == 1 {
		for _, f := range flat {
			rows = append(rows, numberRow(f, isFloat, task))
		}
		return rows, nil
	}
	for i := range n {
		rows = append(rows, Row{Kind: KindProbs, Probs: flat[i*k : (i+1)*k : (i+1)*k]})
	}
	return rows, nil
}

// unmarshalFlat decodes data, flat or nested one level (row-major). The
// nested attempt starts afresh: a failed flat decode leaves zero values
// behind for the rows it could not read.
func unmarshalFlat[T any](data json.RawMessage) ([]T, error) {
	var flat []T
	if err := json.Unmarshal(data, &flat); err == nil {
		return flat, nil
	}
	var nested [][]T
	if err := json.Unmarshal(data, &nested); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	flat = []T{}
	for _, r := range nested {
		flat = append(flat, r...)
	}
	return flat, nil
}

// parseNumbers reads a JSON array of numbers, flat or nested, without
// encoding/json's reflection: on the predict path it is most of the
// journal's cost. Anything but numbers, brackets, commas and spaces is an
// error.
func parseNumbers(data []byte, hint int) ([]float64, error) {
	out := make([]float64, 0, hint)
	depth := 0
	for i := 0; i < len(data); {
		switch c := data[i]; c {
		case '[':
			depth++
			i++
		case ']':
			depth--
			i++
		case ',', ' ', '\t', '\n', '\r':
			i++
		default:
			j := i
			for j < len(data) && data[j] != ',' && data[j] != ']' && data[j] != ' ' && data[j] != '\n' && data[j] != '\t' && data[j] != '\r' {
				j++
			}
			f, err := strconv.ParseFloat(string(data[i:j]), 64)
			if err != nil || depth < 1 {
				return nil, fmt.Errorf("data: %q is not a number in an array", data[i:j])
			}
			out = append(out, f)
			i = j
		}
		if depth < 0 {
			return nil, errors.New("data: unbalanced brackets")
		}
	}
	if depth != 0 {
		return nil, errors.New("data: unbalanced brackets")
	}
	return out, nil
}
