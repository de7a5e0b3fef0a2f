package pmml

import (
	"math"
)

type ppCell struct {
	predictor string
	val       constant
	factor    bool
}

type glmParam struct {
	cells []ppCell
	betas map[string]float64 // by target category ("" when none)
}

type glmCore struct {
	modelType string
	link      string
	linkParam float64
	cumLink   string
	offsetVar string
	offset    float64
	trialsVar string
	trials    float64
	params    []*glmParam
	cats      []string // categories with their own betas, in model order
	reference string
	allCats   []string
	classify  bool
}

func (c *compiler) generalRegression(n *node, m *model) (core, error) {
	if err := n.only(append(commonModelChildren, "ParameterList", "FactorList", "CovariateList", "PPMatrix",
		"PCovMatrix", "ParamMatrix", "EventValues", "BaseCumHazardTables")...); err != nil {
		return nil, err
	}
	g := &glmCore{modelType: n.attr("modelType"), link: n.attr("linkFunction"), cumLink: n.attr("cumulativeLink"),
		offsetVar: n.attr("offsetVariable"), trialsVar: n.attr("trialsVariable"), classify: m.classification(),
		reference: n.attr("targetReferenceCategory")}
	switch g.modelType {
	case "regression", "generalLinear", "multinomialLogistic", "ordinalMultinomial":
	case "generalizedLinear":
		switch g.link {
		case "identity", "log", "logit", "probit", "cloglog", "loglog", "cauchit", "power":
		default:
			return nil, unsupported(n, "linkFunction "+g.link)
		}
	default:
		return nil, unsupported(n, "modelType "+g.modelType)
	}
	var err error
	if g.linkParam, err = n.floatOr("linkParameter", 1); err != nil {
		return nil, err
	}
	if g.offset, err = n.floatOr("offsetValue", 0); err != nil {
		return nil, err
	}
	if g.trials, err = n.floatOr("trialsValue", 1); err != nil {
		return nil, err
	}
	factors := map[string]bool{}
	if fl := n.child("FactorList"); fl != nil {
		for _, p := range fl.children("Predictor") {
			if p.child("Categories") != nil || p.child("Matrix") != nil || p.has("contrastMatrixType") {
				return nil, unsupported(p, "contrast matrices")
			}
			factors[p.attr("name")] = true
		}
	}
	byName := map[string]*glmParam{}
	var order []string
	param := func(name string) *glmParam {
		p := byName[name]
		if p == nil {
			p = &glmParam{betas: map[string]float64{}}
			byName[name] = p
			order = append(order, name)
		}
		return p
	}
	if pl := n.child("ParameterList"); pl != nil {
		for _, p := range pl.children("Parameter") {
			param(p.attr("name"))
		}
	}
	if pp := n.child("PPMatrix"); pp != nil {
		if err := pp.only("PPCell"); err != nil {
			return nil, err
		}
		for _, cell := range pp.children("PPCell") {
			pn, err := cell.required("parameterName")
			if err != nil {
				return nil, err
			}
			pred, err := cell.required("predictorName")
			if err != nil {
				return nil, err
			}
			v, err := cell.required("value")
			if err != nil {
				return nil, err
			}
			pc := ppCell{predictor: pred, val: newConstant(v), factor: factors[pred]}
			if !pc.factor && !pc.val.fok {
				return nil, errAt(cell, "covariate exponent %q is not a number", v)
			}
			p := param(pn)
			p.cells = append(p.cells, pc)
		}
	}
	pm := n.child("ParamMatrix")
	if pm == nil {
		return nil, errAt(n, "missing <ParamMatrix>")
	}
	seenCat := map[string]bool{}
	for _, cell := range pm.children("PCell") {
		pn, err := cell.required("parameterName")
		if err != nil {
			return nil, err
		}
		b, err := cell.float("beta")
		if err != nil {
			return nil, err
		}
		cat := cell.attr("targetCategory")
		param(pn).betas[cat] = b
		if !seenCat[cat] {
			seenCat[cat] = true
			g.cats = append(g.cats, cat)
		}
	}
	for _, name := range order {
		g.params = append(g.params, byName[name])
	}
	if g.classify {
		g.allCats = m.cats
		if len(g.allCats) == 0 {
			return nil, errAt(n, "classification needs the target's categories")
		}
		if g.reference == "" {
			for _, c := range g.allCats {
				if !seenCat[c] {
					g.reference = c
					break
				}
			}
		}
	}
	return g, nil
}

// eta computes the linear predictor for one category; ok is false when a
// needed input is missing.
func (g *glmCore) eta(s *scope, cat string) (float64, bool) {
	y := g.offset
	if g.offsetVar != "" {
		o, ok := s.get(g.offsetVar).number()
		if !ok {
			return 0, false
		}
		y += o
	}
	for _, p := range g.params {
		// A PCell without targetCategory applies to every category.
		b, ok := p.betas[cat]
		if cat != "" {
			if shared, ok2 := p.betas[""]; ok2 {
				b, ok = b+shared, true
			}
		}
		if !ok || b == 0 {
			continue
		}
		x := 1.0
		for _, c := range p.cells {
			v := s.get(c.predictor)
			if !v.ok {
				return 0, false
			}
			if c.factor {
				if !v.equalTo(c.val.s, c.val.f, c.val.fok) {
					x = 0
				}
				continue
			}
			f, ok := v.number()
			if !ok {
				return 0, false
			}
			x *= math.Pow(f, c.val.f)
		}
		y += b * x
	}
	return y, true
}

func (g *glmCore) inverse(eta float64) float64 {
	switch g.modelType {
	case "regression", "generalLinear":
		return eta
	}
	switch g.link {
	case "identity":
		return eta
	case "power":
		if g.linkParam == 0 {
			return math.Exp(eta)
		}
		return math.Pow(eta, 1/g.linkParam)
	}
	return inverseLink(g.link, eta)
}

func (g *glmCore) eval(s *scope) (result, error) {
	if !g.classify {
		e, ok := g.eta(s, "")
		if !ok {
			return result{}, nil
		}
		y := g.inverse(e)
		if g.modelType == "generalizedLinear" {
			t := g.trials
			if g.trialsVar != "" {
				if t, ok = s.get(g.trialsVar).number(); !ok {
					return result{}, nil
				}
			}
			y *= t
		}
		return result{val: numValue(y)}, nil
	}
	ps := make([]float64, len(g.allCats))
	switch g.modelType {
	case "multinomialLogistic":
		etas := make([]float64, len(g.allCats))
		for i, c := range g.allCats {
			if c == g.reference {
				continue
			}
			e, ok := g.eta(s, c)
			if !ok {
				return result{}, nil
			}
			etas[i] = e
		}
		ps = normalizeScores("softmax", etas)
	case "ordinalMultinomial":
		link := g.cumLink
		prev := 0.0
		for i, c := range g.allCats {
			cum := 1.0
			if i < len(g.allCats)-1 {
				e, ok := g.eta(s, c)
				if !ok {
					return result{}, nil
				}
				cum = inverseLink(link, e)
			}
			ps[i] = cum - prev
			prev = cum
		}
	default:
		sum := 0.0
		ref := -1
		for i, c := range g.allCats {
			if c == g.reference {
				ref = i
				continue
			}
			e, ok := g.eta(s, c)
			if !ok {
				return result{}, nil
			}
			ps[i] = g.inverse(e)
			sum += ps[i]
		}
		if ref >= 0 {
			ps[ref] = 1 - sum
		}
	}
	return classResult(g.allCats, ps), nil
}
