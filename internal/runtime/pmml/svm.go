package pmml

import (
	"math"
	"strconv"
	"strings"
)

type kernel struct {
	kind                 string
	gamma, coef0, degree float64
}

func (k kernel) eval(a, b []float64) float64 {
	switch k.kind {
	case "RadialBasisKernelType":
		d := 0.0
		for i := range a {
			t := a[i] - b[i]
			d += t * t
		}
		return math.Exp(-k.gamma * d)
	}
	dot := 0.0
	for i := range a {
		dot += a[i] * b[i]
	}
	switch k.kind {
	case "PolynomialKernelType":
		return math.Pow(k.gamma*dot+k.coef0, k.degree)
	case "SigmoidKernelType":
		return math.Tanh(k.gamma*dot + k.coef0)
	}
	return dot
}

type machine struct {
	target, alternate string
	threshold         float64
	vectors           [][]float64
	coefs             []float64
	b                 float64
}

type svmCore struct {
	kernel   kernel
	fields   []string
	machines []machine
	coefRep  bool
	ovo      bool
	maxWins  bool
	classify bool
	cats     []string
}

func (c *compiler) svm(n *node, m *model) (core, error) {
	kernels := []string{"LinearKernelType", "PolynomialKernelType", "RadialBasisKernelType", "SigmoidKernelType"}
	if err := n.only(append(append(commonModelChildren, kernels...), "VectorDictionary", "SupportVectorMachine")...); err != nil {
		return nil, err
	}
	sc := &svmCore{classify: m.classification(), cats: m.cats, maxWins: n.attr("maxWins") == "true",
		coefRep: n.attr("svmRepresentation") == "Coefficients"}
	switch n.attrOr("classificationMethod", "") {
	case "OneAgainstOne":
		sc.ovo = true
	case "OneAgainstAll":
	case "":
		// PMML before 4.2 had no attribute; machines that name an
		// alternate category are one-against-one.
	default:
		return nil, unsupported(n, "classificationMethod "+n.attr("classificationMethod"))
	}
	var err error
	for _, kn := range kernels {
		if k := n.child(kn); k != nil {
			sc.kernel.kind = kn
			if sc.kernel.gamma, err = k.floatOr("gamma", 1); err != nil {
				return nil, err
			}
			if sc.kernel.coef0, err = k.floatOr("coef0", 1); err != nil {
				return nil, err
			}
			if sc.kernel.degree, err = k.floatOr("degree", 1); err != nil {
				return nil, err
			}
		}
	}
	if sc.kernel.kind == "" {
		return nil, errAt(n, "missing kernel type")
	}
	thr, err := n.floatOr("threshold", 0)
	if err != nil {
		return nil, err
	}
	vd := n.child("VectorDictionary")
	if vd == nil {
		return nil, errAt(n, "missing <VectorDictionary>")
	}
	if err := vd.only("VectorFields", "VectorInstance"); err != nil {
		return nil, err
	}
	if vf := vd.child("VectorFields"); vf != nil {
		if err := vf.only("FieldRef"); err != nil {
			return nil, err
		}
		for _, f := range vf.children("FieldRef") {
			sc.fields = append(sc.fields, f.attr("field"))
		}
	}
	vectors := map[string][]float64{}
	for _, vi := range vd.children("VectorInstance") {
		x, err := vectorOf(vi, len(sc.fields))
		if err != nil {
			return nil, err
		}
		vectors[vi.attr("id")] = x
	}
	for _, mn := range n.children("SupportVectorMachine") {
		mc := machine{target: mn.attr("targetCategory"), alternate: mn.attr("alternateTargetCategory")}
		if mc.threshold, err = mn.floatOr("threshold", thr); err != nil {
			return nil, err
		}
		if mc.alternate != "" && !n.has("classificationMethod") {
			sc.ovo = true
		}
		if svs := mn.child("SupportVectors"); svs != nil {
			for _, sv := range svs.children("SupportVector") {
				x, ok := vectors[sv.attr("vectorId")]
				if !ok {
					return nil, errAt(sv, "unknown vectorId %q", sv.attr("vectorId"))
				}
				mc.vectors = append(mc.vectors, x)
			}
		}
		cs := mn.child("Coefficients")
		if cs == nil {
			return nil, errAt(mn, "missing <Coefficients>")
		}
		if mc.b, err = cs.floatOr("absoluteValue", 0); err != nil {
			return nil, err
		}
		for _, cf := range cs.children("Coefficient") {
			v, err := cf.floatOr("value", 0)
			if err != nil {
				return nil, err
			}
			mc.coefs = append(mc.coefs, v)
		}
		want := len(mc.vectors)
		if sc.coefRep {
			want = len(sc.fields)
		}
		if len(mc.coefs) != want {
			return nil, errAt(cs, "%d coefficients, want %d", len(mc.coefs), want)
		}
		sc.machines = append(sc.machines, mc)
	}
	if len(sc.machines) == 0 {
		return nil, errAt(n, "no <SupportVectorMachine>")
	}
	return sc, nil
}

func vectorOf(vi *node, n int) ([]float64, error) {
	for _, k := range vi.kids {
		switch k.name {
		case "REAL-SparseArray", "INT-SparseArray":
			x := make([]float64, n)
			var idx, ent []string
			if in := k.child("Indices"); in != nil {
				idx = strings.Fields(in.text)
			}
			for _, en := range []string{"REAL-Entries", "INT-Entries"} {
				if e := k.child(en); e != nil {
					ent = strings.Fields(e.text)
				}
			}
			if len(idx) != len(ent) {
				return nil, errAt(k, "%d indices but %d entries", len(idx), len(ent))
			}
			for i := range idx {
				j, err := strconv.Atoi(idx[i])
				if err != nil || j < 1 || j > n {
					return nil, errAt(k, "index %q out of range 1..%d", idx[i], n)
				}
				v, err := parseNumber(ent[i])
				if err != nil {
					return nil, errAt(k, "entry %q is not a number", ent[i])
				}
				x[j-1] = v
			}
			return x, nil
		case "Array":
			items, err := parseArray(k)
			if err != nil {
				return nil, err
			}
			if len(items) != n {
				return nil, errAt(k, "%d values, want %d", len(items), n)
			}
			x := make([]float64, n)
			for i, it := range items {
				if x[i], err = parseNumber(it); err != nil {
					return nil, errAt(k, "value %q is not a number", it)
				}
			}
			return x, nil
		}
	}
	return nil, errAt(vi, "no array")
}

func (sc *svmCore) decide(mc *machine, x []float64) float64 {
	y := mc.b
	if sc.coefRep {
		for i, c := range mc.coefs {
			y += c * x[i]
		}
		return y
	}
	for i, v := range mc.vectors {
		y += mc.coefs[i] * sc.kernel.eval(x, v)
	}
	return y
}

func (sc *svmCore) eval(s *scope) (result, error) {
	x := make([]float64, len(sc.fields))
	for i, f := range sc.fields {
		v, ok := s.get(f).number()
		if !ok {
			return result{}, nil
		}
		x[i] = v
	}
	if !sc.classify {
		return result{val: numValue(sc.decide(&sc.machines[0], x))}, nil
	}
	if sc.ovo {
		votes := map[string]float64{}
		for i := range sc.machines {
			mc := &sc.machines[i]
			y := sc.decide(mc, x)
			win := y < mc.threshold
			if sc.maxWins {
				win = y > mc.threshold
			}
			if win {
				votes[mc.target]++
			} else {
				votes[mc.alternate]++
			}
		}
		return result{val: strValue(argmax(votes, sc.cats))}, nil
	}
	best, bestY := "", 0.0
	for i := range sc.machines {
		mc := &sc.machines[i]
		y := sc.decide(mc, x)
		if best == "" || (sc.maxWins && y > bestY) || (!sc.maxWins && y < bestY) {
			best, bestY = mc.target, y
		}
	}
	return result{val: strValue(best)}, nil
}
