package pmml

import (
	"fmt"
	"math"

	fr "github.com/ferryserve/ferry/internal/runtime"
)

// result is what a model computes for one record before its Output
// element is applied.
type result struct {
	val    value              // the predicted value; missing means null
	probs  map[string]float64 // class probabilities (classification)
	conf   map[string]float64 // confidences, when they differ from probs
	entity string             // the winning node's or segment's id
	reason []string           // ranked reason codes (Scorecard)
}

// core is one model type's evaluator.
type core interface {
	eval(s *scope) (result, error)
}

type miningField struct {
	name        string
	field       *dataField
	replacement value
	invalid     string
	invalidRepl value
	missingTr   string
	outliers    string
	low, high   float64
}

type target struct {
	factor, constant float64
	min, max         float64
	castInteger      string
	values           []string
	display          map[string]string
	priors           map[string]float64
	defaultValue     value
}

// model is one PMML model element with its schema, local transformations,
// targets and outputs; core does the model-type-specific work.
type model struct {
	kind    string
	fn      string
	active  []miningField
	defs    map[string]*derivedField
	outputs []*outputField
	target  string
	tfield  *dataField
	tgt     *target
	cats    []string
	core    core
	// passthrough: the model has no local transformations and its
	// MiningSchema changes nothing, so as a segment it can evaluate in its
	// parent's scope instead of copying its inputs into a new one.
	passthrough bool
	// floatMath: the document asks (x-mathContext="float", as XGBoost
	// exporters write) for single precision arithmetic.
	floatMath bool
	// baseInSum: a float sum ensemble starts from the Target's
	// rescaleConstant, so applyTargets must not add it again.
	baseInSum bool
}

func (m *model) classification() bool { return m.fn == "classification" }

// evaluate runs m in a scope under parent and returns the result and the
// model's scope (which outputs and model chains read).
func (m *model) evaluate(parent *scope) (result, *scope, error) {
	if m.passthrough {
		r, err := m.core.eval(parent)
		if err != nil {
			return result{}, nil, err
		}
		m.applyTargets(&r)
		return r, parent, nil
	}
	s := newScope(parent, m.defs)
	for i := range m.active {
		mf := &m.active[i]
		if m.defs[mf.name] != nil {
			// A derived field listed as active is computed, not given.
			continue
		}
		v, err := mf.prepare(parent.get(mf.name))
		if err != nil {
			return result{}, nil, err
		}
		s.set(mf.name, v)
	}
	r, err := m.core.eval(s)
	if err != nil {
		return result{}, nil, err
	}
	m.applyTargets(&r)
	return r, s, nil
}

// trivial reports whether prepare returns every value unchanged for
// values a parent model already prepared.
func (mf *miningField) trivial() bool {
	if mf.replacement.ok || mf.missingTr == "returnInvalid" || (mf.outliers != "" && mf.outliers != "asIs") {
		return false
	}
	if mf.invalid == "asIs" || mf.field == nil {
		return true
	}
	f := mf.field
	return len(f.validK) == 0 && len(f.intervals) == 0 && len(f.invalid) == 0
}

// prepare applies the MiningField's invalid, outlier and missing value
// treatments.
func (mf *miningField) prepare(v value) (value, error) {
	if v.ok && mf.field != nil && !mf.field.isValid(v) {
		switch mf.invalid {
		case "asIs":
		case "asMissing":
			v = missing
		case "asValue":
			v = mf.invalidRepl
		default:
			return missing, fmt.Errorf("%w: field %q: invalid value %q", fr.ErrInvalidInput, mf.name, v.String())
		}
	}
	if v.ok && mf.outliers != "" && mf.outliers != "asIs" {
		if x, ok := v.number(); ok && (x < mf.low || x > mf.high) {
			if mf.outliers == "asMissingValues" {
				v = missing
			} else if x < mf.low {
				v = numValue(mf.low)
			} else {
				v = numValue(mf.high)
			}
		}
	}
	if !v.ok {
		if mf.replacement.ok {
			return mf.replacement, nil
		}
		if mf.missingTr == "returnInvalid" {
			return missing, fmt.Errorf("%w: field %q is missing", fr.ErrInvalidInput, mf.name)
		}
	}
	return v, nil
}

func (m *model) applyTargets(r *result) {
	t := m.tgt
	if t == nil {
		return
	}
	if !r.val.ok {
		if t.defaultValue.ok {
			r.val = t.defaultValue
		}
		if m.classification() && len(t.priors) > 0 {
			r.probs = t.priors
			r.val = strValue(argmax(t.priors, m.cats))
		}
		return
	}
	if m.classification() || !r.val.isNum {
		return
	}
	if m.baseInSum {
		return
	}
	y := r.val.num
	y = math.Max(y, t.min)
	y = math.Min(y, t.max)
	y = y*t.factor + t.constant
	if m.floatMath {
		y = float64(float32(float32(y)*float32(t.factor)) + float32(t.constant))
	}
	switch t.castInteger {
	case "round":
		y = math.Floor(y + 0.5)
	case "ceiling":
		y = math.Ceil(y)
	case "floor":
		y = math.Floor(y)
	}
	r.val = numValue(y)
}

// argmax picks the category with the largest score; ties go to the first
// in order (the model's category order, then map order).
func argmax(scores map[string]float64, order []string) string {
	best, bv := "", math.Inf(-1)
	seen := 0
	for _, c := range order {
		if v, ok := scores[c]; ok {
			seen++
			if v > bv {
				best, bv = c, v
			}
		}
	}
	if seen < len(scores) {
		for _, c := range sortedKeys(scores) {
			if v := scores[c]; v > bv {
				best, bv = c, v
			}
		}
	}
	return best
}

// modelElements are the model types Ferry evaluates.
var modelElements = map[string]bool{
	"TreeModel": true, "RegressionModel": true, "GeneralRegressionModel": true, "MiningModel": true,
	"NeuralNetwork": true, "NaiveBayesModel": true, "SupportVectorMachineModel": true, "Scorecard": true,
}

// knownUnsupportedModels are PMML model types Ferry recognises but does not
// evaluate; loading them fails with a clear error.
var knownUnsupportedModels = map[string]bool{
	"AnomalyDetectionModel": true, "AssociationModel": true, "BayesianNetworkModel": true, "BaselineModel": true,
	"ClusteringModel": true, "GaussianProcessModel": true, "NearestNeighborModel": true, "RuleSetModel": true,
	"SequenceModel": true, "TextModel": true, "TimeSeriesModel": true,
}

// compileModel compiles any supported model element.
func (c *compiler) model(n *node) (*model, error) {
	if n.attr("isScorable") == "false" {
		return nil, errAt(n, "the model is marked isScorable=\"false\"")
	}
	m := &model{kind: n.name, fn: n.attr("functionName"), floatMath: n.attr("x-mathContext") == "float"}
	switch m.fn {
	case "regression", "classification":
	case "":
		return nil, errAt(n, "missing attribute \"functionName\"")
	default:
		return nil, unsupported(n, "functionName "+m.fn)
	}
	ms := n.child("MiningSchema")
	if ms == nil {
		return nil, errAt(n, "missing <MiningSchema>")
	}
	if err := c.miningSchema(ms, m); err != nil {
		return nil, err
	}
	if lt := n.child("LocalTransformations"); lt != nil {
		defs, err := c.transformations(lt)
		if err != nil {
			return nil, err
		}
		m.defs = defs
	}
	if t := n.child("Targets"); t != nil {
		if err := c.targets(t, m); err != nil {
			return nil, err
		}
	}
	m.cats = c.categories(m)
	var err error
	switch n.name {
	case "TreeModel":
		m.core, err = c.treeModel(n, m)
	case "RegressionModel":
		m.core, err = c.regressionModel(n, m)
	case "GeneralRegressionModel":
		m.core, err = c.generalRegression(n, m)
	case "MiningModel":
		m.core, err = c.miningModel(n, m)
	case "NeuralNetwork":
		m.core, err = c.neuralNetwork(n, m)
	case "NaiveBayesModel":
		m.core, err = c.naiveBayes(n, m)
	case "SupportVectorMachineModel":
		m.core, err = c.svm(n, m)
	case "Scorecard":
		m.core, err = c.scorecard(n, m)
	default:
		return nil, unsupported(n, "model type")
	}
	if err != nil {
		return nil, err
	}
	if o := n.child("Output"); o != nil {
		outs, err := c.output(o, m)
		if err != nil {
			return nil, err
		}
		m.outputs = outs
	}
	m.passthrough = len(m.defs) == 0
	for _, mf := range m.active {
		if !mf.trivial() {
			m.passthrough = false
		}
	}
	return m, nil
}

// commonModelChildren are the children every model element may have.
var commonModelChildren = []string{"MiningSchema", "Output", "ModelStats", "ModelExplanation", "Targets",
	"LocalTransformations", "ModelVerification"}

func (c *compiler) miningSchema(n *node, m *model) error {
	if err := n.only("MiningField"); err != nil {
		return err
	}
	for _, f := range n.children("MiningField") {
		name, err := f.required("name")
		if err != nil {
			return err
		}
		usage := f.attrOr("usageType", "active")
		switch usage {
		case "target", "predicted":
			if m.target == "" {
				m.target = name
				m.tfield = c.fields[name]
			}
			continue
		case "active":
		case "supplementary", "frequencyWeight", "analysisWeight", "group", "order":
			continue
		default:
			return errAt(f, "unknown usageType %q", usage)
		}
		mf := miningField{name: name, field: c.fields[name], invalid: f.attrOr("invalidValueTreatment", "returnInvalid"),
			missingTr: f.attr("missingValueTreatment"), outliers: f.attrOr("outliers", "asIs")}
		switch mf.invalid {
		case "returnInvalid", "asIs", "asMissing", "asValue":
		default:
			return errAt(f, "unknown invalidValueTreatment %q", mf.invalid)
		}
		typ := typeDouble
		if mf.field != nil {
			typ = mf.field.typ
		}
		if f.has("missingValueReplacement") {
			v, ok := cast(strValue(f.attr("missingValueReplacement")), typ)
			if !ok {
				return errAt(f, "missingValueReplacement %q does not fit the field's type", f.attr("missingValueReplacement"))
			}
			mf.replacement = v
		}
		if f.has("invalidValueReplacement") {
			v, _ := cast(strValue(f.attr("invalidValueReplacement")), typ)
			mf.invalidRepl = v
		}
		if mf.outliers != "asIs" {
			if mf.low, err = f.floatOr("lowValue", negInf); err != nil {
				return err
			}
			if mf.high, err = f.floatOr("highValue", posInf); err != nil {
				return err
			}
		}
		m.active = append(m.active, mf)
	}
	return nil
}

func (c *compiler) targets(n *node, m *model) error {
	if err := n.only("Target"); err != nil {
		return err
	}
	for _, t := range n.children("Target") {
		if err := t.only("TargetValue"); err != nil {
			return err
		}
		f := t.attr("field")
		if f != "" && m.target != "" && f != m.target {
			continue
		}
		tg := &target{display: map[string]string{}}
		var err error
		if tg.factor, err = t.floatOr("rescaleFactor", 1); err != nil {
			return err
		}
		if tg.constant, err = t.floatOr("rescaleConstant", 0); err != nil {
			return err
		}
		if tg.min, err = t.floatOr("min", negInf); err != nil {
			return err
		}
		if tg.max, err = t.floatOr("max", posInf); err != nil {
			return err
		}
		tg.castInteger = t.attr("castInteger")
		for _, v := range t.children("TargetValue") {
			if v.child("Partition") != nil {
				return unsupported(v.child("Partition"), "")
			}
			if v.has("defaultValue") {
				tg.defaultValue = optConst(v, "defaultValue")
			}
			val := v.attr("value")
			if val == "" {
				continue
			}
			tg.values = append(tg.values, val)
			if d, ok := v.attrs["displayValue"]; ok {
				tg.display[val] = d
			}
			if v.has("priorProbability") {
				p, err := v.float("priorProbability")
				if err != nil {
					return err
				}
				if tg.priors == nil {
					tg.priors = map[string]float64{}
				}
				tg.priors[val] = p
			}
		}
		if m.target == "" && f != "" {
			m.target = f
			m.tfield = c.fields[f]
		}
		m.tgt = tg
		return nil
	}
	return nil
}

// categories lists a classification model's target categories.
func (c *compiler) categories(m *model) []string {
	if m.tgt != nil && len(m.tgt.values) > 0 {
		return m.tgt.values
	}
	if m.tfield != nil {
		return m.tfield.valid
	}
	return nil
}
