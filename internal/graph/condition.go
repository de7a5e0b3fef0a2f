package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Condition is a compiled GJSON path, the language KServe's router uses for
// Switch conditions (it calls gjson.GetBytes(input, condition).Exists()).
// A condition matches a JSON document when the path selects something in it.
//
// The subset Ferry implements is what graph conditions use: dotted keys
// (with \-escapes and the * and ? wildcards), array indexes, # (the length,
// or #.key to collect a key of every element), queries #(path op value) for
// the first matching element and #(…)# for all of them (ops ==, =, !=, <,
// <=, >, >=, % and !% with * and ? patterns, and ~true, ~false, ~null, ~*),
// nested queries, @this and multipath arrays [a,b]. Modifiers other than
// @this, object multipaths {…} and literals are refused when the graph is
// compiled, so a condition never silently means something else.
type Condition struct {
	src  string
	path []segment
}

// String returns the condition as written.
func (c *Condition) String() string { return c.src }

type segKind int

const (
	segKey      segKind = iota // object key (maybe wildcard) or array index
	segCount                   // # : array length, or with rest: collect
	segQuery                   // #(...) first match, or #(...)# all
	segThis                    // @this
	segMultiArr                // [p1,p2]
)

type segment struct {
	kind     segKind
	key      string
	wildcard bool
	// query
	qpath []segment
	qop   string
	qval  string
	qall  bool
	// multipath
	multi [][]segment
}

// maxConditionDepth bounds nesting (queries and multipaths), so that a
// hostile condition cannot exhaust the stack.
const maxConditionDepth = 32

// ParseCondition compiles a GJSON path.
func ParseCondition(src string) (*Condition, error) {
	segs, err := parsePath(src, 0)
	if err != nil {
		return nil, fmt.Errorf("condition %q: %w", src, err)
	}
	return &Condition{src: src, path: segs}, nil
}

// Match reports whether the path selects anything in the JSON document
// doc; a document that is not JSON matches nothing.
func (c *Condition) Match(doc []byte) bool {
	v, ok := decodeJSON(doc)
	if !ok {
		return false
	}
	_, found := eval(c.path, v)
	return found
}

func decodeJSON(doc []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false // trailing data: not one JSON value
	}
	return v, true
}

// splitTop cuts s at sep bytes that are outside brackets, parentheses and
// quotes, honouring backslash escapes.
func splitTop(s string, seps string) ([]string, error) {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
				}
			}
			if j >= len(s) {
				return nil, errors.New("unterminated string")
			}
			i = j
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced %q", c)
			}
		case depth == 0 && strings.IndexByte(seps, c) >= 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if depth != 0 {
		return nil, errors.New("unbalanced brackets")
	}
	return append(parts, s[start:]), nil
}

func parsePath(src string, depth int) ([]segment, error) {
	if depth > maxConditionDepth {
		return nil, errors.New("nested too deeply")
	}
	src = strings.TrimSpace(src)
	if src == "" {
		return nil, errors.New("empty path")
	}
	comps, err := splitTop(src, ".|")
	if err != nil {
		return nil, err
	}
	segs := make([]segment, 0, len(comps))
	for _, c := range comps {
		switch {
		case c == "":
			return nil, errors.New("empty path component")
		case c == "@this":
			segs = append(segs, segment{kind: segThis})
		case c[0] == '@':
			return nil, fmt.Errorf("modifier %s is not supported (only @this)", c)
		case c[0] == '{':
			return nil, errors.New("object multipaths {…} are not supported")
		case c[0] == '[':
			if c[len(c)-1] != ']' {
				return nil, fmt.Errorf("malformed multipath %q", c)
			}
			subs, err := splitTop(c[1:len(c)-1], ",")
			if err != nil {
				return nil, err
			}
			seg := segment{kind: segMultiArr}
			for _, s := range subs {
				p, err := parsePath(s, depth+1)
				if err != nil {
					return nil, err
				}
				seg.multi = append(seg.multi, p)
			}
			segs = append(segs, seg)
		case c == "#":
			segs = append(segs, segment{kind: segCount})
		case strings.HasPrefix(c, "#(") || strings.HasPrefix(c, "#["):
			seg, err := parseQuery(c, depth)
			if err != nil {
				return nil, err
			}
			segs = append(segs, seg)
		default:
			key, wild := unescapeKey(c)
			segs = append(segs, segment{kind: segKey, key: key, wildcard: wild})
		}
	}
	return segs, nil
}

// unescapeKey drops backslashes and says whether unescaped * or ? remain.
func unescapeKey(c string) (string, bool) {
	var b strings.Builder
	wild := false
	for i := 0; i < len(c); i++ {
		switch c[i] {
		case '\\':
			if i+1 < len(c) {
				i++
				b.WriteByte(c[i])
			}
		case '*', '?':
			wild = true
			b.WriteByte(c[i])
		default:
			b.WriteByte(c[i])
		}
	}
	return b.String(), wild
}

var queryOps = []string{"==", "!=", "<=", ">=", "!%", "=", "<", ">", "%"}

func parseQuery(c string, depth int) (segment, error) {
	seg := segment{kind: segQuery}
	body := c[2:]
	closer := byte(')')
	if c[1] == '[' {
		closer = ']'
	}
	switch {
	case strings.HasSuffix(body, string(closer)+"#"):
		seg.qall = true
		body = body[:len(body)-2]
	case strings.HasSuffix(body, string(closer)):
		body = body[:len(body)-1]
	default:
		return seg, fmt.Errorf("malformed query %q", c)
	}
	// The operator is the first one outside nested brackets and quotes.
	opAt, nest := -1, 0
	for i := 0; i < len(body) && opAt < 0; i++ {
		switch ch := body[i]; {
		case ch == '\\':
			i++
		case ch == '"':
			for i++; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					i++
				}
			}
		case ch == '(' || ch == '[':
			nest++
		case ch == ')' || ch == ']':
			nest--
		case nest == 0 && strings.IndexByte("!=<>%", ch) >= 0:
			opAt = i
		}
	}
	path := body
	if opAt >= 0 {
		path = body[:opAt]
		rest := body[opAt:]
		for _, op := range queryOps {
			if strings.HasPrefix(rest, op) {
				seg.qop = op
				if op == "==" {
					seg.qop = "="
				}
				seg.qval = strings.TrimSpace(rest[len(op):])
				break
			}
		}
		if seg.qop == "" {
			return seg, fmt.Errorf("malformed query %q", c)
		}
		if v := seg.qval; len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			s, err := strconv.Unquote(v)
			if err != nil {
				return seg, fmt.Errorf("query %q: bad string %s", c, v)
			}
			seg.qval = s
		}
	}
	if path = strings.TrimSpace(path); path != "" {
		p, err := parsePath(path, depth+1)
		if err != nil {
			return seg, err
		}
		seg.qpath = p
	}
	return seg, nil
}

// eval applies segs to v and returns what they select.
func eval(segs []segment, v any) (any, bool) {
	for i, s := range segs {
		switch s.kind {
		case segThis:
		case segKey:
			switch t := v.(type) {
			case map[string]any:
				if !s.wildcard {
					nv, ok := t[s.key]
					if !ok {
						return nil, false
					}
					v = nv
					continue
				}
				keys := make([]string, 0, len(t))
				for k := range t {
					keys = append(keys, k)
				}
				slices.Sort(keys) // decoded objects lost their order: pick deterministically
				found := false
				for _, k := range keys {
					if globMatch(k, s.key) {
						v, found = t[k], true
						break
					}
				}
				if !found {
					return nil, false
				}
			case []any:
				n, err := strconv.Atoi(s.key)
				if err != nil || n < 0 || n >= len(t) {
					return nil, false
				}
				v = t[n]
			default:
				return nil, false
			}
		case segCount:
			arr, ok := v.([]any)
			if !ok {
				return nil, false
			}
			if i == len(segs)-1 {
				return json.Number(strconv.Itoa(len(arr))), true
			}
			out := make([]any, 0, len(arr))
			for _, e := range arr {
				if r, ok := eval(segs[i+1:], e); ok {
					out = append(out, r)
				}
			}
			return out, true
		case segQuery:
			arr, ok := v.([]any)
			if !ok {
				return nil, false
			}
			var all []any
			matched := false
			for _, e := range arr {
				if !queryMatches(s, e) {
					continue
				}
				if !s.qall {
					v, matched = e, true
					break
				}
				if r, ok := eval(segs[i+1:], e); ok {
					all = append(all, r)
				}
			}
			if s.qall {
				if all == nil {
					all = []any{}
				}
				return all, true // gjson answers [] when nothing matches: it exists
			}
			if !matched {
				return nil, false
			}
		case segMultiArr:
			out := []any{}
			for _, p := range s.multi {
				if r, ok := eval(p, v); ok {
					out = append(out, r)
				}
			}
			v = out
		}
	}
	return v, true
}

func queryMatches(s segment, e any) bool {
	val, ok := e, true
	if len(s.qpath) > 0 {
		switch e.(type) {
		case map[string]any, []any:
			val, ok = eval(s.qpath, e)
		default:
			return false
		}
	}
	op, want := s.qop, s.qval
	if strings.HasPrefix(want, "~") && op != "" {
		// ~true, ~false, ~null, ~*: compare the value's truthiness.
		var ish bool
		switch want[1:] {
		case "*":
			ish = ok
		case "null":
			ish = ok && val == nil
		case "true":
			ish = ok && truthy(val, true)
		case "false":
			ish = !ok || truthy(val, false)
		default:
			return false
		}
		val, ok, want = ish, true, "true"
	}
	if !ok {
		return false
	}
	if op == "" {
		return true
	}
	switch t := val.(type) {
	case string:
		switch op {
		case "=":
			return t == want
		case "!=":
			return t != want
		case "<":
			return t < want
		case "<=":
			return t <= want
		case ">":
			return t > want
		case ">=":
			return t >= want
		case "%":
			return globMatch(t, want)
		case "!%":
			return !globMatch(t, want)
		}
	case json.Number:
		a, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return false
		}
		b, _ := strconv.ParseFloat(want, 64)
		switch op {
		case "=":
			return a == b
		case "!=":
			return a != b
		case "<":
			return a < b
		case "<=":
			return a <= b
		case ">":
			return a > b
		case ">=":
			return a >= b
		}
	case bool:
		w := want == "true"
		switch op {
		case "=":
			return t == w && (want == "true" || want == "false")
		case "!=":
			return want != strconv.FormatBool(t)
		case "<":
			return !t && want == "true"
		case "<=":
			return !t
		case ">":
			return t && want == "false"
		case ">=":
			return t
		}
	}
	return false
}

// truthy reports whether v reads as the boolean want, as gjson's ~ does
// ("1", "true", non-zero numbers are true; null, "0", "false", 0 false).
func truthy(v any, want bool) bool {
	switch t := v.(type) {
	case nil:
		return !want
	case bool:
		return t == want
	case string:
		b, err := strconv.ParseBool(strings.ToLower(t))
		return err == nil && b == want
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		return err == nil && (f != 0) == want
	}
	return false
}

// globMatch matches s against a pattern of * (any run) and ? (one byte), in
// time linear in len(s)·stars (no exponential backtracking).
func globMatch(s, pattern string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && (pattern[pi] == '?' || pattern[pi] == s[si]):
			si++
			pi++
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}
