package pmml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	fr "github.com/ferryserve/ferry/internal/runtime"
)

// maxDepth bounds element nesting so a hostile document cannot make the
// recursive compilers below exhaust the stack.
const maxDepth = 2000

// node is one XML element of the document, namespace stripped, with the
// line it starts on so load errors can point at it.
type node struct {
	name  string
	attrs map[string]string
	kids  []*node
	text  string
	line  int
}

// parseTree reads a whole PMML document into a node tree.
func parseTree(data []byte) (*node, error) {
	lines := lineStarts(data)
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	dec.CharsetReader = charsetReader
	var stack []*node
	var root *node
	// Field names repeat across thousands of predicates; sharing one copy
	// saves memory and lets equal names compare by pointer when scoring.
	interned := map[string]string{}
	intern := func(s string) string {
		if len(s) > 64 {
			return s
		}
		if v, ok := interned[s]; ok {
			return v
		}
		interned[s] = s
		return s
	}
	var text strings.Builder
	for {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: xml: %w", fr.ErrCorruptModel, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("%w: elements nested deeper than %d", fr.ErrCorruptModel, maxDepth)
			}
			n := &node{name: t.Name.Local, line: lineOf(lines, skipSpace(data, off))}
			if len(t.Attr) > 0 {
				n.attrs = make(map[string]string, len(t.Attr))
				for _, a := range t.Attr {
					if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" || a.Name.Space == "xsi" || strings.HasPrefix(a.Name.Space, "http://www.w3.org/") {
						continue
					}
					n.attrs[intern(a.Name.Local)] = intern(a.Value)
				}
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("%w: more than one root element (line %d)", fr.ErrCorruptModel, n.line)
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
			text.Reset()
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, fmt.Errorf("%w: unbalanced end element", fr.ErrCorruptModel)
			}
			n := stack[len(stack)-1]
			if len(n.kids) == 0 {
				n.text = text.String()
			}
			text.Reset()
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && len(stack[len(stack)-1].kids) == 0 {
				text.Write(t)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: no root element", fr.ErrCorruptModel)
	}
	if len(stack) != 0 {
		return nil, fmt.Errorf("%w: document ends inside <%s>", fr.ErrCorruptModel, stack[len(stack)-1].name)
	}
	if root.name != "PMML" {
		return nil, fmt.Errorf("%w: root element is <%s>, want <PMML>", fr.ErrCorruptModel, root.name)
	}
	return root, nil
}

func lineStarts(data []byte) []int64 {
	starts := []int64{0}
	for i, b := range data {
		if b == '\n' {
			starts = append(starts, int64(i+1))
		}
	}
	return starts
}

// skipSpace moves off past the whitespace the decoder reports before a start
// token, so the line is the one holding the '<'.
func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) && data[off] != '<' {
		off++
	}
	return off
}

// lineOf maps a byte offset to a 1-based line.
func lineOf(starts []int64, off int64) int {
	i := sort.Search(len(starts), func(i int) bool { return starts[i] > off })
	return i
}

// errAt builds a load error that names an element and its line.
func errAt(n *node, format string, args ...any) error {
	return fmt.Errorf("%w: <%s> at line %d: %s", fr.ErrCorruptModel, n.name, n.line, fmt.Sprintf(format, args...))
}

// unsupported reports an element Ferry does not evaluate.
func unsupported(n *node, what string) error {
	if what == "" {
		return fmt.Errorf("%w: element <%s> at line %d is not supported", fr.ErrUnsupported, n.name, n.line)
	}
	return fmt.Errorf("%w: element <%s> at line %d: %s is not supported", fr.ErrUnsupported, n.name, n.line, what)
}

func (n *node) attr(name string) string { return n.attrs[name] }

func (n *node) has(name string) bool {
	_, ok := n.attrs[name]
	return ok
}

func (n *node) attrOr(name, def string) string {
	if v, ok := n.attrs[name]; ok {
		return v
	}
	return def
}

// float reads a required numeric attribute.
func (n *node) float(name string) (float64, error) {
	s, ok := n.attrs[name]
	if !ok {
		return 0, errAt(n, "missing attribute %q", name)
	}
	f, err := parseNumber(s)
	if err != nil {
		return 0, errAt(n, "attribute %s=%q is not a number", name, s)
	}
	return f, nil
}

// floatOr reads an optional numeric attribute.
func (n *node) floatOr(name string, def float64) (float64, error) {
	if _, ok := n.attrs[name]; !ok {
		return def, nil
	}
	return n.float(name)
}

func (n *node) required(name string) (string, error) {
	s, ok := n.attrs[name]
	if !ok {
		return "", errAt(n, "missing attribute %q", name)
	}
	return s, nil
}

func parseNumber(s string) (float64, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "INF", "Infinity", "+INF":
		s = "+Inf"
	case "-INF", "-Infinity":
		s = "-Inf"
	}
	return strconv.ParseFloat(s, 64)
}

// child returns the first child with the given name, or nil.
func (n *node) child(name string) *node {
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// children returns all children with the given name.
func (n *node) children(name string) []*node {
	var out []*node
	for _, k := range n.kids {
		if k.name == name {
			out = append(out, k)
		}
	}
	return out
}

// only fails on the first child whose name is not in allowed; Extension is
// always allowed and ignored.
func (n *node) only(allowed ...string) error {
	for _, k := range n.kids {
		if k.name == "Extension" {
			continue
		}
		ok := false
		for _, a := range allowed {
			if k.name == a {
				ok = true
				break
			}
		}
		if !ok {
			return unsupported(k, "inside <"+n.name+">")
		}
	}
	return nil
}

// charsetReader lets documents declare the single-byte encodings older
// producers write; UTF-8 needs no reader.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "us-ascii", "ascii", "windows-1252", "cp1252":
		// Windows-1252 differs from Latin-1 only in 0x80-0x9F, which are
		// control characters in Latin-1 and never part of PMML markup.
		raw, err := io.ReadAll(in)
		if err != nil {
			return nil, err
		}
		out := make([]rune, len(raw))
		for i, b := range raw {
			out[i] = rune(b)
		}
		return strings.NewReader(string(out)), nil
	}
	return nil, fmt.Errorf("unsupported encoding %q (use UTF-8)", label)
}
