package pmml

import (
	"sort"
	"strconv"
)

// outputField is one OutputField of a model's Output element.
type outputField struct {
	name    string
	feature string
	value   string // the category for probability/confidence
	rank    int
	str     bool // the output is text (BYTES in V2)
	typ     dataType
	typed   bool
	expr    expr
}

func sortedKeys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (c *compiler) output(n *node, m *model) ([]*outputField, error) {
	if err := n.only("OutputField"); err != nil {
		return nil, err
	}
	var out []*outputField
	for _, f := range n.children("OutputField") {
		name, err := f.required("name")
		if err != nil {
			return nil, err
		}
		o := &outputField{name: name, feature: f.attrOr("feature", "predictedValue"), value: f.attr("value")}
		if f.has("segmentId") {
			return nil, unsupported(f, "attribute segmentId")
		}
		if f.has("dataType") {
			t, ok := parseDataType(f.attr("dataType"))
			if !ok {
				return nil, unsupported(f, "dataType "+f.attr("dataType"))
			}
			o.typ, o.typed = t, true
		}
		if r := f.attr("rank"); r != "" {
			k, err := strconv.Atoi(r)
			if err != nil || k < 1 {
				return nil, errAt(f, "rank %q", r)
			}
			o.rank = k
		} else {
			o.rank = 1
		}
		switch o.feature {
		case "predictedValue":
			if !o.typed {
				if m.tfield != nil {
					o.typ = m.tfield.typ
				} else if m.classification() {
					o.typ = typeString
				} else {
					o.typ = typeDouble
				}
			}
		case "predictedDisplayValue", "entityId", "reasonCode":
			if !o.typed {
				o.typ = typeString
			}
		case "probability", "confidence":
			if !o.typed {
				o.typ = typeDouble
			}
		case "transformedValue":
			var body *node
			for _, k := range f.kids {
				if k.name != "Extension" && k.name != "Decisions" {
					body = k
				}
			}
			if body == nil {
				return nil, errAt(f, "transformedValue needs an expression")
			}
			e, err := c.expr(body)
			if err != nil {
				return nil, err
			}
			o.expr = e
			if !o.typed {
				o.typ = typeDouble
			}
		default:
			return nil, unsupported(f, "feature "+o.feature)
		}
		if o.feature != "transformedValue" {
			if err := f.only(); err != nil {
				return nil, err
			}
		}
		o.str = o.typ == typeString
		out = append(out, o)
	}
	return out, nil
}

// outputs computes m's Output fields for result r in scope s, adding each
// to s so later fields (and later segments of a model chain) can read it.
func (m *model) computeOutputs(r result, s *scope, dst []value) []value {
	for _, o := range m.outputs {
		v := o.compute(m, r, s)
		if o.typed || o.feature == "predictedValue" {
			if cv, ok := cast(v, o.typ); ok {
				v = cv
			}
		}
		s.set(o.name, v)
		dst = append(dst, v)
	}
	return dst
}

func (o *outputField) compute(m *model, r result, s *scope) value {
	switch o.feature {
	case "predictedValue":
		return r.val
	case "predictedDisplayValue":
		if !r.val.ok {
			return missing
		}
		if m.tgt != nil {
			if d, ok := m.tgt.display[r.val.String()]; ok {
				return strValue(d)
			}
		}
		return strValue(r.val.String())
	case "probability", "confidence":
		src := r.probs
		if o.feature == "confidence" && r.conf != nil {
			src = r.conf
		}
		if src == nil {
			return missing
		}
		cat := o.value
		if cat == "" {
			if !r.val.ok {
				return missing
			}
			cat = r.val.String()
		}
		p, ok := src[cat]
		if !ok {
			if len(src) > 0 {
				return numValue(0)
			}
			return missing
		}
		return numValue(p)
	case "entityId":
		if r.entity == "" {
			return missing
		}
		return strValue(r.entity)
	case "reasonCode":
		if o.rank-1 < len(r.reason) {
			return strValue(r.reason[o.rank-1])
		}
		return missing
	case "transformedValue":
		return o.expr.eval(s)
	}
	return missing
}
