// Package refdata reads the reference data a detector compares traffic
// with: rows of numbers from CSV (an optional header row), NumPy .npy
// (1-D or 2-D, little-endian floats, ints, unsigned ints or bools, C or
// Fortran order) or JSON (an array of rows, or an object holding one under
// "instances" or "data"). Every decoder bounds the rows and values it
// accepts.
package refdata

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrFormat is wrapped by every decoding error.
var ErrFormat = errors.New("refdata: bad reference data")

// Limits bound what a decoder accepts.
type Limits struct {
	// MaxValues caps rows × columns (default 50 million).
	MaxValues int
	// MaxBytes caps the input size (default 1 GiB).
	MaxBytes int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxValues <= 0 {
		l.MaxValues = 50_000_000
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 1 << 30
	}
	return l
}

// Format names a file format.
type Format string

// Formats.
const (
	CSV  Format = "csv"
	NPY  Format = "npy"
	JSON Format = "json"
)

// FormatOf picks the format from a file name's extension.
func FormatOf(name string) (Format, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return CSV, nil
	case ".npy":
		return NPY, nil
	case ".json":
		return JSON, nil
	}
	return "", fmt.Errorf("%w: %s: want a .csv, .npy or .json file", ErrFormat, name)
}

// Decode reads rows in format f from r.
func Decode(r io.Reader, f Format, lim Limits) ([][]float64, error) {
	lim = lim.withDefaults()
	b, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("refdata: read: %w", err)
	}
	if int64(len(b)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrFormat, lim.MaxBytes)
	}
	var rows [][]float64
	switch f {
	case CSV:
		rows, err = decodeCSV(b, lim)
	case NPY:
		rows, err = decodeNPY(b, lim)
	case JSON:
		rows, err = decodeJSON(b, lim)
	default:
		return nil, fmt.Errorf("%w: format %q", ErrFormat, f)
	}
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: no rows", ErrFormat)
	}
	return rows, nil
}

// ReadFile reads the reference file at path, or the one data file
// (.csv, .npy or .json) in the directory at path: a storage pull of a
// single-file URI yields such a directory.
func ReadFile(path string, lim Limits) ([][]float64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("refdata: %w", err)
	}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("refdata: %w", err)
		}
		var found []string
		for _, e := range entries {
			if _, err := FormatOf(e.Name()); err == nil && e.Type().IsRegular() {
				found = append(found, e.Name())
			}
		}
		if len(found) != 1 {
			return nil, fmt.Errorf("%w: %s holds %d .csv/.npy/.json files, want exactly one", ErrFormat, path, len(found))
		}
		path = filepath.Join(path, found[0])
	}
	f, err := FormatOf(path)
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("refdata: %w", err)
	}
	defer fh.Close()
	rows, err := Decode(fh, f, lim)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}

// rectangular checks that every row has the first row's width and that the
// total stays within the limit.
func rectangular(rows [][]float64, lim Limits) error {
	if len(rows) == 0 {
		return nil
	}
	w := len(rows[0])
	if w == 0 {
		return fmt.Errorf("%w: rows have no values", ErrFormat)
	}
	for i, r := range rows {
		if len(r) != w {
			return fmt.Errorf("%w: row %d has %d values, want %d", ErrFormat, i, len(r), w)
		}
	}
	if len(rows) > lim.MaxValues/w {
		return fmt.Errorf("%w: more than %d values", ErrFormat, lim.MaxValues)
	}
	return nil
}
