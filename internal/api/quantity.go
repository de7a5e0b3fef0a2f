package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Quantity is a Kubernetes resource quantity ("500m", "2Gi", "1e3") kept as
// written. YAML often gives plain numbers (cpu: 1), which are accepted too.
// Use Value to read it; Validate reports malformed quantities by field path.
type Quantity string

// MarshalJSON writes the quantity as a JSON string.
func (q Quantity) MarshalJSON() ([]byte, error) { return json.Marshal(string(q)) }

// UnmarshalJSON accepts a JSON string or number.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*q = Quantity(s)
		return nil
	}
	if _, err := strconv.ParseFloat(string(b), 64); err != nil {
		return fmt.Errorf("expected a quantity string or number, got %s", b)
	}
	*q = Quantity(b)
	return nil
}

var binarySuffixes = map[string]float64{
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60,
}

var decimalSuffixes = map[string]float64{
	"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
}

// Value parses the quantity into base units (cores, bytes). It follows the
// Kubernetes grammar: a signed decimal number followed by a binary suffix
// (Ki…Ei), a decimal suffix (n, u, m, k, M…E) or a decimal exponent (e3).
func (q Quantity) Value() (float64, error) {
	s := string(q)
	if s == "" {
		return 0, fmt.Errorf("empty quantity")
	}
	i := 0
	if s[0] == '+' || s[0] == '-' {
		i++
	}
	digits, dot := 0, false
	for ; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			digits++
			continue
		}
		if c == '.' && !dot {
			dot = true
			continue
		}
		break
	}
	if digits == 0 {
		return 0, fmt.Errorf("quantity %q does not start with a number", s)
	}
	num, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("quantity %q: %w", s, err)
	}
	suffix := s[i:]
	if m, ok := binarySuffixes[suffix]; ok {
		return num * m, nil
	}
	if m, ok := decimalSuffixes[suffix]; ok {
		return num * m, nil
	}
	if suffix[0] == 'e' || suffix[0] == 'E' {
		if exp, err := strconv.ParseInt(suffix[1:], 10, 32); err == nil {
			if v := num * math.Pow10(int(exp)); !math.IsInf(v, 0) {
				return v, nil
			}
		}
	}
	return 0, fmt.Errorf("quantity %q has an unknown suffix %q", s, suffix)
}

// maxBytes bounds Bytes so that the result and sums of a few of them fit an
// int64.
const maxBytes = 1 << 62

// Bytes parses the quantity as a non-negative number of bytes (memory,
// disk, body sizes), rounding a fraction up as Kubernetes does. It is the
// one quantity parser: admission (Validate) and replicas (the models config
// read by internal/puller) both use it, so a value one accepts the other
// accepts too.
func (q Quantity) Bytes() (int64, error) {
	v, err := q.Value()
	switch {
	case err != nil:
		return 0, err
	case v < 0:
		return 0, fmt.Errorf("quantity %q is negative", string(q))
	case v > maxBytes:
		return 0, fmt.Errorf("quantity %q is more than 4Ei", string(q))
	}
	return int64(math.Ceil(v)), nil
}
