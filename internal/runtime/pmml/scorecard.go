package pmml

import (
	"fmt"
	"sort"

	fr "github.com/ferryserve/ferry/internal/runtime"
)

type scoreAttribute struct {
	pred    predicate
	score   float64
	complex expr
	reason  string
}

type characteristic struct {
	name     string
	reason   string
	baseline float64
	attrs    []scoreAttribute
}

type scorecardCore struct {
	initial float64
	useRC   bool
	below   bool
	chars   []characteristic
}

func (c *compiler) scorecard(n *node, m *model) (core, error) {
	if err := n.only(append(commonModelChildren, "Characteristics")...); err != nil {
		return nil, err
	}
	sc := &scorecardCore{useRC: n.attrOr("useReasonCodes", "true") == "true"}
	switch n.attrOr("reasonCodeAlgorithm", "pointsBelow") {
	case "pointsBelow":
		sc.below = true
	case "pointsAbove":
	default:
		return nil, unsupported(n, "reasonCodeAlgorithm "+n.attr("reasonCodeAlgorithm"))
	}
	var err error
	if sc.initial, err = n.floatOr("initialScore", 0); err != nil {
		return nil, err
	}
	modelBase, hasBase := 0.0, n.has("baselineScore")
	if hasBase {
		if modelBase, err = n.float("baselineScore"); err != nil {
			return nil, err
		}
	}
	cs := n.child("Characteristics")
	if cs == nil {
		return nil, errAt(n, "missing <Characteristics>")
	}
	for _, cn := range cs.children("Characteristic") {
		if err := cn.only("Attribute"); err != nil {
			return nil, err
		}
		ch := characteristic{name: cn.attr("name"), reason: cn.attr("reasonCode"), baseline: modelBase}
		if cn.has("baselineScore") {
			if ch.baseline, err = cn.float("baselineScore"); err != nil {
				return nil, err
			}
		} else if sc.useRC && !hasBase {
			return nil, errAt(cn, "reason codes need a baselineScore")
		}
		for _, an := range cn.children("Attribute") {
			a := scoreAttribute{reason: an.attrOr("reasonCode", ch.reason)}
			pn := findPredicate(an)
			if pn == nil {
				return nil, errAt(an, "attribute has no predicate")
			}
			if a.pred, err = c.predicate(pn); err != nil {
				return nil, err
			}
			if cp := an.child("ComplexPartialScore"); cp != nil {
				var body *node
				for _, k := range cp.kids {
					if k.name != "Extension" {
						body = k
					}
				}
				if body == nil {
					return nil, errAt(cp, "no expression")
				}
				if a.complex, err = c.expr(body); err != nil {
					return nil, err
				}
			} else if a.score, err = an.float("partialScore"); err != nil {
				return nil, err
			}
			ch.attrs = append(ch.attrs, a)
		}
		sc.chars = append(sc.chars, ch)
	}
	return sc, nil
}

func (sc *scorecardCore) eval(s *scope) (result, error) {
	total := sc.initial
	points := map[string]float64{}
	var order []string
	for _, ch := range sc.chars {
		var hit *scoreAttribute
		for i := range ch.attrs {
			if ch.attrs[i].pred.test(s) == triTrue {
				hit = &ch.attrs[i]
				break
			}
		}
		if hit == nil {
			return result{}, fmt.Errorf("%w: no attribute of characteristic %q matches the record", fr.ErrInvalidInput, ch.name)
		}
		score := hit.score
		if hit.complex != nil {
			v, ok := hit.complex.eval(s).number()
			if !ok {
				return result{}, nil
			}
			score = v
		}
		total += score
		if sc.useRC && hit.reason != "" {
			d := score - ch.baseline
			if sc.below {
				d = ch.baseline - score
			}
			if _, seen := points[hit.reason]; !seen {
				order = append(order, hit.reason)
			}
			points[hit.reason] += d
		}
	}
	r := result{val: numValue(total)}
	var ranked []string
	for _, rc := range order {
		if points[rc] > 0 {
			ranked = append(ranked, rc)
		}
	}
	sort.SliceStable(ranked, func(i, j int) bool { return points[ranked[i]] > points[ranked[j]] })
	r.reason = ranked
	return r, nil
}
