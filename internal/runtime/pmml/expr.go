package pmml

import (
	"math"
	"sort"
	"strings"
)

// scope resolves field names during one record's evaluation. Each model
// level (the document, a segment's model) has its own scope whose derived
// fields are computed lazily and cached; names not found fall through to
// the parent. Values live in a small slice (most scopes hold a handful of
// fields, and a linear scan beats hashing there) that turns into a map
// when it grows.
type scope struct {
	depth  int  // DefineFunction call depth, bounded against recursion
	calls  *int // DefineFunction calls left for this record, shared by all scopes
	parent *scope
	defs   map[string]*derivedField
	small  []binding
	big    map[string]value
}

type binding struct {
	name string
	v    value
}

const smallScope = 16

func newScope(parent *scope, defs map[string]*derivedField) *scope {
	s := &scope{parent: parent, defs: defs}
	if parent != nil {
		s.calls = parent.calls
	} else {
		n := maxCalls
		s.calls = &n
	}
	return s
}

func (s *scope) lookup(name string) (value, bool) {
	if s.big != nil {
		v, ok := s.big[name]
		return v, ok
	}
	for i := range s.small {
		if s.small[i].name == name {
			return s.small[i].v, true
		}
	}
	return missing, false
}

func (s *scope) get(name string) value {
	for c := s; c != nil; c = c.parent {
		if v, ok := c.lookup(name); ok {
			return v
		}
		if d := c.defs[name]; d != nil {
			// Record a placeholder first so a field that refers to itself
			// evaluates to missing instead of recursing forever.
			c.set(name, missing)
			v := d.eval(c)
			c.set(name, v)
			return v
		}
	}
	return missing
}

// fast is get with a slot hint: the position the field has in the top
// model's scope, worked out at load. When the innermost scope holds the
// name at that position (always, for trees evaluated in the top scope) it
// skips the search; otherwise it is get.
func (s *scope) fast(name string, slot int) value {
	if slot >= 0 && slot < len(s.small) && s.small[slot].name == name {
		return s.small[slot].v
	}
	return s.get(name)
}

func (s *scope) set(name string, v value) {
	if s.big != nil {
		s.big[name] = v
		return
	}
	for i := range s.small {
		if s.small[i].name == name {
			s.small[i].v = v
			return
		}
	}
	if len(s.small) < smallScope {
		if s.small == nil {
			s.small = make([]binding, 0, 8)
		}
		s.small = append(s.small, binding{name, v})
		return
	}
	s.big = make(map[string]value, 2*smallScope)
	for _, b := range s.small {
		s.big[b.name] = b.v
	}
	s.big[name] = v
	s.small = nil
}

// maxCallDepth bounds nested DefineFunction calls, so a function that
// calls itself evaluates to missing instead of exhausting the stack.
const maxCallDepth = 64

// maxCalls bounds DefineFunction calls per record: a function that calls
// itself twice would otherwise take 2^maxCallDepth steps.
const maxCalls = 100000

// expr is a compiled PMML expression.
type expr interface {
	eval(s *scope) value
}

// derivedField is a named expression with a result type.
type derivedField struct {
	name string
	typ  dataType
	cat  bool
	expr expr
}

func (d *derivedField) eval(s *scope) value {
	v, ok := cast(d.expr.eval(s), d.typ)
	if !ok {
		return missing
	}
	return v
}

type constExpr struct{ v value }

func (e constExpr) eval(*scope) value { return e.v }

type fieldRef struct {
	field      string
	mapMissing value
}

func (e fieldRef) eval(s *scope) value {
	v := s.get(e.field)
	if !v.ok {
		return e.mapMissing
	}
	return v
}

// normContinuous is a piecewise-linear map through LinearNorm points.
type normContinuous struct {
	field      string
	orig, norm []float64
	outliers   string
	mapMissing value
}

func (e normContinuous) eval(s *scope) value {
	x, ok := s.get(e.field).number()
	if !ok {
		return e.mapMissing
	}
	return numValue(e.forward(x))
}

func (e normContinuous) forward(x float64) float64 {
	o, n := e.orig, e.norm
	k := len(o) - 1
	if x < o[0] || x > o[k] {
		switch e.outliers {
		case "asMissingValues":
			return math.NaN()
		case "asExtremeValues":
			if x < o[0] {
				return n[0]
			}
			return n[k]
		}
	}
	i := 0
	switch {
	case x <= o[0]:
		i = 0
	case x >= o[k]:
		i = k - 1
	default:
		i = sort.SearchFloat64s(o, x) - 1
		if i < 0 {
			i = 0
		}
	}
	return n[i] + (x-o[i])*(n[i+1]-n[i])/(o[i+1]-o[i])
}

// inverse maps a normalised value back, for NeuralOutputs.
func (e normContinuous) inverse(y float64) float64 {
	o, n := e.orig, e.norm
	k := len(n) - 1
	i := 0
	for i < k-1 && !((y >= n[i] && y <= n[i+1]) || (y <= n[i] && y >= n[i+1])) {
		i++
	}
	return o[i] + (y-n[i])*(o[i+1]-o[i])/(n[i+1]-n[i])
}

type normDiscrete struct {
	field      string
	val        constant
	mapMissing value
}

func (e normDiscrete) eval(s *scope) value {
	v := s.get(e.field)
	if !v.ok {
		return e.mapMissing
	}
	if v.equalTo(e.val.s, e.val.f, e.val.fok) {
		return numValue(1)
	}
	return numValue(0)
}

type interval struct {
	lo, hi         float64
	loOpen, hiOpen bool
}

func (iv interval) contains(x float64) bool {
	if x < iv.lo || (iv.loOpen && x == iv.lo) {
		return false
	}
	if x > iv.hi || (iv.hiOpen && x == iv.hi) {
		return false
	}
	return true
}

type discretize struct {
	field      string
	bins       []interval
	values     []value
	mapMissing value
	def        value
}

func (e discretize) eval(s *scope) value {
	x, ok := s.get(e.field).number()
	if !ok {
		return e.mapMissing
	}
	for i, b := range e.bins {
		if b.contains(x) {
			return e.values[i]
		}
	}
	return e.def
}

type mapValues struct {
	fields     []string
	columns    []string // column name per field
	rows       []map[string]string
	out        string
	typ        dataType
	mapMissing value
	def        value
}

func (e mapValues) eval(s *scope) value {
	in := make([]value, len(e.fields))
	for i, f := range e.fields {
		in[i] = s.get(f)
		if !in[i].ok {
			return e.mapMissing
		}
	}
rows:
	for _, r := range e.rows {
		for i, c := range e.columns {
			cell, ok := r[c]
			if !ok {
				continue rows
			}
			k := newConstant(cell)
			if !in[i].equalTo(k.s, k.f, k.fok) {
				continue rows
			}
		}
		out, ok := r[e.out]
		if !ok {
			return missing
		}
		v, _ := cast(strValue(out), e.typ)
		return v
	}
	return e.def
}

// apply calls a built-in or a DefineFunction.
type apply struct {
	fn         string
	args       []expr
	user       *userFunction
	mapMissing value
	def        value
}

type userFunction struct {
	name   string
	params []string
	types  []dataType
	typ    dataType
	body   expr
}

func (e *apply) eval(s *scope) value {
	if e.user != nil {
		if s.depth >= maxCallDepth || *s.calls <= 0 {
			return missing
		}
		*s.calls--
		inner := &scope{depth: s.depth + 1, calls: s.calls}
		for i, a := range e.args {
			v := a.eval(s)
			if i < len(e.user.types) {
				v, _ = cast(v, e.user.types[i])
			}
			inner.set(e.user.params[i], v)
		}
		v, ok := cast(e.user.body.eval(inner), e.user.typ)
		if !ok || !v.ok {
			return e.fallback(v)
		}
		return v
	}
	switch e.fn {
	case "if":
		c := e.args[0].eval(s)
		if !c.ok {
			return e.mapMissing
		}
		t, _ := c.number()
		if t != 0 {
			return e.args[1].eval(s)
		}
		if len(e.args) > 2 {
			return e.args[2].eval(s)
		}
		return missing
	case "and", "or":
		// Three-valued logic, as the predicates use.
		unknown := false
		for _, a := range e.args {
			v := a.eval(s)
			f, ok := v.number()
			if !ok {
				unknown = true
				continue
			}
			if e.fn == "and" && f == 0 {
				return boolValue(false)
			}
			if e.fn == "or" && f != 0 {
				return boolValue(true)
			}
		}
		if unknown {
			return e.mapMissing
		}
		return boolValue(e.fn == "and")
	}
	vals := make([]value, len(e.args))
	anyMissing := false
	for i, a := range e.args {
		vals[i] = a.eval(s)
		if !vals[i].ok {
			anyMissing = true
		}
	}
	switch e.fn {
	case "isMissing":
		return boolValue(!vals[0].ok)
	case "isNotMissing":
		return boolValue(vals[0].ok)
	case "isValid":
		return boolValue(vals[0].ok)
	case "isNotValid":
		return boolValue(!vals[0].ok)
	case "min", "max", "sum", "avg", "median", "product":
		// Aggregates skip missing arguments.
	default:
		if anyMissing {
			return e.mapMissing
		}
	}
	v := callBuiltin(e.fn, vals)
	if !v.ok {
		return e.fallback(v)
	}
	return v
}

func (e *apply) fallback(v value) value {
	if e.def.ok {
		return e.def
	}
	return v
}

func nums(vals []value) ([]float64, bool) {
	out := make([]float64, 0, len(vals))
	for _, v := range vals {
		if !v.ok {
			continue
		}
		f, ok := v.number()
		if !ok {
			return nil, false
		}
		out = append(out, f)
	}
	return out, true
}

// builtinArity gives the accepted argument counts (min, max; max -1 for
// any) of the built-in functions Ferry implements.
var builtinArity = map[string][2]int{
	"+": {2, 2}, "-": {2, 2}, "*": {2, 2}, "/": {2, 2},
	"min": {1, -1}, "max": {1, -1}, "sum": {1, -1}, "avg": {1, -1}, "median": {1, -1}, "product": {1, -1},
	"log10": {1, 1}, "ln": {1, 1}, "sqrt": {1, 1}, "abs": {1, 1}, "exp": {1, 1}, "pow": {2, 2},
	"threshold": {2, 2}, "floor": {1, 1}, "ceil": {1, 1}, "round": {1, 1}, "modulo": {2, 2},
	"isMissing": {1, 1}, "isNotMissing": {1, 1}, "isValid": {1, 1}, "isNotValid": {1, 1},
	"equal": {2, 2}, "notEqual": {2, 2}, "lessThan": {2, 2}, "lessOrEqual": {2, 2},
	"greaterThan": {2, 2}, "greaterOrEqual": {2, 2},
	"and": {1, -1}, "or": {1, -1}, "not": {1, 1}, "isIn": {2, -1}, "isNotIn": {2, -1}, "if": {2, 3},
	"uppercase": {1, 1}, "lowercase": {1, 1}, "substring": {3, 3}, "trimBlanks": {1, 1},
	"concat": {1, -1}, "stringLength": {1, 1},
	"sin": {1, 1}, "cos": {1, 1}, "tan": {1, 1}, "asin": {1, 1}, "acos": {1, 1}, "atan": {1, 1},
	"sinh": {1, 1}, "cosh": {1, 1}, "tanh": {1, 1}, "atan2": {2, 2}, "expm1": {1, 1}, "ln1p": {1, 1},
	"hypot": {2, 2}, "rint": {1, 1}, "x-sin": {1, 1}, "x-cos": {1, 1}, "x-tan": {1, 1}, "x-atan": {1, 1},
	"x-tanh": {1, 1}, "x-exp": {1, 1}, "x-log": {1, 1}, "x-sqrt": {1, 1}, "x-abs": {1, 1},
}

var unaryMath = map[string]func(float64) float64{
	"log10": math.Log10, "ln": math.Log, "sqrt": math.Sqrt, "abs": math.Abs, "exp": math.Exp,
	"floor": math.Floor, "ceil": math.Ceil, "round": func(x float64) float64 { return math.Floor(x + 0.5) },
	"sin": math.Sin, "cos": math.Cos, "tan": math.Tan, "asin": math.Asin, "acos": math.Acos, "atan": math.Atan,
	"sinh": math.Sinh, "cosh": math.Cosh, "tanh": math.Tanh, "expm1": math.Expm1, "ln1p": math.Log1p,
	"rint":  math.RoundToEven,
	"x-sin": math.Sin, "x-cos": math.Cos, "x-tan": math.Tan, "x-atan": math.Atan, "x-tanh": math.Tanh,
	"x-exp": math.Exp, "x-log": math.Log, "x-sqrt": math.Sqrt, "x-abs": math.Abs,
}

func callBuiltin(fn string, vals []value) value {
	if f, ok := unaryMath[fn]; ok {
		x, ok := vals[0].number()
		if !ok {
			return missing
		}
		return numValue(f(x))
	}
	switch fn {
	case "+", "-", "*", "/", "pow", "threshold", "modulo", "atan2", "hypot":
		a, ok1 := vals[0].number()
		b, ok2 := vals[1].number()
		if !ok1 || !ok2 {
			return missing
		}
		var r float64
		switch fn {
		case "+":
			r = a + b
		case "-":
			r = a - b
		case "*":
			r = a * b
		case "/":
			if b == 0 {
				return missing
			}
			r = a / b
		case "pow":
			r = math.Pow(a, b)
		case "threshold":
			if a > b {
				r = 1
			}
		case "modulo":
			if b == 0 {
				return missing
			}
			r = a - math.Floor(a/b)*b
		case "atan2":
			r = math.Atan2(a, b)
		case "hypot":
			r = math.Hypot(a, b)
		}
		if math.IsInf(r, 0) {
			return missing
		}
		return numValue(r)
	case "min", "max", "sum", "avg", "median", "product":
		xs, ok := nums(vals)
		if !ok || len(xs) == 0 {
			return missing
		}
		return numValue(aggregate(fn, xs))
	case "equal", "notEqual":
		eq := equalValues(vals[0], vals[1])
		return boolValue(eq == (fn == "equal"))
	case "lessThan", "lessOrEqual", "greaterThan", "greaterOrEqual":
		b := vals[1]
		c, ok := vals[0].compareTo(b.String(), b.num, b.isNum || isNumeric(b))
		if !ok {
			return missing
		}
		switch fn {
		case "lessThan":
			return boolValue(c < 0)
		case "lessOrEqual":
			return boolValue(c <= 0)
		case "greaterThan":
			return boolValue(c > 0)
		}
		return boolValue(c >= 0)
	case "not":
		f, ok := vals[0].number()
		if !ok {
			return missing
		}
		return boolValue(f == 0)
	case "isIn", "isNotIn":
		in := false
		for _, v := range vals[1:] {
			if equalValues(vals[0], v) {
				in = true
				break
			}
		}
		return boolValue(in == (fn == "isIn"))
	case "uppercase":
		return strValue(strings.ToUpper(vals[0].String()))
	case "lowercase":
		return strValue(strings.ToLower(vals[0].String()))
	case "trimBlanks":
		return strValue(strings.TrimSpace(vals[0].String()))
	case "stringLength":
		return numValue(float64(len([]rune(vals[0].String()))))
	case "concat":
		var b strings.Builder
		for _, v := range vals {
			b.WriteString(v.String())
		}
		return strValue(b.String())
	case "substring":
		r := []rune(vals[0].String())
		p, ok1 := vals[1].number()
		l, ok2 := vals[2].number()
		if !ok1 || !ok2 || p < 1 || l < 0 {
			return missing
		}
		start := int(p) - 1
		if start > len(r) {
			start = len(r)
		}
		end := start + int(l)
		if end > len(r) {
			end = len(r)
		}
		return strValue(string(r[start:end]))
	}
	return missing
}

func isNumeric(v value) bool {
	_, ok := v.number()
	return ok
}

func equalValues(a, b value) bool {
	if a.isNum || b.isNum {
		x, ok1 := a.number()
		y, ok2 := b.number()
		if ok1 && ok2 {
			return x == y
		}
	}
	return a.String() == b.String()
}

func aggregate(fn string, xs []float64) float64 {
	switch fn {
	case "min":
		m := xs[0]
		for _, x := range xs[1:] {
			m = math.Min(m, x)
		}
		return m
	case "max":
		m := xs[0]
		for _, x := range xs[1:] {
			m = math.Max(m, x)
		}
		return m
	case "sum", "avg":
		t := 0.0
		for _, x := range xs {
			t += x
		}
		if fn == "avg" {
			return t / float64(len(xs))
		}
		return t
	case "product":
		t := 1.0
		for _, x := range xs {
			t *= x
		}
		return t
	}
	return median(xs)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
