// Package pickle owns Ferry's safe reader for Python pickles and joblib
// files. It interprets the pickle opcodes of protocols 0–5 as data only:
// globals resolve against an allow-list, and an allowed class applied to
// arguments becomes an inert *Object record rather than a call. numpy
// arrays, dtypes and scalars and joblib's NumpyArrayWrapper (with the raw
// array bytes that follow it in the stream) are decoded natively. Nothing a
// file says is ever executed.
package pickle

import (
	"errors"
	"fmt"
)

// Errors the reader returns.
var (
	// ErrForbidden: the pickle names a global that is not allow-listed.
	ErrForbidden = errors.New("forbidden global")
	// ErrCorrupt: the stream is malformed or truncated.
	ErrCorrupt = errors.New("corrupt pickle")
	// ErrUnsupported: a valid pickle feature this reader does not implement.
	ErrUnsupported = errors.New("unsupported pickle feature")
)

// Global is a reference to a module-level name, such as a class.
type Global struct{ Module, Name string }

func (g Global) String() string { return g.Module + "." + g.Name }

// Tuple is a Python tuple.
type Tuple []any

// List is a Python list (mutable while decoding, hence a pointer).
type List struct{ Items []any }

// Set is a Python set or frozenset.
type Set struct{ Items []any }

// Dict is a Python dict kept in insertion order.
type Dict struct {
	Keys, Values []any
}

// Get returns the value stored under the string key k.
func (d *Dict) Get(k string) (any, bool) {
	for i := len(d.Keys) - 1; i >= 0; i-- {
		if s, ok := d.Keys[i].(string); ok && s == k {
			return d.Values[i], true
		}
	}
	return nil, false
}

func (d *Dict) set(k, v any) {
	d.Keys = append(d.Keys, k)
	d.Values = append(d.Values, v)
}

// Object is an allow-listed class applied to arguments, plus the state a
// BUILD opcode gave it. Nothing was run to make it.
type Object struct {
	Class Global
	Args  Tuple
	State any
}

// Bytes is a Python bytes or bytearray value.
type Bytes []byte

// Describe names a decoded value's Python type for error messages.
func Describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case Bytes:
		return "bytes"
	case Tuple:
		return "tuple"
	case *List:
		return "list"
	case *Dict:
		return "dict"
	case *Set:
		return "set"
	case *Object:
		return v.Class.String()
	case *Array:
		return "numpy.ndarray(" + v.Dtype.String() + ")"
	case *Dtype:
		return "numpy.dtype"
	case Global:
		return v.String()
	default:
		return fmt.Sprintf("%T", v)
	}
}
