package detect

import (
	"strconv"
	"unsafe"
)

// fastV1Rows parses the common logger body {"instances": [[x, ...], ...]}
// (or instances of single numbers) in one pass, into one backing array.
// It returns ok=false for anything else, including valid JSON it does not
// handle (other keys, nulls, escapes), which then takes the general path;
// it never accepts what encoding/json would refuse.
func fastV1Rows(b []byte) (rows [][]float64, ok bool) {
	p := &scan{b: b}
	if !p.lit('{') || !p.lit('"') || !p.word("instances\"") || !p.lit(':') || !p.lit('[') {
		return nil, false
	}
	var flat []float64
	var ends []int
	width := -1
	if p.peek() == ']' {
		return nil, false // no instances: the general path words the error
	}
	for {
		if p.peek() == '[' {
			p.i++
			n := 0
			for {
				v, ok := p.number()
				if !ok {
					return nil, false
				}
				flat = append(flat, v)
				n++
				if p.lit(',') {
					continue
				}
				if !p.lit(']') {
					return nil, false
				}
				break
			}
			if width >= 0 && n != width {
				return nil, false
			}
			width = n
		} else {
			v, ok := p.number()
			if !ok || width > 0 {
				return nil, false
			}
			flat = append(flat, v)
			width = 0 // single numbers: one feature each
		}
		ends = append(ends, len(flat))
		if p.lit(',') {
			continue
		}
		if !p.lit(']') || !p.lit('}') {
			return nil, false
		}
		break
	}
	p.space()
	if p.i != len(p.b) {
		return nil, false
	}
	rows = make([][]float64, len(ends))
	start := 0
	for k, e := range ends {
		rows[k] = flat[start:e:e]
		start = e
	}
	return rows, true
}

type scan struct {
	b []byte
	i int
}

func (p *scan) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *scan) peek() byte {
	p.space()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *scan) lit(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

func (p *scan) word(w string) bool {
	if len(p.b)-p.i >= len(w) && string(p.b[p.i:p.i+len(w)]) == w {
		p.i += len(w)
		return true
	}
	return false
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *scan) number() (float64, bool) {
	p.space()
	b, start := p.b, p.i
	i := start
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return 0, false
		}
	}
	tok := b[start:i]
	v, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(tok), len(tok)), 64)
	if err != nil { // out of range: the general path reports it
		return 0, false
	}
	p.i = i
	return v, true
}
