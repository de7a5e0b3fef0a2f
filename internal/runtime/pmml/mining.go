package pmml

import (
	"math"
	"sort"
)

type segment struct {
	id     string
	pred   predicate
	weight float64
	model  *model
}

type miningCore struct {
	// floatMath sums in float32, starting from base (the Target's
	// rescaleConstant), in segment order: the order XGBoost adds trees in.
	floatMath bool
	base      float64
	method    string
	segments  []*segment
	classify  bool
	cats      []string
}

func (c *compiler) miningModel(n *node, m *model) (core, error) {
	if err := n.only(append(commonModelChildren, "Segmentation", "Embedded", "Regression", "DecisionTree")...); err != nil {
		return nil, err
	}
	seg := n.child("Segmentation")
	if seg == nil {
		return nil, errAt(n, "missing <Segmentation>")
	}
	if err := seg.only("Segment"); err != nil {
		return nil, err
	}
	mc := &miningCore{method: seg.attr("multipleModelMethod"), classify: m.classification(), cats: m.cats}
	if m.floatMath && mc.method == "sum" && !mc.classify {
		mc.floatMath = true
		if t := m.tgt; t != nil && t.factor == 1 && math.IsInf(t.min, -1) && math.IsInf(t.max, 1) && t.castInteger == "" {
			mc.base = t.constant
			m.baseInSum = true
		}
	}
	switch mc.method {
	case "sum", "average", "weightedAverage", "median", "max", "majorityVote", "weightedMajorityVote",
		"modelChain", "selectFirst":
	default:
		return nil, unsupported(seg, "multipleModelMethod "+mc.method)
	}
	for _, sn := range seg.children("Segment") {
		s := &segment{id: sn.attr("id")}
		var err error
		if s.weight, err = sn.floatOr("weight", 1); err != nil {
			return nil, err
		}
		pn := findPredicate(sn)
		if pn == nil {
			return nil, errAt(sn, "segment has no predicate")
		}
		if s.pred, err = c.predicate(pn); err != nil {
			return nil, err
		}
		var mn *node
		for _, k := range sn.kids {
			switch {
			case k.name == "Extension" || predicateNames[k.name]:
			case modelElements[k.name]:
				mn = k
			case knownUnsupportedModels[k.name]:
				return nil, unsupported(k, "model type")
			default:
				return nil, unsupported(k, "inside <Segment>")
			}
		}
		if mn == nil {
			return nil, errAt(sn, "segment has no model")
		}
		if s.model, err = c.model(mn); err != nil {
			return nil, err
		}
		if s.id == "" {
			s.id = formatNumber(float64(len(mc.segments) + 1))
		}
		mc.segments = append(mc.segments, s)
	}
	if len(mc.segments) == 0 {
		return nil, errAt(seg, "no segments")
	}
	return mc, nil
}

func (mc *miningCore) eval(s *scope) (result, error) {
	switch mc.method {
	case "selectFirst":
		for _, sg := range mc.segments {
			if sg.pred.test(s) == triTrue {
				r, _, err := sg.model.evaluate(s)
				if r.entity == "" {
					r.entity = sg.id
				}
				return r, err
			}
		}
		return result{}, nil
	case "modelChain":
		var last result
		for _, sg := range mc.segments {
			if sg.pred.test(s) != triTrue {
				continue
			}
			r, inner, err := sg.model.evaluate(s)
			if err != nil {
				return result{}, err
			}
			// The segment's Output fields become visible to the segments
			// after it.
			for i, v := range sg.model.computeOutputs(r, inner, nil) {
				s.set(sg.model.outputs[i].name, v)
			}
			last = r
		}
		return last, nil
	}
	if !mc.classify {
		switch mc.method {
		case "sum", "average", "weightedAverage", "max":
			return mc.accumulate(s)
		}
	}
	var results []result
	var weights []float64
	for _, sg := range mc.segments {
		if sg.pred.test(s) != triTrue {
			continue
		}
		r, _, err := sg.model.evaluate(s)
		if err != nil {
			return result{}, err
		}
		if !r.val.ok {
			if mc.method == "sum" || mc.method == "average" || mc.method == "weightedAverage" {
				return result{}, nil
			}
			continue
		}
		results = append(results, r)
		weights = append(weights, sg.weight)
	}
	if len(results) == 0 {
		return result{}, nil
	}
	if mc.classify {
		return mc.combineClasses(results, weights), nil
	}
	ys := make([]float64, len(results))
	for i, r := range results {
		y, ok := r.val.number()
		if !ok {
			return result{}, nil
		}
		ys[i] = y
	}
	var y float64
	switch mc.method {
	case "sum":
		for _, v := range ys {
			y += v
		}
	case "average":
		for _, v := range ys {
			y += v
		}
		y /= float64(len(ys))
	case "weightedAverage":
		tw := 0.0
		for i, v := range ys {
			y += weights[i] * v
			tw += weights[i]
		}
		y /= tw
	case "median":
		y = median(ys)
	case "max":
		y = math.Inf(-1)
		for _, v := range ys {
			y = math.Max(y, v)
		}
	default:
		// Votes over numeric predictions: the most frequent value.
		votes := map[string]float64{}
		for i, r := range results {
			w := 1.0
			if mc.method == "weightedMajorityVote" {
				w = weights[i]
			}
			votes[r.val.String()] += w
		}
		best := argmax(votes, nil)
		y, _ = parseNumber(best)
	}
	return result{val: numValue(y)}, nil
}

func (mc *miningCore) combineClasses(results []result, weights []float64) result {
	out := result{probs: map[string]float64{}}
	switch mc.method {
	case "majorityVote", "weightedMajorityVote":
		total := 0.0
		for i, r := range results {
			w := 1.0
			if mc.method == "weightedMajorityVote" {
				w = weights[i]
			}
			out.probs[r.val.String()] += w
			total += w
		}
		for k := range out.probs {
			out.probs[k] /= total
		}
	case "average", "weightedAverage", "sum", "median", "max":
		tw := 0.0
		perCat := map[string][]float64{}
		for i, r := range results {
			w := 1.0
			if mc.method == "weightedAverage" {
				w = weights[i]
			}
			tw += w
			for k, p := range r.probs {
				out.probs[k] += w * p
				perCat[k] = append(perCat[k], p)
			}
		}
		switch mc.method {
		case "average", "weightedAverage":
			for k := range out.probs {
				out.probs[k] /= tw
			}
		case "median":
			for k, ps := range perCat {
				out.probs[k] = median(ps)
			}
		case "max":
			for k, ps := range perCat {
				sort.Float64s(ps)
				out.probs[k] = ps[len(ps)-1]
			}
		}
	}
	out.val = strValue(argmax(out.probs, mc.cats))
	return out
}

// accumulate combines numeric predictions without collecting them, the
// hot path of boosted ensembles. Segment results are added in segment
// order, as exporters of boosted trees assume.
func (mc *miningCore) accumulate(s *scope) (result, error) {
	y, tw, n := 0.0, 0.0, 0
	if mc.method == "max" {
		y = math.Inf(-1)
	}
	y32 := float32(mc.base)
	for _, sg := range mc.segments {
		if sg.pred.test(s) != triTrue {
			continue
		}
		r, _, err := sg.model.evaluate(s)
		if err != nil {
			return result{}, err
		}
		v, ok := r.val.number()
		if !ok {
			if mc.method == "max" {
				continue
			}
			return result{}, nil
		}
		n++
		switch mc.method {
		case "weightedAverage":
			y += sg.weight * v
			tw += sg.weight
		case "max":
			y = math.Max(y, v)
		default:
			y += v
			y32 += float32(v)
		}
	}
	if n == 0 {
		return result{}, nil
	}
	if mc.floatMath {
		return result{val: numValue(float64(y32))}, nil
	}
	switch mc.method {
	case "average":
		y /= float64(n)
	case "weightedAverage":
		y /= tw
	}
	return result{val: numValue(y)}, nil
}
