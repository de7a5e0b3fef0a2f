package pmml

import (
	"strings"
)

// dataField is a DataDictionary entry.
type dataField struct {
	name      string
	typ       dataType
	cat       bool // categorical or ordinal
	valid     []string
	validK    []constant
	invalid   map[string]bool
	missing   map[string]bool
	intervals []interval
}

// isValid reports whether a present value is valid for the field.
func (f *dataField) isValid(v value) bool {
	if f.typ.numeric() && !isNumeric(v) {
		return false
	}
	s := v.String()
	if f.invalid[s] {
		return false
	}
	if len(f.validK) > 0 {
		for _, k := range f.validK {
			if v.equalTo(k.s, k.f, k.fok) {
				return true
			}
		}
		return false
	}
	if len(f.intervals) > 0 {
		x, ok := v.number()
		if !ok {
			return false
		}
		for _, iv := range f.intervals {
			if iv.contains(x) {
				return true
			}
		}
		return false
	}
	return true
}

// compiler carries what expressions need to resolve while compiling.
type compiler struct {
	// slots maps the top model's input fields to their positions in its
	// scope (see scope.fast).
	slots   map[string]int
	version float64 // the document's PMML version, e.g. 4.1
	fields  map[string]*dataField
	order   []string
	funcs   map[string]*userFunction
}

func (c *compiler) dataDictionary(n *node) error {
	if err := n.only("DataField", "Taxonomy"); err != nil {
		return err
	}
	if t := n.child("Taxonomy"); t != nil {
		return unsupported(t, "")
	}
	c.fields = map[string]*dataField{}
	for _, d := range n.children("DataField") {
		if err := d.only("Value", "Interval"); err != nil {
			return err
		}
		name, err := d.required("name")
		if err != nil {
			return err
		}
		typ, ok := parseDataType(d.attr("dataType"))
		if !ok {
			return unsupported(d, "dataType "+d.attr("dataType"))
		}
		op := d.attr("optype")
		f := &dataField{name: name, typ: typ, cat: op == "categorical" || op == "ordinal" || (op == "" && typ == typeString)}
		for _, v := range d.children("Value") {
			val, err := v.required("value")
			if err != nil {
				return err
			}
			switch v.attrOr("property", "valid") {
			case "valid":
				f.valid = append(f.valid, val)
			case "invalid":
				if f.invalid == nil {
					f.invalid = map[string]bool{}
				}
				f.invalid[val] = true
			case "missing":
				if f.missing == nil {
					f.missing = map[string]bool{}
				}
				f.missing[val] = true
			default:
				return errAt(v, "unknown property %q", v.attr("property"))
			}
		}
		if !f.cat {
			// Continuous fields list their Values only as display labels;
			// validity comes from the Intervals.
			f.valid = nil
		}
		for _, v := range f.valid {
			f.validK = append(f.validK, newConstant(v))
		}
		for _, iv := range d.children("Interval") {
			x, err := compileInterval(iv)
			if err != nil {
				return err
			}
			f.intervals = append(f.intervals, x)
		}
		if _, dup := c.fields[name]; dup {
			return errAt(d, "duplicate field %q", name)
		}
		c.fields[name] = f
		c.order = append(c.order, name)
	}
	return nil
}

func compileInterval(n *node) (interval, error) {
	lo, err := n.floatOr("leftMargin", negInf)
	if err != nil {
		return interval{}, err
	}
	hi, err := n.floatOr("rightMargin", posInf)
	if err != nil {
		return interval{}, err
	}
	iv := interval{lo: lo, hi: hi}
	switch n.attr("closure") {
	case "openClosed":
		iv.loOpen = true
	case "openOpen":
		iv.loOpen, iv.hiOpen = true, true
	case "closedOpen":
		iv.hiOpen = true
	case "closedClosed":
	default:
		return interval{}, errAt(n, "closure %q", n.attr("closure"))
	}
	return iv, nil
}

// transformations compiles a TransformationDictionary or
// LocalTransformations element into derived fields.
func (c *compiler) transformations(n *node) (map[string]*derivedField, error) {
	allowed := []string{"DerivedField"}
	if n.name == "TransformationDictionary" {
		allowed = append(allowed, "DefineFunction")
		if err := c.defineFunctions(n); err != nil {
			return nil, err
		}
	}
	if err := n.only(allowed...); err != nil {
		return nil, err
	}
	defs := map[string]*derivedField{}
	for _, d := range n.children("DerivedField") {
		f, err := c.derived(d)
		if err != nil {
			return nil, err
		}
		if f.name == "" {
			return nil, errAt(d, "missing attribute \"name\"")
		}
		defs[f.name] = f
	}
	return defs, nil
}

func (c *compiler) defineFunctions(n *node) error {
	if c.funcs == nil {
		c.funcs = map[string]*userFunction{}
	}
	fns := n.children("DefineFunction")
	// Register first so functions may call each other in any order.
	for _, d := range fns {
		name, err := d.required("name")
		if err != nil {
			return err
		}
		typ, _ := parseDataType(d.attr("dataType"))
		c.funcs[name] = &userFunction{name: name, typ: typ}
	}
	for _, d := range fns {
		u := c.funcs[d.attr("name")]
		var body *node
		for _, k := range d.kids {
			switch k.name {
			case "Extension":
			case "ParameterField":
				p, err := k.required("name")
				if err != nil {
					return err
				}
				t, _ := parseDataType(k.attr("dataType"))
				if !k.has("dataType") {
					t = typeDouble
				}
				u.params = append(u.params, p)
				u.types = append(u.types, t)
			default:
				if body != nil {
					return errAt(k, "DefineFunction has more than one expression")
				}
				body = k
			}
		}
		if body == nil {
			return errAt(d, "DefineFunction has no expression")
		}
		e, err := c.expr(body)
		if err != nil {
			return err
		}
		u.body = e
	}
	return nil
}

func (c *compiler) derived(d *node) (*derivedField, error) {
	typ, ok := parseDataType(d.attr("dataType"))
	if !ok {
		return nil, unsupported(d, "dataType "+d.attr("dataType"))
	}
	if !d.has("dataType") {
		typ = typeDouble
	}
	var body *node
	for _, k := range d.kids {
		if k.name == "Extension" || k.name == "Value" {
			continue
		}
		if body != nil {
			return nil, errAt(k, "DerivedField has more than one expression")
		}
		body = k
	}
	if body == nil {
		return nil, errAt(d, "DerivedField has no expression")
	}
	e, err := c.expr(body)
	if err != nil {
		return nil, err
	}
	if !d.has("dataType") {
		if _, isStr := e.(constExpr); isStr && !e.(constExpr).v.isNum {
			typ = typeString
		}
		switch body.name {
		case "Discretize", "MapValues":
			typ = typeString
		}
	}
	op := d.attr("optype")
	return &derivedField{name: d.attr("name"), typ: typ, cat: op == "categorical" || op == "ordinal", expr: e}, nil
}

// mapMissing reads the mapMissingTo and defaultValue attributes.
func optConst(n *node, attr string) value {
	s, ok := n.attrs[attr]
	if !ok {
		return missing
	}
	k := newConstant(s)
	if k.fok {
		return value{ok: true, isNum: true, num: k.f, str: s}
	}
	return strValue(s)
}

func (c *compiler) expr(n *node) (expr, error) {
	switch n.name {
	case "Constant":
		if n.attr("missing") == "true" {
			return constExpr{missing}, nil
		}
		text := strings.TrimSpace(n.text)
		typ, ok := parseDataType(n.attr("dataType"))
		if !ok {
			return nil, unsupported(n, "dataType "+n.attr("dataType"))
		}
		if !n.has("dataType") {
			if k := newConstant(text); k.fok {
				return constExpr{numValue(k.f)}, nil
			}
			return constExpr{strValue(n.text)}, nil
		}
		if typ == typeString {
			return constExpr{strValue(n.text)}, nil
		}
		v, ok := cast(strValue(text), typ)
		if !ok {
			return nil, errAt(n, "constant %q is not a %s", text, n.attr("dataType"))
		}
		return constExpr{v}, nil
	case "FieldRef":
		f, err := n.required("field")
		if err != nil {
			return nil, err
		}
		return fieldRef{field: f, mapMissing: optConst(n, "mapMissingTo")}, nil
	case "NormContinuous":
		if err := n.only("LinearNorm"); err != nil {
			return nil, err
		}
		f, err := n.required("field")
		if err != nil {
			return nil, err
		}
		e := normContinuous{field: f, outliers: n.attrOr("outliers", "asIs"), mapMissing: optConst(n, "mapMissingTo")}
		for _, l := range n.children("LinearNorm") {
			o, err := l.float("orig")
			if err != nil {
				return nil, err
			}
			v, err := l.float("norm")
			if err != nil {
				return nil, err
			}
			if len(e.orig) > 0 && o <= e.orig[len(e.orig)-1] {
				return nil, errAt(l, "LinearNorm orig values must increase")
			}
			e.orig = append(e.orig, o)
			e.norm = append(e.norm, v)
		}
		if len(e.orig) < 2 {
			return nil, errAt(n, "needs at least two LinearNorm elements")
		}
		return e, nil
	case "NormDiscrete":
		f, err := n.required("field")
		if err != nil {
			return nil, err
		}
		v, err := n.required("value")
		if err != nil {
			return nil, err
		}
		if m := n.attr("method"); m != "" && m != "indicator" {
			return nil, unsupported(n, "method "+m)
		}
		return normDiscrete{field: f, val: newConstant(v), mapMissing: optConst(n, "mapMissingTo")}, nil
	case "Discretize":
		if err := n.only("DiscretizeBin"); err != nil {
			return nil, err
		}
		f, err := n.required("field")
		if err != nil {
			return nil, err
		}
		typ, _ := parseDataType(n.attr("dataType"))
		e := discretize{field: f, mapMissing: optConst(n, "mapMissingTo"), def: optConst(n, "defaultValue")}
		for _, b := range n.children("DiscretizeBin") {
			iv := b.child("Interval")
			if iv == nil {
				return nil, errAt(b, "missing <Interval>")
			}
			x, err := compileInterval(iv)
			if err != nil {
				return nil, err
			}
			bv, err := b.required("binValue")
			if err != nil {
				return nil, err
			}
			v, _ := cast(strValue(bv), typ)
			e.bins = append(e.bins, x)
			e.values = append(e.values, v)
		}
		return e, nil
	case "MapValues":
		return c.mapValues(n)
	case "Apply":
		return c.apply(n)
	}
	return nil, unsupported(n, "as an expression")
}

func (c *compiler) mapValues(n *node) (expr, error) {
	if err := n.only("FieldColumnPair", "InlineTable", "TableLocator"); err != nil {
		return nil, err
	}
	if t := n.child("TableLocator"); t != nil {
		return nil, unsupported(t, "")
	}
	out, err := n.required("outputColumn")
	if err != nil {
		return nil, err
	}
	typ, _ := parseDataType(n.attr("dataType"))
	e := mapValues{out: out, typ: typ, mapMissing: optConst(n, "mapMissingTo"), def: optConst(n, "defaultValue")}
	for _, p := range n.children("FieldColumnPair") {
		f, err := p.required("field")
		if err != nil {
			return nil, err
		}
		col, err := p.required("column")
		if err != nil {
			return nil, err
		}
		e.fields = append(e.fields, f)
		e.columns = append(e.columns, col)
	}
	if t := n.child("InlineTable"); t != nil {
		for _, r := range t.children("row") {
			row := map[string]string{}
			for _, cell := range r.kids {
				row[cell.name] = cell.text
			}
			e.rows = append(e.rows, row)
		}
	}
	return e, nil
}

func (c *compiler) apply(n *node) (expr, error) {
	fn, err := n.required("function")
	if err != nil {
		return nil, err
	}
	e := &apply{fn: fn, mapMissing: optConst(n, "mapMissingTo"), def: optConst(n, "defaultValue")}
	for _, k := range n.kids {
		if k.name == "Extension" {
			continue
		}
		a, err := c.expr(k)
		if err != nil {
			return nil, err
		}
		e.args = append(e.args, a)
	}
	if u := c.funcs[fn]; u != nil {
		if len(e.args) != len(u.params) {
			return nil, errAt(n, "function %q takes %d arguments, got %d", fn, len(u.params), len(e.args))
		}
		e.user = u
		return e, nil
	}
	ar, ok := builtinArity[fn]
	if !ok {
		return nil, unsupported(n, "function "+fn)
	}
	if len(e.args) < ar[0] || (ar[1] >= 0 && len(e.args) > ar[1]) {
		return nil, errAt(n, "function %q got %d arguments", fn, len(e.args))
	}
	return e, nil
}

func (c *compiler) slot(field string) int {
	if i, ok := c.slots[field]; ok {
		return i
	}
	return -1
}

// planSlots records where Model.score will put each input of the top
// model k: its active MiningFields in order, less derived fields.
func (c *compiler) planSlots(k *node, td map[string]*derivedField) {
	local := map[string]bool{}
	if lt := k.child("LocalTransformations"); lt != nil {
		for _, d := range lt.children("DerivedField") {
			local[d.attr("name")] = true
		}
	}
	c.slots = map[string]int{}
	ms := k.child("MiningSchema")
	if ms == nil {
		return
	}
	for _, f := range ms.children("MiningField") {
		name := f.attr("name")
		switch f.attrOr("usageType", "active") {
		case "active":
		default:
			continue
		}
		if _, ok := td[name]; ok || local[name] {
			continue
		}
		if _, dup := c.slots[name]; !dup {
			c.slots[name] = len(c.slots)
		}
	}
}
