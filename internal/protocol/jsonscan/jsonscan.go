// Package jsonscan reads the common shapes of inference requests straight
// from their bytes: objects of known keys, short plain strings, lists of
// integers, and nested lists of numbers. It is the fast path of the V1 and
// V2 REST decoders (issue 15: tokenising a batch-1 request with a general
// JSON decoder cost more than the model's evaluation).
//
// A Scanner validates what it reads as strictly as RFC 8259 and reports
// false on anything it does not read itself — a string with an escape or a
// byte outside printable ASCII, a value of another kind, a malformed
// number — and the caller then decodes the request with the general
// decoder, which accepts or refuses it with its own message. The callers'
// fuzz targets check that whatever the fast path accepts decodes exactly as
// the general decoder decodes it.
package jsonscan

import (
	"math"
	"strconv"
	"unsafe"
)

// Scanner reads b from the start; its zero value reads nothing.
type Scanner struct {
	b []byte
	i int
}

// New returns a Scanner over b.
func New(b []byte) Scanner { return Scanner{b: b} }

// Peek skips whitespace and returns the next byte, 0 at the end.
func (s *Scanner) Peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// Byte skips whitespace and consumes c if it comes next.
func (s *Scanner) Byte(c byte) bool {
	if s.Peek() == c {
		s.i++
		return true
	}
	return false
}

// End reports whether only whitespace is left.
func (s *Scanner) End() bool { return s.Peek() == 0 && s.i == len(s.b) }

func (s *Scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// Str reads a string of printable ASCII without escapes and returns its
// contents, which share the scanner's bytes.
func (s *Scanner) Str() ([]byte, bool) {
	if !s.Byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			s.i++
			return s.b[start : s.i-1], true
		}
		if c < 0x20 || c == '\\' || c >= 0x7f {
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// Key reads an object member's name and the colon after it.
func (s *Scanner) Key() ([]byte, bool) {
	k, ok := s.Str()
	return k, ok && s.Byte(':')
}

// Next consumes the comma between members or elements, if there is one,
// and reports whether the container goes on: true after a comma, false
// before its closing byte close. ok is false for anything else.
func (s *Scanner) Next(close byte) (more, ok bool) {
	switch s.Peek() {
	case ',':
		s.i++
		return true, s.Peek() != close // no trailing comma
	case close:
		return false, true
	}
	return false, false
}

// number returns the bytes of the JSON number at the scanner, strictly
// per RFC 8259's grammar, and advances past it.
func (s *Scanner) number() ([]byte, bool) {
	b, i := s.b, s.i
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return nil, false
		}
	}
	s.i = i
	return b[start:i], true
}

// Float reads a number, or null as NaN (a missing value). It reports false
// for a number outside float64's range.
func (s *Scanner) Float() (float64, bool) {
	if s.Peek() == 'n' {
		if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
			s.i += 4
			return math.NaN(), true
		}
		return 0, false
	}
	num, ok := s.number()
	if !ok {
		return 0, false
	}
	// The bytes are a valid JSON number; the string shares them for the
	// length of the call.
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(num), len(num)), 64)
	return f, err == nil
}

// Int reads an integer written without fraction or exponent, of at most
// 15 digits (so below 2^53 in magnitude).
func (s *Scanner) Int() (int64, bool) {
	s.space()
	num, ok := s.number()
	if !ok {
		return 0, false
	}
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	if len(num) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// Number reads a number as an int64 when it is written as an integer (of
// at most 15 digits; a longer one reports false), else as a float64.
func (s *Scanner) Number() (any, bool) {
	s.space()
	save := s.i
	num, ok := s.number()
	if !ok {
		return nil, false
	}
	for _, c := range num {
		if c == '.' || c == 'e' || c == 'E' {
			s.i = save
			f, ok := s.Float()
			return f, ok
		}
	}
	s.i = save
	i, ok := s.Int()
	return i, ok
}

// Uint reads an integer as Int does, written without a minus sign.
func (s *Scanner) Uint() (int64, bool) {
	if s.Peek() == '-' {
		return 0, false
	}
	return s.Int()
}

// Bool reads true or false.
func (s *Scanner) Bool() (v, ok bool) {
	s.space()
	switch rest := s.b[s.i:]; {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		s.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		s.i += 5
		return false, true
	}
	return false, false
}

// Floats reads a list of numbers and nulls, nested at most maxDepth deep
// ([[1, 2], [3, null]]), appending them flattened to dst; a list holding
// more than max of them reports false.
func Floats[T float32 | float64](s *Scanner, dst []T, maxDepth int, max int64) ([]T, bool) {
	if !s.Byte('[') {
		return dst, false
	}
	depth := 1
	for depth > 0 {
		switch s.Peek() {
		case '[':
			if depth == maxDepth {
				return dst, false
			}
			s.i++
			depth++
			continue
		case ']':
			// Only an empty list can close here; a list's last element
			// closes it in the loop below.
			s.i++
			depth--
		default:
			if int64(len(dst)) == max {
				return dst, false
			}
			f, ok := s.Float()
			if !ok {
				return dst, false
			}
			dst = append(dst, T(f))
		}
		// After an element: a comma and the next one, or closing brackets.
		for depth > 0 {
			more, ok := s.Next(']')
			if !ok {
				return dst, false
			}
			if more {
				break
			}
			s.i++
			depth--
		}
	}
	return dst, true
}
