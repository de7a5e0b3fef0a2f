package pmml

import (
	"math"
)

type numPredictor struct {
	field    string
	exponent float64
	coef     float64
}

type catPredictor struct {
	field string
	val   constant
	coef  float64
}

type termPredictor struct {
	fields []string
	coef   float64
}

type regressionTable struct {
	intercept float64
	category  string
	nums      []numPredictor
	cats      []catPredictor
	terms     []termPredictor
}

// eval returns the table's linear predictor; ok is false when an input it
// needs is missing.
func (t *regressionTable) eval(s *scope) (float64, bool) {
	y := t.intercept
	for _, p := range t.nums {
		x, ok := s.get(p.field).number()
		if !ok {
			return 0, false
		}
		if p.exponent != 1 {
			x = math.Pow(x, p.exponent)
		}
		y += p.coef * x
	}
	for _, p := range t.cats {
		v := s.get(p.field)
		if !v.ok {
			return 0, false
		}
		if v.equalTo(p.val.s, p.val.f, p.val.fok) {
			y += p.coef
		}
	}
	for _, p := range t.terms {
		prod := p.coef
		for _, f := range p.fields {
			x, ok := s.get(f).number()
			if !ok {
				return 0, false
			}
			prod *= x
		}
		y += prod
	}
	return y, true
}

type regressionCore struct {
	floatMath bool
	norm      string
	tables    []*regressionTable
	classify  bool
}

func (c *compiler) regressionModel(n *node, m *model) (core, error) {
	if err := n.only(append(commonModelChildren, "RegressionTable")...); err != nil {
		return nil, err
	}
	r := &regressionCore{norm: n.attrOr("normalizationMethod", "none"), classify: m.classification(), floatMath: m.floatMath}
	switch r.norm {
	case "none", "simplemax", "softmax", "logit", "probit", "cloglog", "exp", "loglog", "cauchit":
	default:
		return nil, unsupported(n, "normalizationMethod "+r.norm)
	}
	for _, tn := range n.children("RegressionTable") {
		t, err := compileRegressionTable(tn)
		if err != nil {
			return nil, err
		}
		r.tables = append(r.tables, t)
	}
	if len(r.tables) == 0 {
		return nil, errAt(n, "no <RegressionTable>")
	}
	if !r.classify && len(r.tables) != 1 {
		return nil, errAt(n, "a regression needs exactly one <RegressionTable>, got %d", len(r.tables))
	}
	return r, nil
}

func compileRegressionTable(n *node) (*regressionTable, error) {
	if err := n.only("NumericPredictor", "CategoricalPredictor", "PredictorTerm"); err != nil {
		return nil, err
	}
	icpt, err := n.float("intercept")
	if err != nil {
		return nil, err
	}
	t := &regressionTable{intercept: icpt, category: n.attr("targetCategory")}
	for _, p := range n.children("NumericPredictor") {
		np := numPredictor{}
		if np.field, err = p.required("name"); err != nil {
			return nil, err
		}
		if np.exponent, err = p.floatOr("exponent", 1); err != nil {
			return nil, err
		}
		if np.coef, err = p.float("coefficient"); err != nil {
			return nil, err
		}
		t.nums = append(t.nums, np)
	}
	for _, p := range n.children("CategoricalPredictor") {
		cp := catPredictor{}
		if cp.field, err = p.required("name"); err != nil {
			return nil, err
		}
		v, err := p.required("value")
		if err != nil {
			return nil, err
		}
		cp.val = newConstant(v)
		if cp.coef, err = p.float("coefficient"); err != nil {
			return nil, err
		}
		t.cats = append(t.cats, cp)
	}
	for _, p := range n.children("PredictorTerm") {
		if err := p.only("FieldRef"); err != nil {
			return nil, err
		}
		tp := termPredictor{}
		if tp.coef, err = p.float("coefficient"); err != nil {
			return nil, err
		}
		for _, f := range p.children("FieldRef") {
			name, err := f.required("field")
			if err != nil {
				return nil, err
			}
			tp.fields = append(tp.fields, name)
		}
		t.terms = append(t.terms, tp)
	}
	return t, nil
}

func (r *regressionCore) eval(s *scope) (result, error) {
	ys := make([]float64, len(r.tables))
	for i, t := range r.tables {
		var y float64
		var ok bool
		if r.floatMath {
			y, ok = t.eval32(s)
		} else {
			y, ok = t.eval(s)
		}
		if !ok {
			return result{}, nil
		}
		ys[i] = y
	}
	if r.floatMath {
		return r.finish32(ys), nil
	}
	if !r.classify {
		y := ys[0]
		if r.norm == "softmax" {
			y = 1 / (1 + math.Exp(-y))
		} else {
			y = inverseLink(r.norm, y)
		}
		return result{val: numValue(y)}, nil
	}
	cats := make([]string, len(r.tables))
	for i, t := range r.tables {
		cats[i] = t.category
	}
	return classResult(cats, normalizeScores(r.norm, ys)), nil
}

// classResult builds a classification result from per-category
// probabilities in category order.
func classResult(cats []string, ps []float64) result {
	r := result{probs: make(map[string]float64, len(cats))}
	for i, c := range cats {
		r.probs[c] = ps[i]
	}
	r.val = strValue(argmax(r.probs, cats))
	return r
}

// normalizeScores turns per-class linear predictors into probabilities.
func normalizeScores(method string, ys []float64) []float64 {
	out := make([]float64, len(ys))
	switch method {
	case "softmax":
		mx := math.Inf(-1)
		for _, y := range ys {
			mx = math.Max(mx, y)
		}
		sum := 0.0
		for i, y := range ys {
			out[i] = math.Exp(y - mx)
			sum += out[i]
		}
		for i := range out {
			out[i] /= sum
		}
	case "simplemax":
		sum := 0.0
		for _, y := range ys {
			sum += y
		}
		for i, y := range ys {
			out[i] = y / sum
		}
	case "none":
		copy(out, ys)
		if len(ys) == 2 {
			out[1] = 1 - out[0]
		}
	default:
		// Binary and ordinal links: every class but the last gets the
		// inverse link; the last takes the remainder.
		sum := 0.0
		for i := 0; i < len(ys)-1; i++ {
			out[i] = inverseLink(method, ys[i])
			sum += out[i]
		}
		out[len(ys)-1] = 1 - sum
		if len(ys) == 1 {
			out[0] = inverseLink(method, ys[0])
		}
	}
	return out
}

// inverseLink applies a normalisation (RegressionModel) or the inverse of a
// link function (GeneralRegressionModel) to y.
func inverseLink(method string, y float64) float64 {
	switch method {
	case "logit":
		return 1 / (1 + math.Exp(-y))
	case "probit":
		return 0.5 * math.Erfc(-y/math.Sqrt2)
	case "cloglog":
		return 1 - math.Exp(-math.Exp(y))
	case "loglog":
		return math.Exp(-math.Exp(-y))
	case "cauchit":
		return 0.5 + math.Atan(y)/math.Pi
	case "exp", "log":
		return math.Exp(y)
	}
	return y
}

// eval32 is eval in single precision, for x-mathContext="float".
func (t *regressionTable) eval32(s *scope) (float64, bool) {
	if len(t.cats) > 0 || len(t.terms) > 0 {
		y, ok := t.eval(s)
		return float64(float32(y)), ok
	}
	y := float32(t.intercept)
	for _, p := range t.nums {
		x, ok := s.get(p.field).number()
		if !ok {
			return 0, false
		}
		x32 := float32(x)
		if p.exponent != 1 {
			x32 = float32(math.Pow(float64(x32), p.exponent))
		}
		y += float32(p.coef) * x32
	}
	return float64(y), true
}

// finish32 normalises in single precision.
func (r *regressionCore) finish32(ys []float64) result {
	round := func(xs []float64) []float64 {
		for i, x := range xs {
			xs[i] = float64(float32(x))
		}
		return xs
	}
	if !r.classify {
		if r.norm == "softmax" {
			return result{val: numValue(float64(float32(1 / (1 + math.Exp(-ys[0])))))}
		}
		return result{val: numValue(float64(float32(inverseLink(r.norm, ys[0]))))}
	}
	cats := make([]string, len(r.tables))
	for i, t := range r.tables {
		cats[i] = t.category
	}
	var ps []float64
	if r.norm == "logit" && len(ys) == 2 {
		// As XGBoost computes it: 1.0f / (1.0f + expf(-x)).
		e := float32(math.Exp(-ys[0]))
		ps = []float64{float64(1 / (1 + e)), 0}
	} else {
		ps = round(normalizeScores(r.norm, ys))
	}
	if len(ps) == 2 && r.norm != "softmax" && r.norm != "simplemax" {
		ps[1] = float64(float32(1) - float32(ps[0]))
	}
	return classResult(cats, ps)
}
