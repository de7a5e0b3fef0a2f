package quality

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// ErrBadFeedback marks a feedback body that cannot be decoded; its message
// names the field.
var ErrBadFeedback = errors.New("bad feedback")

// MaxBatch bounds the records of one feedback body.
const MaxBatch = 10000

// maxIDLen bounds a request id.
const maxIDLen = 256

// feedbackJSON is one record on the wire.
type feedbackJSON struct {
	ID    *string         `json:"id"`
	Truth json.RawMessage `json:"truth"`
}

// DecodeFeedback decodes a feedback body: one record {"id": ..., "truth":
// ...} or a JSON array of them. truth is a number or a string for a
// one-row prediction, or an array with one per row.
func DecodeFeedback(body []byte) ([]Feedback, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty body; want {\"id\": ..., \"truth\": ...} or an array of them", ErrBadFeedback)
	}
	if body[0] == '[' {
		var raw []json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			return nil, fmt.Errorf("%w: %s", ErrBadFeedback, jsonError(err))
		}
		if len(raw) == 0 {
			return nil, fmt.Errorf("%w: the batch is empty", ErrBadFeedback)
		}
		if len(raw) > MaxBatch {
			return nil, fmt.Errorf("%w: the batch has %d records; at most %d", ErrBadFeedback, len(raw), MaxBatch)
		}
		out := make([]Feedback, len(raw))
		for i, r := range raw {
			f, err := decodeOne(r, fmt.Sprintf("[%d].", i))
			if err != nil {
				return nil, err
			}
			out[i] = f
		}
		return out, nil
	}
	f, err := decodeOne(body, "")
	if err != nil {
		return nil, err
	}
	return []Feedback{f}, nil
}

func decodeOne(b []byte, at string) (Feedback, error) {
	var fj feedbackJSON
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&fj); err != nil {
		return Feedback{}, fmt.Errorf("%w: %s%s", ErrBadFeedback, at, jsonError(err))
	}
	if d.More() {
		return Feedback{}, fmt.Errorf("%w: %sdata after the record", ErrBadFeedback, at)
	}
	switch {
	case fj.ID == nil:
		return Feedback{}, fmt.Errorf("%w: %sid is missing", ErrBadFeedback, at)
	case *fj.ID == "":
		return Feedback{}, fmt.Errorf("%w: %sid is empty", ErrBadFeedback, at)
	case len(*fj.ID) > maxIDLen:
		return Feedback{}, fmt.Errorf("%w: %sid is longer than %d bytes", ErrBadFeedback, at, maxIDLen)
	case len(fj.Truth) == 0 || string(fj.Truth) == "null":
		return Feedback{}, fmt.Errorf("%w: %struth is missing", ErrBadFeedback, at)
	}
	t, err := decodeTruth(fj.Truth)
	if err != nil {
		return Feedback{}, fmt.Errorf("%w: %struth: %w", ErrBadFeedback, at, err)
	}
	return Feedback{ID: *fj.ID, Truth: t, TruthJSON: fj.Truth}, nil
}

// jsonError says which field a decoding error is about.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s: want %s, got %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

func decodeTruth(raw json.RawMessage) ([]Truth, error) {
	if raw[0] != '[' {
		t, err := truthValue(raw)
		if err != nil {
			return nil, err
		}
		return []Truth{t}, nil
	}
	var vals []json.RawMessage
	if err := json.Unmarshal(raw, &vals); err != nil {
		return nil, err
	}
	if len(vals) == 0 {
		return nil, errors.New("empty array")
	}
	out := make([]Truth, len(vals))
	for i, v := range vals {
		t, err := truthValue(v)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out[i] = t
	}
	return out, nil
}

func truthValue(v json.RawMessage) (Truth, error) {
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return Truth{}, err
		}
		return Truth{Label: s}, nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return Truth{}, fmt.Errorf("number %s: %w", v, err)
		}
		return Truth{Value: f, Numeric: true, Label: formatNumber(f)}, nil
	}
	return Truth{}, fmt.Errorf("want a number or a string, got %.20s", v)
}
