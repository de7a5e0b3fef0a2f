package v2

import (
	"github.com/ferryserve/ferry/internal/protocol/jsonscan"
	"github.com/ferryserve/ferry/internal/tensor"
)

// scanRequests turns scanRequest on; FuzzScanRequest turns it off to decode
// its reference.
var scanRequests = true

// scanRequest decodes the common request — an optional string "id",
// "parameters" and "outputs", and "inputs" of FP32 or FP64 tensors in JSON,
// each with "name", "datatype" and "shape" before its "data" — straight from body (package jsonscan), without a
// token decoder: for a batch-1 request that decoder cost more than the
// model (issue 15). It reports false for anything else, and for anything
// decodeJSON would refuse (a duplicate key, data that does not fit the
// shape or the budget), leaving the request to decodeJSON. FuzzScanRequest
// checks that what it accepts decodes exactly as decodeJSON decodes it.
func scanRequest(body []byte, b *reqBudget) (*InferRequest, []int64, bool) {
	s := jsonscan.New(body)
	if !s.Byte('{') || s.Peek() == '}' {
		return nil, nil, false
	}
	// The request, its first input and that input's size come in one
	// allocation (a batch-1 request has one input).
	one := &struct {
		req    InferRequest
		inputs [1]*tensor.Tensor
		sizes  [1]int64
	}{}
	req := &one.req
	var sizes []int64
	// The inputs are charged to a copy of b as they are read, so that each
	// is bounded by what the ones before it left, as decodeJSON bounds it;
	// b itself is charged only when the whole request is taken.
	var tent *reqBudget
	if b != nil {
		c := *b
		tent = &c
	}
	haveID := false
	for {
		k, ok := s.Key()
		if !ok {
			return nil, nil, false
		}
		switch string(k) {
		case "id":
			v, ok := s.Str()
			if !ok || haveID {
				return nil, nil, false
			}
			req.ID, haveID = string(v), true
		case "parameters":
			p, ok := scanParameters(&s)
			if !ok || req.Parameters != nil {
				return nil, nil, false
			}
			req.Parameters = p
		case "outputs":
			outs, ok := scanOutputs(&s)
			if !ok || req.Outputs != nil {
				return nil, nil, false
			}
			req.Outputs = outs
		case "inputs":
			if req.Inputs != nil || !s.Byte('[') || s.Peek() == ']' {
				return nil, nil, false
			}
			req.Inputs, sizes = one.inputs[:0], one.sizes[:0]
			for more := true; more; {
				t, ok := scanInput(&s, tent, len(body))
				if !ok {
					return nil, nil, false
				}
				n := tensor.NumElements(t.Shape) // what t.Validate found the data holds
				if !tent.fits(n, n*elemCost(t.Datatype)) {
					return nil, nil, false
				}
				tent.charge(n, n*elemCost(t.Datatype))
				req.Inputs = append(req.Inputs, t)
				sizes = append(sizes, -1)
				if more, ok = s.Next(']'); !ok {
					return nil, nil, false
				}
			}
			s.Byte(']')
		default:
			return nil, nil, false
		}
		more, ok := s.Next('}')
		if !ok {
			return nil, nil, false
		}
		if !more {
			break
		}
	}
	if !s.Byte('}') || !s.End() || req.Inputs == nil {
		return nil, nil, false
	}
	if b != nil {
		*b = *tent
	}
	return req, sizes, true
}

// scanInput reads one input tensor of the shape scanRequest takes. What b
// has room for bounds its element count, as readData bounds it, and the
// body's length the memory it asks for before the data is read.
func scanInput(s *jsonscan.Scanner, b *reqBudget, bodyLen int) (*tensor.Tensor, bool) {
	if !s.Byte('{') || s.Peek() == '}' {
		return nil, false
	}
	// The tensor and its shape (up to rank 4) come in one allocation.
	ts := &struct {
		t     tensor.Tensor
		shape [4]int64
	}{}
	t := &ts.t
	var haveName, haveShape bool
	for {
		k, ok := s.Key()
		if !ok {
			return nil, false
		}
		switch string(k) {
		case "name":
			v, ok := s.Str()
			if !ok || haveName || len(v) == 0 {
				return nil, false
			}
			t.Name, haveName = string(v), true
		case "datatype":
			v, ok := s.Str()
			if !ok || t.Datatype != tensor.Invalid {
				return nil, false
			}
			switch string(v) {
			case "FP32":
				t.Datatype = tensor.FP32
			case "FP64":
				t.Datatype = tensor.FP64
			default:
				return nil, false
			}
		case "shape":
			if haveShape || !s.Byte('[') {
				return nil, false
			}
			t.Shape = ts.shape[:0]
			for more := s.Peek() != ']'; more; {
				d, ok := s.Uint()
				if !ok || len(t.Shape) == maxRank {
					return nil, false
				}
				t.Shape = append(t.Shape, d)
				if more, ok = s.Next(']'); !ok {
					return nil, false
				}
			}
			s.Byte(']')
			haveShape = true
			if tensor.NumElements(t.Shape) < 0 {
				return nil, false
			}
		case "parameters":
			p, ok := scanParameters(s)
			if !ok || t.Parameters != nil {
				return nil, false
			}
			if _, binary := p[paramBinarySize]; binary {
				return nil, false
			}
			t.Parameters = p
		case "data":
			// The data comes last in the common request; data before its
			// datatype or shape is left to decodeJSON.
			if t.Data != nil || t.Datatype == tensor.Invalid || !haveShape {
				return nil, false
			}
			n := tensor.NumElements(t.Shape)
			if n > b.room(elemCost(t.Datatype)) {
				return nil, false
			}
			// Every element takes at least two bytes ("0,").
			c := min(n, int64(bodyLen/2+1))
			if t.Datatype == tensor.FP32 {
				d, ok := jsonscan.Floats(s, make([]float32, 0, c), maxRank, n)
				if !ok {
					return nil, false
				}
				t.Data = d
			} else {
				d, ok := jsonscan.Floats(s, make([]float64, 0, c), maxRank, n)
				if !ok {
					return nil, false
				}
				t.Data = d
			}
		default:
			return nil, false
		}
		more, ok := s.Next('}')
		if !ok {
			return nil, false
		}
		if !more {
			break
		}
	}
	s.Byte('}')
	if !haveName || t.Data == nil || t.Validate() != nil {
		return nil, false
	}
	return t, true
}

// scanParameters reads a parameters object whose values are plain strings,
// booleans and numbers, as readParameters reads it: integers as int64,
// other numbers as float64.
func scanParameters(s *jsonscan.Scanner) (map[string]any, bool) {
	if !s.Byte('{') {
		return nil, false
	}
	out := map[string]any{}
	for more := s.Peek() != '}'; more; {
		k, ok := s.Key()
		if !ok {
			return nil, false
		}
		if _, dup := out[string(k)]; dup {
			return nil, false
		}
		var v any
		switch c := s.Peek(); {
		case c == '"':
			str, ok := s.Str()
			if !ok {
				return nil, false
			}
			v = string(str)
		case c == 't' || c == 'f':
			b, ok := s.Bool()
			if !ok {
				return nil, false
			}
			v = b
		default:
			n, ok := s.Number()
			if !ok {
				return nil, false
			}
			v = n
		}
		out[string(k)] = v
		if more, ok = s.Next('}'); !ok {
			return nil, false
		}
	}
	s.Byte('}')
	return out, true
}

// scanOutputs reads the requested outputs: a non-empty list of objects with
// a "name" and, optionally, "parameters".
func scanOutputs(s *jsonscan.Scanner) ([]RequestedOutput, bool) {
	if !s.Byte('[') || s.Peek() == ']' {
		return nil, false
	}
	var outs []RequestedOutput
	for more := true; more; {
		if !s.Byte('{') || s.Peek() == '}' {
			return nil, false
		}
		var o RequestedOutput
		for m := true; m; {
			k, ok := s.Key()
			if !ok {
				return nil, false
			}
			switch string(k) {
			case "name":
				v, ok := s.Str()
				if !ok || o.Name != "" || len(v) == 0 {
					return nil, false
				}
				o.Name = string(v)
			case "parameters":
				p, ok := scanParameters(s)
				if !ok || o.Parameters != nil {
					return nil, false
				}
				o.Parameters = p
			default:
				return nil, false
			}
			if m, ok = s.Next('}'); !ok {
				return nil, false
			}
		}
		s.Byte('}')
		if o.Name == "" {
			return nil, false
		}
		outs = append(outs, o)
		var ok bool
		if more, ok = s.Next(']'); !ok {
			return nil, false
		}
	}
	s.Byte(']')
	return outs, true
}
