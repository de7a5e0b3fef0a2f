package pmml

import (
	"strings"
)

// tri is a three-valued truth: PMML predicates are unknown when an input
// they need is missing.
type tri uint8

const (
	triFalse tri = iota
	triTrue
	triUnknown
)

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

type predicate interface {
	test(s *scope) tri
}

type truePred struct{}

func (truePred) test(*scope) tri { return triTrue }

type falsePred struct{}

func (falsePred) test(*scope) tri { return triFalse }

type simplePred struct {
	field string
	slot  int
	op    string
	val   constant
}

func (p simplePred) test(s *scope) tri {
	v := s.fast(p.field, p.slot)
	switch p.op {
	case "isMissing":
		return triOf(!v.ok)
	case "isNotMissing":
		return triOf(v.ok)
	}
	if !v.ok {
		return triUnknown
	}
	switch p.op {
	case "equal":
		return triOf(v.equalTo(p.val.s, p.val.f, p.val.fok))
	case "notEqual":
		return triOf(!v.equalTo(p.val.s, p.val.f, p.val.fok))
	}
	c, ok := v.compareTo(p.val.s, p.val.f, p.val.fok)
	if !ok {
		return triUnknown
	}
	switch p.op {
	case "lessThan":
		return triOf(c < 0)
	case "lessOrEqual":
		return triOf(c <= 0)
	case "greaterThan":
		return triOf(c > 0)
	}
	return triOf(c >= 0) // greaterOrEqual
}

type setPred struct {
	field string
	slot  int
	in    bool
	set   []constant
}

func (p setPred) test(s *scope) tri {
	v := s.fast(p.field, p.slot)
	if !v.ok {
		return triUnknown
	}
	found := false
	for _, k := range p.set {
		if v.equalTo(k.s, k.f, k.fok) {
			found = true
			break
		}
	}
	return triOf(found == p.in)
}

type compoundPred struct {
	op   string
	kids []predicate
}

func (p compoundPred) test(s *scope) tri {
	switch p.op {
	case "and":
		r := triTrue
		for _, k := range p.kids {
			switch k.test(s) {
			case triFalse:
				return triFalse
			case triUnknown:
				r = triUnknown
			}
		}
		return r
	case "or":
		r := triFalse
		for _, k := range p.kids {
			switch k.test(s) {
			case triTrue:
				return triTrue
			case triUnknown:
				r = triUnknown
			}
		}
		return r
	case "xor":
		r := false
		for _, k := range p.kids {
			switch k.test(s) {
			case triUnknown:
				return triUnknown
			case triTrue:
				r = !r
			}
		}
		return triOf(r)
	}
	// surrogate: the first operand that is not unknown decides.
	for _, k := range p.kids {
		if t := k.test(s); t != triUnknown {
			return t
		}
	}
	return triUnknown
}

var predicateNames = map[string]bool{
	"SimplePredicate": true, "CompoundPredicate": true, "SimpleSetPredicate": true, "True": true, "False": true,
}

// findPredicate returns the predicate child of n (a Node, Segment or
// Attribute), or nil.
func findPredicate(n *node) *node {
	for _, k := range n.kids {
		if predicateNames[k.name] {
			return k
		}
	}
	return nil
}

func (c *compiler) predicate(n *node) (predicate, error) {
	switch n.name {
	case "True":
		return truePred{}, nil
	case "False":
		return falsePred{}, nil
	case "SimplePredicate":
		f, err := n.required("field")
		if err != nil {
			return nil, err
		}
		op, err := n.required("operator")
		if err != nil {
			return nil, err
		}
		switch op {
		case "isMissing", "isNotMissing":
			return simplePred{field: f, slot: c.slot(f), op: op}, nil
		case "equal", "notEqual", "lessThan", "lessOrEqual", "greaterThan", "greaterOrEqual":
		default:
			return nil, errAt(n, "unknown operator %q", op)
		}
		v, err := n.required("value")
		if err != nil {
			return nil, err
		}
		k := newConstant(v)
		if df := c.fields[f]; df != nil && df.typ == typeFloat && k.fok {
			// Float fields compare in single precision, as the
			// producers (XGBoost) of float-typed documents do.
			k.f = float64(float32(k.f))
		}
		return simplePred{field: f, slot: c.slot(f), op: op, val: k}, nil
	case "SimpleSetPredicate":
		f, err := n.required("field")
		if err != nil {
			return nil, err
		}
		op, err := n.required("booleanOperator")
		if err != nil {
			return nil, err
		}
		if op != "isIn" && op != "isNotIn" {
			return nil, errAt(n, "unknown booleanOperator %q", op)
		}
		arr := n.child("Array")
		if arr == nil {
			return nil, errAt(n, "missing <Array>")
		}
		items, err := parseArray(arr)
		if err != nil {
			return nil, err
		}
		p := setPred{field: f, slot: c.slot(f), in: op == "isIn"}
		for _, it := range items {
			p.set = append(p.set, newConstant(it))
		}
		return p, nil
	case "CompoundPredicate":
		op, err := n.required("booleanOperator")
		if err != nil {
			return nil, err
		}
		switch op {
		case "and", "or", "xor", "surrogate":
		default:
			return nil, errAt(n, "unknown booleanOperator %q", op)
		}
		p := compoundPred{op: op}
		for _, k := range n.kids {
			if k.name == "Extension" {
				continue
			}
			if !predicateNames[k.name] {
				return nil, unsupported(k, "inside <CompoundPredicate>")
			}
			kp, err := c.predicate(k)
			if err != nil {
				return nil, err
			}
			p.kids = append(p.kids, kp)
		}
		if len(p.kids) < 2 {
			return nil, errAt(n, "needs at least two predicates")
		}
		return p, nil
	}
	return nil, unsupported(n, "as a predicate")
}

// parseArray splits a PMML Array's text: whitespace-separated, with
// double-quoted items that may hold spaces and \" escapes.
func parseArray(n *node) ([]string, error) {
	var out []string
	s := n.text
	for i := 0; i < len(s); {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			i++
			continue
		}
		if c == '"' {
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				if s[i] == '\\' && i+1 < len(s) && s[i+1] == '"' {
					b.WriteByte('"')
					i += 2
					continue
				}
				if s[i] == '"' {
					closed = true
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			if !closed {
				return nil, errAt(n, "unterminated quoted item")
			}
			out = append(out, b.String())
			continue
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '\n' && s[j] != '\r' {
			j++
		}
		out = append(out, s[i:j])
		i = j
	}
	if nstr, ok := n.attrs["n"]; ok {
		if k := newConstant(nstr); !k.fok || int(k.f) != len(out) {
			return nil, errAt(n, "n=%q but the array holds %d items", nstr, len(out))
		}
	}
	return out, nil
}
