package refdata

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// decodeJSON reads [[...], ...], [x, y, ...] (one feature per row), or an
// object with the rows under "instances" or "data".
func decodeJSON(b []byte, lim Limits) ([][]float64, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			return nil, fmt.Errorf("%w: json: %w", ErrFormat, err)
		}
		raw, ok := obj["instances"]
		if !ok {
			raw, ok = obj["data"]
		}
		if !ok {
			return nil, fmt.Errorf("%w: json object without \"instances\" or \"data\"", ErrFormat)
		}
		b = raw
	}
	var rows [][]float64
	if err := json.Unmarshal(b, &rows); err != nil {
		var flat []float64
		if err2 := json.Unmarshal(b, &flat); err2 != nil {
			return nil, fmt.Errorf("%w: json: want an array of rows of numbers: %w", ErrFormat, err)
		}
		rows = make([][]float64, len(flat))
		for i, v := range flat {
			rows[i] = []float64{v}
		}
	}
	return rows, rectangular(rows, lim)
}
