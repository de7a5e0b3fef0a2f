package xgboost

import (
	"encoding/binary"
	"math"
	"strconv"
)

// maxDepth bounds container nesting; XGBoost models nest about six deep.
const maxDepth = 64

// ubjToJSON transcodes a UBJSON document (the format of XGBoost's .ubj
// files: big-endian, with typed, counted arrays) into JSON text, so both
// encodings share one model decoder. float32 values are written with the
// shortest representation that reads back to the same float32.
func ubjToJSON(data []byte) ([]byte, error) {
	t := ubjTranscoder{in: data, out: make([]byte, 0, len(data)*2)}
	if err := t.value(t.marker(), 0); err != nil {
		return nil, err
	}
	if t.pos != len(t.in) {
		return nil, corrupt("ubjson: %d bytes after the document", len(t.in)-t.pos)
	}
	return t.out, nil
}

type ubjTranscoder struct {
	in  []byte
	pos int
	out []byte
	err error
}

func (t *ubjTranscoder) fail(format string, args ...any) {
	if t.err == nil {
		t.err = corrupt("ubjson at byte %d: "+format, append([]any{t.pos}, args...)...)
	}
}

func (t *ubjTranscoder) take(n int) []byte {
	if t.err != nil {
		return nil
	}
	if n < 0 || n > len(t.in)-t.pos {
		t.fail("truncated")
		return nil
	}
	b := t.in[t.pos : t.pos+n]
	t.pos += n
	return b
}

// marker reads the next type marker, skipping no-ops.
func (t *ubjTranscoder) marker() byte {
	for {
		b := t.take(1)
		if b == nil {
			return 0
		}
		if b[0] != 'N' {
			return b[0]
		}
	}
}

// scalarSize is the payload size of a fixed-size marker, or -1.
func scalarSize(m byte) int {
	switch m {
	case 'Z', 'T', 'F':
		return 0
	case 'i', 'U', 'C':
		return 1
	case 'I':
		return 2
	case 'l', 'd':
		return 4
	case 'L', 'D':
		return 8
	}
	return -1
}

// integer reads an integer with marker m.
func (t *ubjTranscoder) integer(m byte) (int64, bool) {
	switch m {
	case 'i':
		if b := t.take(1); b != nil {
			return int64(int8(b[0])), true
		}
	case 'U':
		if b := t.take(1); b != nil {
			return int64(b[0]), true
		}
	case 'I':
		if b := t.take(2); b != nil {
			return int64(int16(binary.BigEndian.Uint16(b))), true
		}
	case 'l':
		if b := t.take(4); b != nil {
			return int64(int32(binary.BigEndian.Uint32(b))), true
		}
	case 'L':
		if b := t.take(8); b != nil {
			return int64(binary.BigEndian.Uint64(b)), true
		}
	default:
		t.fail("marker %q is not an integer", m)
	}
	return 0, false
}

// length reads a non-negative count or string length.
func (t *ubjTranscoder) length() int {
	n, ok := t.integer(t.marker())
	if !ok {
		return 0
	}
	if n < 0 || n > int64(len(t.in)) {
		t.fail("length %d out of range", n)
		return 0
	}
	return int(n)
}

func (t *ubjTranscoder) str() {
	n := t.length()
	b := t.take(n)
	if t.err == nil {
		t.out = appendJSONString(t.out, b)
	}
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(out, s []byte) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}

func (t *ubjTranscoder) value(m byte, depth int) error {
	if t.err != nil {
		return t.err
	}
	switch m {
	case 'Z':
		t.out = append(t.out, "null"...)
	case 'T':
		t.out = append(t.out, "true"...)
	case 'F':
		t.out = append(t.out, "false"...)
	case 'i', 'U', 'I', 'l', 'L':
		if n, ok := t.integer(m); ok {
			t.out = strconv.AppendInt(t.out, n, 10)
		}
	case 'd':
		if b := t.take(4); b != nil {
			t.float(float64(math.Float32frombits(binary.BigEndian.Uint32(b))), 32)
		}
	case 'D':
		if b := t.take(8); b != nil {
			t.float(math.Float64frombits(binary.BigEndian.Uint64(b)), 64)
		}
	case 'C':
		if b := t.take(1); b != nil {
			t.out = appendJSONString(t.out, b)
		}
	case 'S':
		t.str()
	case 'H':
		n := t.length()
		b := t.take(n)
		if t.err == nil {
			if _, err := strconv.ParseFloat(string(b), 64); err != nil {
				t.fail("bad high-precision number")
			} else {
				t.out = append(t.out, b...)
			}
		}
	case '[', '{':
		if depth >= maxDepth {
			t.fail("nested deeper than %d", maxDepth)
			break
		}
		t.container(m == '{', depth+1)
	default:
		t.fail("unknown marker %q", m)
	}
	return t.err
}

func (t *ubjTranscoder) float(v float64, bits int) {
	switch {
	case math.IsNaN(v):
		t.out = append(t.out, `"NaN"`...)
		return
	case math.IsInf(v, 1):
		t.out = append(t.out, `"Infinity"`...)
		return
	case math.IsInf(v, -1):
		t.out = append(t.out, `"-Infinity"`...)
		return
	}
	t.out = strconv.AppendFloat(t.out, v, 'g', -1, bits)
}

// container transcodes an array or object after its opening marker,
// handling the optimised forms: "$" type and "#" count.
func (t *ubjTranscoder) container(object bool, depth int) {
	open, close, end := byte('['), byte(']'), byte(']')
	if object {
		open, close, end = '{', '}', '}'
	}
	t.out = append(t.out, open)
	elemType, count := byte(0), -1
	m := t.marker()
	if m == '$' {
		if elemType = t.marker(); t.err != nil {
			return
		}
		if m = t.marker(); m != '#' {
			t.fail("typed container without a count")
			return
		}
	}
	if m == '#' {
		count = t.length()
		// A counted container's elements take at least a byte each, except
		// typed ones of zero-size types, which would expand without bound.
		size := 1
		if elemType != 0 {
			switch s := scalarSize(elemType); {
			case s == 0:
				t.fail("typed container of %q", elemType)
				return
			case s > 0:
				size = s
			}
		}
		if count > (len(t.in)-t.pos)/size {
			t.fail("count %d exceeds the data", count)
			return
		}
		m = 0
	}
	for i := 0; t.err == nil; i++ {
		if count >= 0 {
			if i == count {
				break
			}
		} else {
			if m == 0 {
				m = t.marker()
			}
			if m == end {
				break
			}
		}
		if i > 0 {
			t.out = append(t.out, ',')
		}
		if object {
			if count < 0 {
				// The key's length marker is the one already read.
				t.pos--
			}
			t.str()
			t.out = append(t.out, ':')
		}
		vm := elemType
		if vm == 0 {
			if count < 0 && !object {
				vm = m
			} else {
				vm = t.marker()
			}
		}
		t.value(vm, depth)
		m = 0
	}
	t.out = append(t.out, close)
}
