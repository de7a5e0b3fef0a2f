package refdata

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// decodeCSV reads comma-separated numbers; a first row with any
// non-numeric field is a header and is skipped.
func decodeCSV(b []byte, lim Limits) ([][]float64, error) {
	r := csv.NewReader(bytes.NewReader(b))
	r.ReuseRecord = true
	r.TrimLeadingSpace = true
	var rows [][]float64
	values := 0
	for line := 0; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: csv: %w", ErrFormat, err)
		}
		row := make([]float64, len(rec))
		header := false
		for i, f := range rec {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				if line == 0 {
					header = true
					break
				}
				return nil, fmt.Errorf("%w: csv line %d field %d: %q is not a number", ErrFormat, line+1, i+1, f)
			}
			row[i] = v
		}
		if header {
			continue
		}
		values += len(row)
		if values > lim.MaxValues {
			return nil, fmt.Errorf("%w: more than %d values", ErrFormat, lim.MaxValues)
		}
		rows = append(rows, row)
	}
	return rows, rectangular(rows, lim)
}
