package quality

import (
	"bytes"
	"encoding/json"

	"github.com/ferryserve/ferry/internal/protocol/jsonscan"
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

// scanner is package jsonscan's, with the readers of Ferry's own response
// shapes below.
type scanner struct{ jsonscan.Scanner }

func newScanner(b []byte) scanner { return scanner{jsonscan.New(b)} }

// other handles a key the struct being decoded does not name: skipped,
// unless encoding/json would match it to a field case-insensitively.
func (s *scanner) other(key []byte, fields ...string) bool {
	for _, f := range fields {
		if bytes.EqualFold(key, []byte(f)) {
			return false
		}
	}
	return s.Skip(0)
}

// scanV1 reads a V1 predict response as json.Unmarshal into v1Response
// would; false: leave it to encoding/json.
func scanV1(body []byte) (v1Response, bool) {
	var r v1Response
	s := newScanner(body)
	seen := false
	ok := s.Object(func(key []byte) bool {
		if string(key) != "predictions" {
			return s.other(key, "predictions")
		}
		if seen {
			return false
		}
		seen = true
		r.Predictions = make([]json.RawMessage, 0, 4)
		return s.Array(func() bool {
			p, ok := s.Raw()
			r.Predictions = append(r.Predictions, p)
			return ok
		})
	})
	return r, ok && s.End()
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
	s := newScanner(body)
	ok := s.Object(func(key []byte) bool {
		switch string(key) {
		case "id":
			v, ok := s.Str()
			r.ID = string(v)
			return ok && seen.first(0)
		case "model_version":
			v, ok := s.Str()
			r.ModelVersion = string(v)
			return ok && seen.first(1)
		case "outputs":
			r.Outputs = make([]v2Output, 0, 1)
			return seen.first(2) && s.Array(func() bool {
				o, ok := s.output()
				r.Outputs = append(r.Outputs, o)
				return ok
			})
		}
		return s.other(key, "id", "model_version", "outputs")
	})
	return r, ok && s.End()
}

// scanV2Head reads a V2 infer response's id and model_version as
// json.Unmarshal into v2Response would, and checks that the outputs are
// valid JSON without reading them: the predict path journals the response
// as it is and reads its rows only when feedback joins (RawOutput). False:
// leave it to ParseV2.
func scanV2Head(body []byte) (id, version string, ok bool) {
	var seen keysSeen
	s := newScanner(body)
	ok = s.Object(func(key []byte) bool {
		switch string(key) {
		case "id":
			v, ok := s.Str()
			id = string(v)
			return ok && seen.first(0)
		case "model_version":
			v, ok := s.Str()
			version = string(v)
			return ok && seen.first(1)
		case "outputs":
			return seen.first(2) && s.Skip(0)
		}
		return s.other(key, "id", "model_version", "outputs")
	})
	return id, version, ok && s.End()
}

func (s *scanner) output() (v2Output, bool) {
	var (
		o    v2Output
		seen keysSeen
	)
	ok := s.Object(func(key []byte) bool {
		switch string(key) {
		case "name":
			v, ok := s.Str()
			o.Name = string(v)
			return ok && seen.first(0)
		case "datatype":
			v, ok := s.Str()
			o.Datatype = datatypeName(v)
			return ok && seen.first(1)
		case "shape":
			o.Shape = make([]int64, 0, 2)
			return seen.first(2) && s.Array(func() bool {
				d, ok := s.Int()
				o.Shape = append(o.Shape, d)
				return ok
			})
		case "data":
			if !seen.first(3) {
				return false
			}
			// Numbers are converted in this pass (most outputs are
			// numeric); anything else is kept raw for v2Rows.
			s.Peek()
			start, t := s.Pos(), *s
			if nums, ok := t.numbers(0, make([]float64, 0, 8)); ok {
				*s = t
				o.Data, o.nums = s.Since(start), nums
				return true
			}
			v, ok := s.Raw()
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
	if depth > jsonscan.MaxDepth || !s.Byte('[') {
		return nil, false
	}
	if s.Byte(']') {
		return out, true
	}
	for {
		var ok bool
		if s.Peek() == '[' {
			out, ok = s.numbers(depth+1, out)
		} else {
			var f float64
			f, ok = s.Float()
			out = append(out, f)
		}
		if !ok {
			return nil, false
		}
		if !s.Byte(',') {
			return out, s.Byte(']')
		}
	}
}

// flatFloats reads a flat array of numbers as json.Unmarshal into
// []float64 would; false: leave it to encoding/json (null elements,
// nesting, out-of-range numbers).
func flatFloats(p []byte) ([]float64, bool) {
	s := newScanner(p)
	out := make([]float64, 0, 4)
	ok := s.Array(func() bool {
		f, ok := s.Float()
		out = append(out, f)
		return ok
	})
	return out, ok && s.End()
}

// plainString reads a JSON string without escapes as json.Unmarshal into
// a string would.
func plainString(p []byte) (string, bool) {
	s := newScanner(p)
	v, ok := s.Str()
	return string(v), ok && s.End()
}

// flatStrings reads BYTES data, flat or nested one level, as
// unmarshalFlat would.
func flatStrings(data []byte) ([]string, bool) {
	s := newScanner(data)
	out := []string{}
	str := func() bool {
		v, ok := s.Str()
		out = append(out, string(v))
		return ok
	}
	elem := str
	if t := newScanner(data); t.Byte('[') && t.Peek() == '[' {
		elem = func() bool { return s.Array(str) }
	}
	return out, s.Array(elem) && s.End()
}
