// Package jsonscan reads JSON of known shapes straight from its bytes:
// objects of known keys, plain strings, integers, and nested lists of
// numbers. It is the fast path of the V1 and V2 REST request decoders
// (issue 15: tokenising a batch-1 request with a general JSON decoder cost
// more than the model's evaluation) and of the quality journal's reading
// of Ferry's own responses (internal/quality).
//
// A Scanner validates what it reads as strictly as RFC 8259 and reports
// false on anything it does not read itself — a string with an escape, a
// control character or invalid UTF-8, a value of another kind, a malformed
// number — and the caller then decodes the document with its general
// decoder, which accepts or refuses it with its own message. The callers'
// fuzz targets check that whatever the fast path accepts decodes exactly as
// the general decoder decodes it.
package jsonscan

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
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

// Str reads a string whose value is its bytes — no escapes, no control
// characters, valid UTF-8 (a JSON decoder would replace invalid bytes) —
// and returns them; they share the scanner's bytes.
func (s *Scanner) Str() ([]byte, bool) {
	if !s.Byte('"') {
		return nil, false
	}
	start, ascii := s.i, true
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, ascii || utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
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

// Pos is the offset of the next byte to read; Since(pos) returns the bytes
// read from pos on.
func (s *Scanner) Pos() int { return s.i }

// Since returns the bytes read since offset pos.
func (s *Scanner) Since(pos int) []byte { return s.b[pos:s.i] }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Num reads a number as JSON's grammar (RFC 8259) spells it —
// strconv.ParseFloat also takes hex, underscores, Inf and NaN, which JSON
// does not — and reports whether it is an integer (no fraction, no
// exponent).
func (s *Scanner) Num() (num []byte, integer, ok bool) {
	s.space()
	b, start := s.b, s.i
	i := start
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return nil, false, false
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return nil, false, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return nil, false, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.i = i
	return b[start:i], integer, true
}

// Float reads a number as strconv.ParseFloat(_, 64) converts it; a number
// outside float64's range reports false.
func (s *Scanner) Float() (float64, bool) {
	num, _, ok := s.Num()
	if !ok {
		return 0, false
	}
	if f, ok := exactFloat(num); ok {
		return f, true
	}
	// The bytes are a valid JSON number; the string shares them for the
	// length of the call.
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(num), len(num)), 64)
	return f, err == nil
}

// FloatOrNull reads a number as Float does, or null as NaN (a missing
// value).
func (s *Scanner) FloatOrNull() (float64, bool) {
	if s.Peek() == 'n' {
		return math.NaN(), s.Word("null")
	}
	return s.Float()
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// exactFloat converts a number in JSON's grammar whose digits fit in 53
// bits and whose decimal exponent is within ±22, such as the shortest
// decimal of a float32: the digits and the power of ten are both exact, so
// one multiplication or division rounds correctly, as strconv.ParseFloat
// would (Clinger's fast path). Others: false.
func exactFloat(num []byte) (float64, bool) {
	i, neg := 0, false
	if num[0] == '-' {
		neg, i = true, 1
	}
	var (
		m   uint64
		exp int
	)
	frac := false
	for ; i < len(num); i++ {
		c := num[i]
		switch {
		case isDigit(c):
			if m > (1<<53-9)/10 {
				return 0, false
			}
			m = m*10 + uint64(c-'0')
			if frac {
				exp--
			}
			continue
		case c == '.':
			frac = true
			continue
		}
		break // 'e' or 'E'
	}
	if i < len(num) { // an exponent
		i++
		eneg := false
		if num[i] == '+' || num[i] == '-' {
			eneg = num[i] == '-'
			i++
		}
		e := 0
		for ; i < len(num); i++ {
			if e > 1000 {
				return 0, false
			}
			e = e*10 + int(num[i]-'0')
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	f := float64(m)
	switch {
	case m == 0:
	case exp < -22 || exp > 22:
		return 0, false
	case exp < 0:
		f /= pow10[-exp]
	default:
		f *= pow10[exp]
	}
	if neg {
		f = -f
	}
	return f, true
}

// Int reads an integer written without fraction or exponent, in int64's
// range, as encoding/json and jsontext read one.
func (s *Scanner) Int() (int64, bool) {
	num, integer, ok := s.Num()
	if !ok || !integer {
		return 0, false
	}
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	var u uint64
	for _, c := range num {
		if u > (1<<63)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case neg && u <= 1<<63:
		return int64(-u), true
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

// Number reads a number as an int64 when it is written as an integer (one
// outside int64's range reports false), else as a float64.
func (s *Scanner) Number() (any, bool) {
	t := *s
	if _, integer, ok := t.Num(); !ok {
		return nil, false
	} else if !integer {
		f, ok := s.Float()
		return f, ok
	}
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
	if s.Peek() == 't' {
		return true, s.Word("true")
	}
	return false, s.Word("false")
}

// Word reads a literal (true, false, null) after any whitespace.
func (s *Scanner) Word(w string) bool {
	s.space()
	if !bytes.HasPrefix(s.b[s.i:], []byte(w)) {
		return false
	}
	s.i += len(w)
	return true
}

// MaxDepth bounds the nesting Skip follows before it reports false (a JSON
// decoder allows more; the caller then falls back to one).
const MaxDepth = 64

// skipString passes over any valid JSON string, escapes included.
func (s *Scanner) skipString() bool {
	if !s.Byte('"') {
		return false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		s.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.i >= len(s.b) {
				return false
			}
			e := s.b[s.i]
			s.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if s.i+4 > len(s.b) {
					return false
				}
				for _, h := range s.b[s.i : s.i+4] {
					if !isHex(h) {
						return false
					}
				}
				s.i += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// Skip passes over one valid JSON value nested depth deep.
func (s *Scanner) Skip(depth int) bool {
	if depth > MaxDepth {
		return false
	}
	switch c := s.Peek(); {
	case c == '{':
		s.i++
		if s.Byte('}') {
			return true
		}
		for {
			if !s.skipString() || !s.Byte(':') || !s.Skip(depth+1) {
				return false
			}
			if !s.Byte(',') {
				return s.Byte('}')
			}
		}
	case c == '[':
		s.i++
		if s.Byte(']') {
			return true
		}
		for {
			if !s.Skip(depth + 1) {
				return false
			}
			if !s.Byte(',') {
				return s.Byte(']')
			}
		}
	case c == '"':
		return s.skipString()
	case c == '-' || isDigit(c):
		_, _, ok := s.Num()
		return ok
	case c == 't':
		return s.Word("true")
	case c == 'f':
		return s.Word("false")
	case c == 'n':
		return s.Word("null")
	}
	return false
}

// Raw passes over one value and returns its bytes.
func (s *Scanner) Raw() ([]byte, bool) {
	s.space()
	start := s.i
	if !s.Skip(0) {
		return nil, false
	}
	return s.b[start:s.i], true
}

// Object calls field for each member of an object, after its name and
// colon; field reads the value. Names must be strings Str takes.
func (s *Scanner) Object(field func(key []byte) bool) bool {
	if !s.Byte('{') {
		return false
	}
	if s.Byte('}') {
		return true
	}
	for {
		key, ok := s.Key()
		if !ok || !field(key) {
			return false
		}
		if !s.Byte(',') {
			return s.Byte('}')
		}
	}
}

// Array calls elem for each element of a list; elem reads it.
func (s *Scanner) Array(elem func() bool) bool {
	if !s.Byte('[') {
		return false
	}
	if s.Byte(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if !s.Byte(',') {
			return s.Byte(']')
		}
	}
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
			f, ok := s.FloatOrNull()
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
