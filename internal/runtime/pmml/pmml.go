// Package pmml owns Ferry's PMML runtime: it reads PMML 4.x documents with
// encoding/xml, compiles them into evaluators (trees, regressions, general
// regressions, neural networks, naive Bayes, support vector machines,
// scorecards and segmented mining models, with the document's
// transformations, targets and outputs) and scores records given as named,
// typed fields. It knows nothing of protocols; the V1 layer calls
// PredictRecords and the V2 layer calls Predict.
package pmml

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	fr "github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// Format detects and loads PMML documents: *.pmml files, and *.xml files
// whose first bytes hold a <PMML element.
var Format = fr.Format{
	Name:  "pmml",
	Match: match,
	Load: func(ctx context.Context, path string) (fr.Model, error) {
		return Load(ctx, path)
	},
}

func match(name string, head []byte) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".pmml" || (ext == ".xml" && bytes.Contains(head, []byte("<PMML")))
}

// Model is a loaded PMML document, ready to score. It is immutable and safe
// for concurrent use.
type Model struct {
	version string
	top     *model
	defs    map[string]*derivedField
	inputs  []*inputField
	index   map[string]int
}

// inputField is one active field of the top-level model.
type inputField struct {
	name  string
	field *dataField
	mf    *miningField
}

var _ fr.Model = (*Model)(nil)

// Load reads and compiles the PMML document at path.
func Load(_ context.Context, path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// rootChildren are the top-level elements Ferry reads or ignores.
var rootChildren = map[string]bool{"Header": true, "MiningBuildTask": true, "DataDictionary": true,
	"TransformationDictionary": true, "Extension": true}

// Parse compiles a PMML document.
func Parse(data []byte) (*Model, error) {
	root, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	c := &compiler{}
	if v, err := parseNumber(root.attr("version")); err == nil {
		c.version = v
	}
	dd := root.child("DataDictionary")
	if dd == nil {
		return nil, errAt(root, "missing <DataDictionary>")
	}
	if err := c.dataDictionary(dd); err != nil {
		return nil, err
	}
	m := &Model{version: root.attr("version"), index: map[string]int{}}
	if td := root.child("TransformationDictionary"); td != nil {
		if m.defs, err = c.transformations(td); err != nil {
			return nil, err
		}
	}
	for _, k := range root.kids {
		switch {
		case rootChildren[k.name]:
		case modelElements[k.name]:
			if m.top != nil || k.attr("isScorable") == "false" {
				continue
			}
			c.planSlots(k, m.defs)
			if m.top, err = c.model(k); err != nil {
				return nil, err
			}
		case knownUnsupportedModels[k.name]:
			return nil, unsupported(k, "model type")
		default:
			return nil, unsupported(k, "inside <PMML>")
		}
	}
	if m.top == nil {
		return nil, errAt(root, "no model element")
	}
	// TransformationDictionary fields are evaluated in the top model's
	// scope, so they see inputs after the MiningSchema's treatments.
	if len(m.defs) > 0 {
		merged := make(map[string]*derivedField, len(m.defs)+len(m.top.defs))
		for k, d := range m.defs {
			merged[k] = d
		}
		for k, d := range m.top.defs {
			merged[k] = d
		}
		m.top.defs = merged
	}
	for i := range m.top.active {
		mf := &m.top.active[i]
		if _, derived := m.top.defs[mf.name]; derived {
			continue
		}
		if mf.field == nil {
			return nil, fmt.Errorf("%w: active field %q is not in the DataDictionary", fr.ErrCorruptModel, mf.name)
		}
		m.index[mf.name] = len(m.inputs)
		m.inputs = append(m.inputs, &inputField{name: mf.name, field: mf.field, mf: mf})
	}
	return m, nil
}

// ActiveFields lists the model's input fields in MiningSchema order: the
// order of V1 list rows and of the columns of a row-major V2 tensor.
func (m *Model) ActiveFields() []string {
	out := make([]string, len(m.inputs))
	for i, in := range m.inputs {
		out[i] = in.name
	}
	return out
}

// OutputNames lists the names PredictRecords keys its results by: the
// Output fields, or the target field when there is no Output element.
func (m *Model) OutputNames() []string {
	if len(m.top.outputs) == 0 {
		return []string{m.defaultName()}
	}
	out := make([]string, len(m.top.outputs))
	for i, o := range m.top.outputs {
		out[i] = o.name
	}
	return out
}

func (m *Model) defaultName() string {
	if m.top.target != "" {
		return m.top.target
	}
	return "predict"
}

// Close implements runtime.Model.
func (m *Model) Close() error { return nil }

// scored is one record's outcome.
type scored struct {
	res  result
	outs []value
}

// score evaluates one record whose active field values are in vals
// (aligned with m.inputs).
func (m *Model) score(vals []value, outs []value) (scored, error) {
	// The top model's scope takes the inputs directly (after the
	// MiningSchema's treatments); nested models chain off it.
	s := newScope(nil, m.top.defs)
	s.small = make([]binding, 0, min(smallScope, len(m.inputs)+len(m.top.outputs)+4))
	for i, in := range m.inputs {
		v, err := in.mf.prepare(vals[i])
		if err != nil {
			return scored{}, err
		}
		s.set(in.name, v)
	}
	r, err := m.top.core.eval(s)
	if err != nil {
		return scored{}, err
	}
	m.top.applyTargets(&r)
	return scored{res: r, outs: m.top.computeOutputs(r, s, outs[:0])}, nil
}

// convert turns a caller's value into a field value of f's type. Values
// that do not parse stay as given so the MiningField's invalid value
// treatment sees them.
func convert(f *dataField, raw any) (value, error) {
	var v value
	switch x := raw.(type) {
	case nil:
		return missing, nil
	case float64:
		v = numValue(x)
	case float32:
		v = numValue(float64(x))
	case int:
		v = numValue(float64(x))
	case int64:
		v = numValue(float64(x))
	case int32:
		v = numValue(float64(x))
	case bool:
		v = boolValue(x)
	case string:
		return convertString(f, x), nil
	case fmt.Stringer:
		v = strValue(x.String())
	default:
		return missing, fmt.Errorf("%w: field %q: unsupported value type %T", fr.ErrInvalidInput, f.name, raw)
	}
	return convertValue(f, v), nil
}

// convertString is convert for text. An empty string is missing (BYTES
// tensors and CSV rows have no other way to say so) unless the field
// declares it valid.
func convertString(f *dataField, x string) value {
	if f.missing[x] || (x == "" && !slices.Contains(f.valid, "")) {
		return missing
	}
	return convertValue(f, strValue(x))
}

func convertValue(f *dataField, v value) value {
	if v.ok && f.missing != nil && f.missing[v.String()] {
		return missing
	}
	if cv, ok := cast(v, f.typ); ok {
		return cv
	}
	return v
}

func toAny(v value, str bool) any {
	if !v.ok {
		return nil
	}
	if str || !v.isNum {
		return v.String()
	}
	return v.num
}

// PredictRecords scores records keyed by field name (values float64,
// string, bool or nil). Each result maps Output field names (or the
// target's name when the model has no Output element) to float64, string
// or nil.
func (m *Model) PredictRecords(ctx context.Context, records []map[string]any) ([]map[string]any, error) {
	out := make([]map[string]any, len(records))
	vals := make([]value, len(m.inputs))
	var outs []value
	for i, rec := range records {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		for j, in := range m.inputs {
			v, err := convert(in.field, rec[in.name])
			if err != nil {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			vals[j] = v
		}
		sc, err := m.score(vals, outs)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		outs = sc.outs
		row := make(map[string]any, len(outs)+1)
		if len(m.top.outputs) == 0 {
			row[m.defaultName()] = toAny(sc.res.val, m.top.classification())
		}
		for k, o := range m.top.outputs {
			row[o.name] = toAny(outs[k], o.str)
		}
		out[i] = row
	}
	return out, nil
}

// Metadata implements runtime.Model: one input per active field and one
// output per Output field.
func (m *Model) Metadata() fr.Metadata {
	md := fr.Metadata{Platform: "ferry_pmml", Properties: map[string]string{
		"pmml_version": m.version, "model_type": m.top.kind, "function": m.top.fn}}
	for _, in := range m.inputs {
		dt := tensor.FP64
		if !in.field.typ.numeric() {
			dt = tensor.Bytes
		}
		md.Inputs = append(md.Inputs, fr.TensorMeta{Name: in.name, Datatype: dt, Shape: []int64{-1}})
	}
	for _, o := range m.outputSpecs() {
		dt := tensor.FP64
		if o.str {
			dt = tensor.Bytes
		}
		md.Outputs = append(md.Outputs, fr.TensorMeta{Name: o.name, Datatype: dt, Shape: []int64{-1}})
	}
	return md
}

type outputSpec struct {
	name string
	str  bool
	idx  int // index into the Output values; -1 for the predicted value
}

func (m *Model) outputSpecs() []outputSpec {
	if len(m.top.outputs) == 0 {
		str := m.top.classification()
		if m.top.tfield != nil {
			str = !m.top.tfield.typ.numeric()
		}
		return []outputSpec{{name: "predict", str: str, idx: -1}}
	}
	out := make([]outputSpec, len(m.top.outputs))
	for i, o := range m.top.outputs {
		out[i] = outputSpec{name: o.name, str: o.str, idx: i}
	}
	return out
}

// Predict implements runtime.Model for V2 tensors: either one tensor per
// active field (named by field; BYTES for text, numeric otherwise; shape
// [rows] or [rows, 1]) or one numeric [rows, fields] tensor in
// MiningSchema order.
func (m *Model) Predict(ctx context.Context, req *fr.Request) (*fr.Response, error) {
	rows, cols, err := m.columns(req)
	if err != nil {
		return nil, err
	}
	specs := m.outputSpecs()
	var want []outputSpec
	for _, sp := range specs {
		if req.Wants(sp.name, true) {
			want = append(want, sp)
		}
	}
	for _, name := range req.Outputs {
		found := false
		for _, sp := range specs {
			found = found || sp.name == name
		}
		if !found {
			return nil, fmt.Errorf("%w: unknown output %q (the model has %s)", fr.ErrInvalidInput, name, strings.Join(m.OutputNames(), ", "))
		}
	}
	nums := make([][]float64, len(want))
	strs := make([][]string, len(want))
	for i, sp := range want {
		if sp.str {
			strs[i] = make([]string, rows)
		} else {
			nums[i] = make([]float64, rows)
		}
	}
	vals := make([]value, len(m.inputs))
	var outs []value
	for r := 0; r < rows; r++ {
		if r%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		for j := range m.inputs {
			vals[j] = cols[j](r)
		}
		sc, err := m.score(vals, outs)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", r, err)
		}
		outs = sc.outs
		for i, sp := range want {
			v := sc.res.val
			if sp.idx >= 0 {
				v = outs[sp.idx]
			}
			if sp.str {
				strs[i][r] = v.String()
			} else if f, ok := v.number(); ok {
				nums[i][r] = f
			} else {
				nums[i][r] = math.NaN()
			}
		}
	}
	res := &fr.Response{}
	for i, sp := range want {
		if sp.str {
			res.Outputs = append(res.Outputs, fr.NewBytes(sp.name, []int64{int64(rows)}, strs[i]))
		} else {
			res.Outputs = append(res.Outputs, fr.NewFP64(sp.name, []int64{int64(rows)}, nums[i]))
		}
	}
	return res, nil
}

// columns maps the request's tensors to one accessor per active field.
func (m *Model) columns(req *fr.Request) (int, []func(int) value, error) {
	if len(req.Inputs) == 0 {
		return 0, nil, fmt.Errorf("%w: request has no inputs", fr.ErrInvalidInput)
	}
	byName := true
	for _, in := range req.Inputs {
		if _, ok := m.index[in.Name]; !ok {
			byName = false
		}
	}
	n := len(m.inputs)
	if len(req.Inputs) == 1 && n > 1 {
		// One tensor named like a field is that field's column unless it
		// is shaped [rows, fields].
		in := req.Inputs[0]
		if len(in.Shape) == 2 && in.Shape[1] == int64(n) {
			byName = false
		}
	}
	if !byName {
		if len(req.Inputs) != 1 {
			return 0, nil, fmt.Errorf("%w: send one tensor per field named %s, or one [rows, %d] numeric tensor", fr.ErrInvalidInput, strings.Join(m.ActiveFields(), ", "), n)
		}
		in := req.Inputs[0]
		if in.Datatype == tensor.Bytes {
			return 0, nil, fmt.Errorf("%w: input %q is BYTES; a single tensor must be numeric [rows, %d] (send text fields as one BYTES tensor per field)", fr.ErrInvalidInput, in.Name, n)
		}
		x, err := in.Float64s()
		if err != nil {
			return 0, nil, fmt.Errorf("%w: input %q: %w", fr.ErrInvalidInput, in.Name, err)
		}
		rows, cols := 0, 0
		switch len(in.Shape) {
		case 1:
			rows, cols = 1, int(in.Shape[0])
		case 2:
			rows, cols = int(in.Shape[0]), int(in.Shape[1])
		}
		if cols != n || rows*cols != len(x) {
			return 0, nil, fmt.Errorf("%w: input %q has shape %v; want [rows, %d] (fields %s)", fr.ErrInvalidInput, in.Name, in.Shape, n, strings.Join(m.ActiveFields(), ", "))
		}
		acc := make([]func(int) value, n)
		for j := range acc {
			f := m.inputs[j].field
			acc[j] = func(r int) value { return convertValue(f, numValue(x[r*n+j])) }
		}
		return rows, acc, nil
	}
	acc := make([]func(int) value, n)
	for j := range acc {
		acc[j] = func(int) value { return missing }
	}
	rows := -1
	for _, in := range req.Inputs {
		r, c := in.Rows()
		if len(in.Shape) > 2 || c != 1 {
			return 0, nil, fmt.Errorf("%w: input %q has shape %v; want [rows] or [rows, 1]", fr.ErrInvalidInput, in.Name, in.Shape)
		}
		if rows >= 0 && r != rows {
			return 0, nil, fmt.Errorf("%w: input %q has %d rows, earlier inputs have %d", fr.ErrInvalidInput, in.Name, r, rows)
		}
		rows = r
		j := m.index[in.Name]
		if in.Datatype == tensor.Bytes {
			b, ok := in.Data.([][]byte)
			if !ok || len(b) != r {
				return 0, nil, fmt.Errorf("%w: input %q: BYTES data does not match its shape", fr.ErrInvalidInput, in.Name)
			}
			f := m.inputs[j].field
			acc[j] = func(i int) value { return convertString(f, string(b[i])) }
			continue
		}
		if !m.inputs[j].field.typ.numeric() && !m.inputs[j].field.cat {
			return 0, nil, fmt.Errorf("%w: input %q is text; send it as BYTES", fr.ErrInvalidInput, in.Name)
		}
		x, err := in.Float64s()
		if err != nil || len(x) != r {
			return 0, nil, fmt.Errorf("%w: input %q: data does not match its shape", fr.ErrInvalidInput, in.Name)
		}
		f := m.inputs[j].field
		acc[j] = func(i int) value { return convertValue(f, numValue(x[i])) }
	}
	return rows, acc, nil
}
