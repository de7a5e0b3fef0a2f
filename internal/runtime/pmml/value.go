package pmml

import (
	"math"
	"strconv"
	"strings"
)

// dataType is a PMML dataType, collapsed to how Ferry stores values.
type dataType uint8

const (
	typeString dataType = iota
	typeDouble          // double and real
	typeFloat           // float: values are rounded to single precision
	typeInteger
	typeBoolean
)

func parseDataType(s string) (dataType, bool) {
	switch s {
	case "string", "":
		return typeString, true
	case "double", "real":
		return typeDouble, true
	case "float":
		return typeFloat, true
	case "integer":
		return typeInteger, true
	case "boolean":
		return typeBoolean, true
	}
	return typeString, false
}

func (d dataType) numeric() bool { return d != typeString }

// value is one field value during evaluation: missing, a number or a
// string. Numbers also carry their canonical string so categorical
// comparisons ("1" vs 1.0) work either way.
type value struct {
	ok    bool
	isNum bool
	num   float64
	str   string
}

var missing = value{}

func numValue(f float64) value {
	if math.IsNaN(f) {
		return missing
	}
	return value{ok: true, isNum: true, num: f}
}

func strValue(s string) value { return value{ok: true, str: s} }

func boolValue(b bool) value {
	if b {
		return value{ok: true, isNum: true, num: 1, str: "true"}
	}
	return value{ok: true, isNum: true, num: 0, str: "false"}
}

// String renders a value the way categories are compared and reported.
func (v value) String() string {
	if !v.ok {
		return ""
	}
	if v.str != "" || !v.isNum {
		return v.str
	}
	return formatNumber(v.num)
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// number returns v as a float64, parsing strings; ok is false when v is
// missing or not numeric.
func (v value) number() (float64, bool) {
	if !v.ok {
		return 0, false
	}
	if v.isNum {
		return v.num, true
	}
	switch v.str {
	case "true":
		return 1, true
	case "false":
		return 0, true
	}
	f, err := parseNumber(v.str)
	if err != nil || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// cast converts v to dataType d; ok is false when it does not parse.
func cast(v value, d dataType) (value, bool) {
	if !v.ok {
		return v, true
	}
	switch d {
	case typeString:
		return strValue(v.String()), true
	case typeBoolean:
		if v.isNum {
			return boolValue(v.num != 0), true
		}
		switch strings.ToLower(strings.TrimSpace(v.str)) {
		case "true", "1":
			return boolValue(true), true
		case "false", "0":
			return boolValue(false), true
		}
		return missing, false
	case typeInteger:
		f, ok := v.number()
		if !ok {
			return missing, false
		}
		if f != math.Trunc(f) {
			return missing, false
		}
		return numValue(f), true
	case typeFloat:
		f, ok := v.number()
		if !ok {
			return missing, false
		}
		return numValue(float64(float32(f))), true
	default:
		f, ok := v.number()
		if !ok {
			return missing, false
		}
		return numValue(f), true
	}
}

// equalTo compares v with a constant given as text (and its parsed number).
func (v value) equalTo(s string, f float64, fok bool) bool {
	if v.isNum && fok {
		return v.num == f
	}
	return v.String() == s
}

// compareTo orders v against a constant: -1, 0, 1; ok false when they do
// not compare (a number against text).
func (v value) compareTo(s string, f float64, fok bool) (int, bool) {
	if v.isNum {
		if !fok {
			return 0, false
		}
		switch {
		case v.num < f:
			return -1, true
		case v.num > f:
			return 1, true
		}
		return 0, true
	}
	if fok {
		if g, ok := v.number(); ok {
			return cmpFloat(g, f), true
		}
	}
	return strings.Compare(v.str, s), true
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// constant is a literal from the document with its number pre-parsed.
type constant struct {
	s   string
	f   float64
	fok bool
}

func newConstant(s string) constant {
	f, err := parseNumber(s)
	return constant{s: s, f: f, fok: err == nil && !math.IsNaN(f)}
}

var (
	negInf = math.Inf(-1)
	posInf = math.Inf(1)
)
