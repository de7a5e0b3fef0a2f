package quality

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The journal reads every answered prediction back out of its JSON. With
// encoding/json that was over half of the journal's cost on a small model
// (reflection over a response the server has just written), so the
// shapes Ferry's own encoders write, V1 {"predictions":[...]} and V2
// {"model_name":..,"id":..,"outputs":[{"name","datatype","shape","data"}]},
// are read by the scanner below. It is strict on purpose: it accepts a
// document only where it can say exactly what encoding/json would have
// decoded (keys spelled as the struct tags, each once; strings without
// escapes, in valid UTF-8; valid JSON throughout, nothing after it), and
// anything else — another server's spelling, escapes, case-folded or
// duplicate keys, null — falls back to encoding/json. FuzzParseV1 and
// FuzzParseV2 check that both paths give the same rows and errors on
// every input.

// maxScanDepth bounds the nesting the scanner follows before it leaves the
// document to encoding/json (which allows 10000).
const maxScanDepth = 64

// scanner reads JSON from b at i. Every method skips leading whitespace
// and reports false on anything it does not accept; the caller then falls
// back to encoding/json.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// eat consumes c if it comes next.
func (s *scanner) eat(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// plain reads a string whose value is its bytes: no escapes, no control
// characters, valid UTF-8 (encoding/json would replace invalid bytes).
func (s *scanner) plain() ([]byte, bool) {
	if !s.eat('"') {
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

// skipString passes over any valid JSON string, escapes included.
func (s *scanner) skipString() bool {
	if !s.eat('"') {
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

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number reads a number as JSON's grammar spells it (strconv.ParseFloat
// also takes hex, underscores, Inf and NaN, which JSON does not) and
// reports whether it is an integer (no fraction, no exponent).
func (s *scanner) number() (num []byte, integer, ok bool) {
	s.ws()
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

// word reads a literal (true, false, null).
func (s *scanner) word(w string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(w)) {
		return false
	}
	s.i += len(w)
	return true
}

// skip passes over one valid JSON value.
func (s *scanner) skip(depth int) bool {
	if depth > maxScanDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '{':
		s.i++
		if s.eat('}') {
			return true
		}
		for {
			if !s.skipString() || !s.eat(':') || !s.skip(depth+1) {
				return false
			}
			if !s.eat(',') {
				return s.eat('}')
			}
		}
	case c == '[':
		s.i++
		if s.eat(']') {
			return true
		}
		for {
			if !s.skip(depth + 1) {
				return false
			}
			if !s.eat(',') {
				return s.eat(']')
			}
		}
	case c == '"':
		return s.skipString()
	case c == '-' || isDigit(c):
		_, _, ok := s.number()
		return ok
	case c == 't':
		return s.word("true")
	case c == 'f':
		return s.word("false")
	case c == 'n':
		return s.word("null")
	}
	return false
}

// raw passes over one value and returns its bytes.
func (s *scanner) raw() ([]byte, bool) {
	s.ws()
	start := s.i
	if !s.skip(0) {
		return nil, false
	}
	return s.b[start:s.i], true
}

// object calls field for each key of an object; field reads the value.
// Keys must be plain strings.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	for {
		key, ok := s.plain()
		if !ok || !s.eat(':') || !field(key) {
			return false
		}
		if !s.eat(',') {
			return s.eat('}')
		}
	}
}

// array calls elem for each element of an array; elem reads it.
func (s *scanner) array(elem func() bool) bool {
	if !s.eat('[') {
		return false
	}
	if s.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if !s.eat(',') {
			return s.eat(']')
		}
	}
}

// other handles a key the struct being decoded does not name: skipped,
// unless encoding/json would match it to a field case-insensitively.
func (s *scanner) other(key []byte, fields ...string) bool {
	for _, f := range fields {
		if bytes.EqualFold(key, []byte(f)) {
			return false
		}
	}
	return s.skip(0)
}

// int64 reads an integer as encoding/json decodes one into an int64.
func (s *scanner) int64() (int64, bool) {
	num, integer, ok := s.number()
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

// scanV1 reads a V1 predict response as json.Unmarshal into v1Response
// would; false: leave it to encoding/json.
func scanV1(body []byte) (v1Response, bool) {
	var r v1Response
	s := scanner{b: body}
	seen := false
	ok := s.object(func(key []byte) bool {
		if string(key) != "predictions" {
			return s.other(key, "predictions")
		}
		if seen {
			return false
		}
		seen = true
		r.Predictions = make([]json.RawMessage, 0, 4)
		return s.array(func() bool {
			p, ok := s.raw()
			r.Predictions = append(r.Predictions, p)
			return ok
		})
	})
	return r, ok && s.end()
}

// keysSeen records which of an object's keys were met, so a repeated key
// is left to encoding/json (which keeps the last); no allocation.
type keysSeen uint8

// first reports whether key i is met for the first time, and records it.
func (k *keysSeen) first(i int) bool {
	if *k&(1<<i) != 0 {
		return false
	}
	*k |= 1 << i
	return true
}

// scanV2 reads a V2 infer response as json.Unmarshal into v2Response
// would; false: leave it to encoding/json.
func scanV2(body []byte) (v2Response, bool) {
	var (
		r    v2Response
		seen keysSeen
	)
	s := scanner{b: body}
	ok := s.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			v, ok := s.plain()
			r.ID = string(v)
			return ok && seen.first(0)
		case "model_version":
			v, ok := s.plain()
			r.ModelVersion = string(v)
			return ok && seen.first(1)
		case "outputs":
			r.Outputs = make([]v2Output, 0, 1)
			return seen.first(2) && s.array(func() bool {
				o, ok := s.output()
				r.Outputs = append(r.Outputs, o)
				return ok
			})
		}
		return s.other(key, "id", "model_version", "outputs")
	})
	return r, ok && s.end()
}

// scanV2Head reads a V2 infer response's id and model_version as
// json.Unmarshal into v2Response would, and checks that the outputs are
// valid JSON without reading them: the predict path journals the response
// as it is and reads its rows only when feedback joins (RawOutput). False:
// leave it to ParseV2.
func scanV2Head(body []byte) (id, version string, ok bool) {
	var seen keysSeen
	s := scanner{b: body}
	ok = s.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			v, ok := s.plain()
			id = string(v)
			return ok && seen.first(0)
		case "model_version":
			v, ok := s.plain()
			version = string(v)
			return ok && seen.first(1)
		case "outputs":
			return seen.first(2) && s.skip(0)
		}
		return s.other(key, "id", "model_version", "outputs")
	})
	return id, version, ok && s.end()
}

func (s *scanner) output() (v2Output, bool) {
	var (
		o    v2Output
		seen keysSeen
	)
	ok := s.object(func(key []byte) bool {
		switch string(key) {
		case "name":
			v, ok := s.plain()
			o.Name = string(v)
			return ok && seen.first(0)
		case "datatype":
			v, ok := s.plain()
			o.Datatype = datatypeName(v)
			return ok && seen.first(1)
		case "shape":
			o.Shape = make([]int64, 0, 2)
			return seen.first(2) && s.array(func() bool {
				d, ok := s.int64()
				o.Shape = append(o.Shape, d)
				return ok
			})
		case "data":
			if !seen.first(3) {
				return false
			}
			// Numbers are converted in this pass (most outputs are
			// numeric); anything else is kept raw for v2Rows.
			s.ws()
			start, t := s.i, *s
			if nums, ok := t.numbers(0, make([]float64, 0, 8)); ok {
				*s = t
				o.Data, o.nums = s.b[start:s.i], nums
				return true
			}
			v, ok := s.raw()
			o.Data = v
			return ok
		}
		return s.other(key, "name", "datatype", "shape", "data")
	})
	return o, ok
}

// datatypeName is string(v), without an allocation for the usual names.
func datatypeName(v []byte) string {
	switch string(v) {
	case "FP32":
		return "FP32"
	case "FP64":
		return "FP64"
	case "INT64":
		return "INT64"
	case "INT32":
		return "INT32"
	case "BYTES":
		return "BYTES"
	case "BOOL":
		return "BOOL"
	}
	return string(v)
}

// numbers reads an array of numbers nested to any depth, as parseNumbers
// would, appending them to out in order; false: anything else (strings,
// booleans, null, numbers out of float64's range).
func (s *scanner) numbers(depth int, out []float64) ([]float64, bool) {
	if depth > maxScanDepth || !s.eat('[') {
		return nil, false
	}
	if s.eat(']') {
		return out, true
	}
	for {
		var ok bool
		if s.peek() == '[' {
			out, ok = s.numbers(depth+1, out)
		} else {
			var f float64
			f, ok = s.float()
			out = append(out, f)
		}
		if !ok {
			return nil, false
		}
		if !s.eat(',') {
			return out, s.eat(']')
		}
	}
}

// float reads a JSON number as strconv.ParseFloat(_, 64) converts it.
func (s *scanner) float() (float64, bool) {
	num, _, ok := s.number()
	if !ok {
		return 0, false
	}
	if f, ok := exactFloat(num); ok {
		return f, true
	}
	f, err := strconv.ParseFloat(string(num), 64)
	return f, err == nil
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// exactFloat converts a number in JSON's grammar whose digits fit in 53
// bits and whose decimal exponent is within ±22, such as the shortest
// decimal of a float32 probability: the digits and the power of ten are
// both exact, so one multiplication or division rounds correctly, as
// strconv.ParseFloat would (Clinger's fast path). Others: false.
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

// flatFloats reads a flat array of numbers as json.Unmarshal into
// []float64 would; false: leave it to encoding/json (null elements,
// nesting, out-of-range numbers).
func flatFloats(p []byte) ([]float64, bool) {
	s := scanner{b: p}
	out := make([]float64, 0, 4)
	ok := s.array(func() bool {
		f, ok := s.float()
		out = append(out, f)
		return ok
	})
	return out, ok && s.end()
}

// plainString reads a JSON string without escapes as json.Unmarshal into
// a string would.
func plainString(p []byte) (string, bool) {
	s := scanner{b: p}
	v, ok := s.plain()
	return string(v), ok && s.end()
}

// flatStrings reads BYTES data, flat or nested one level, as
// unmarshalFlat would.
func flatStrings(data []byte) ([]string, bool) {
	s := scanner{b: data}
	out := []string{}
	str := func() bool {
		v, ok := s.plain()
		out = append(out, string(v))
		return ok
	}
	elem := str
	if t := (scanner{b: data}); t.eat('[') && t.peek() == '[' {
		elem = func() bool { return s.array(str) }
	}
	return out, s.array(elem) && s.end()
}
