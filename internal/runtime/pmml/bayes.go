package pmml

import (
	"math"
)

type bayesInput struct {
	field  string
	derive expr
	counts map[string]map[string]float64 // input value → target value → count
	totals map[string]float64            // target value → sum over input values
	gauss  map[string][2]float64         // target value → mean, variance
	poiss  map[string]float64            // target value → mean
}

type bayesCore struct {
	threshold float64
	// clampBelow: PMML 4.2 and later use the threshold for densities
	// below it; earlier versions only for zero.
	clampBelow bool
	inputs     []*bayesInput
	cats       []string
	prior      []float64
}

func (c *compiler) naiveBayes(n *node, m *model) (core, error) {
	if err := n.only(append(commonModelChildren, "BayesInputs", "BayesOutput")...); err != nil {
		return nil, err
	}
	if !m.classification() {
		return nil, unsupported(n, "a regression NaiveBayesModel")
	}
	b := &bayesCore{clampBelow: c.version >= 4.2}
	var err error
	if b.threshold, err = n.float("threshold"); err != nil {
		return nil, err
	}
	out := n.child("BayesOutput")
	if out == nil || out.child("TargetValueCounts") == nil {
		return nil, errAt(n, "missing <BayesOutput> with <TargetValueCounts>")
	}
	for _, tc := range out.child("TargetValueCounts").children("TargetValueCount") {
		v, err := tc.required("value")
		if err != nil {
			return nil, err
		}
		k, err := tc.float("count")
		if err != nil {
			return nil, err
		}
		b.cats = append(b.cats, v)
		b.prior = append(b.prior, k)
	}
	ins := n.child("BayesInputs")
	if ins == nil {
		return nil, errAt(n, "missing <BayesInputs>")
	}
	// The R pmml package wraps inputs with TargetValueStats in an
	// Extension (PMML 4.1 had no place for them); R scores with them, so
	// read them too.
	var inputs []*node
	for _, k := range ins.kids {
		switch k.name {
		case "BayesInput":
			inputs = append(inputs, k)
		case "Extension":
			inputs = append(inputs, k.children("BayesInput")...)
		default:
			return nil, unsupported(k, "inside <BayesInputs>")
		}
	}
	for _, bn := range inputs {
		if err := bn.only("DerivedField", "PairCounts", "TargetValueStats"); err != nil {
			return nil, err
		}
		in := &bayesInput{counts: map[string]map[string]float64{}, totals: map[string]float64{}}
		if in.field, err = bn.required("fieldName"); err != nil {
			return nil, err
		}
		if d := bn.child("DerivedField"); d != nil {
			f, err := c.derived(d)
			if err != nil {
				return nil, err
			}
			in.derive = f.expr
		}
		for _, pc := range bn.children("PairCounts") {
			v, err := pc.required("value")
			if err != nil {
				return nil, err
			}
			tvc := pc.child("TargetValueCounts")
			if tvc == nil {
				return nil, errAt(pc, "missing <TargetValueCounts>")
			}
			row := map[string]float64{}
			for _, tc := range tvc.children("TargetValueCount") {
				k, err := tc.float("count")
				if err != nil {
					return nil, err
				}
				row[tc.attr("value")] = k
				in.totals[tc.attr("value")] += k
			}
			in.counts[v] = row
		}
		if ts := bn.child("TargetValueStats"); ts != nil {
			for _, st := range ts.children("TargetValueStat") {
				v := st.attr("value")
				for _, d := range st.kids {
					switch d.name {
					case "Extension":
					case "GaussianDistribution":
						mean, err := d.float("mean")
						if err != nil {
							return nil, err
						}
						vr, err := d.float("variance")
						if err != nil {
							return nil, err
						}
						if vr <= 0 {
							return nil, errAt(d, "variance must be positive")
						}
						if in.gauss == nil {
							in.gauss = map[string][2]float64{}
						}
						in.gauss[v] = [2]float64{mean, vr}
					case "PoissonDistribution":
						mean, err := d.float("mean")
						if err != nil {
							return nil, err
						}
						if in.poiss == nil {
							in.poiss = map[string]float64{}
						}
						in.poiss[v] = mean
					default:
						return nil, unsupported(d, "in a NaiveBayes TargetValueStat")
					}
				}
			}
		}
		b.inputs = append(b.inputs, in)
	}
	return b, nil
}

func (b *bayesCore) eval(s *scope) (result, error) {
	logp := make([]float64, len(b.cats))
	for i, p := range b.prior {
		logp[i] = math.Log(p)
	}
	for _, in := range b.inputs {
		var v value
		if in.derive != nil {
			v = in.derive.eval(s)
		} else {
			v = s.get(in.field)
		}
		if !v.ok {
			continue
		}
		switch {
		case in.gauss != nil || in.poiss != nil:
			x, ok := v.number()
			if !ok {
				continue
			}
			for i, c := range b.cats {
				var p float64
				if g, ok := in.gauss[c]; ok {
					d := x - g[0]
					p = math.Exp(-d*d/(2*g[1])) / math.Sqrt(2*math.Pi*g[1])
				} else if mu, ok := in.poiss[c]; ok {
					lg, _ := math.Lgamma(x + 1)
					p = math.Exp(x*math.Log(mu) - mu - lg)
				} else {
					continue
				}
				if p == 0 || (b.clampBelow && p < b.threshold) {
					p = b.threshold
				}
				logp[i] += math.Log(p)
			}
		default:
			row, ok := in.counts[v.String()]
			if !ok {
				// A value not seen in training carries no evidence.
				continue
			}
			for i, c := range b.cats {
				p := 0.0
				if t := in.totals[c]; t > 0 {
					p = row[c] / t
				}
				if p == 0 {
					p = b.threshold
				}
				logp[i] += math.Log(p)
			}
		}
	}
	mx := math.Inf(-1)
	for _, l := range logp {
		mx = math.Max(mx, l)
	}
	ps := make([]float64, len(logp))
	sum := 0.0
	for i, l := range logp {
		ps[i] = math.Exp(l - mx)
		sum += ps[i]
	}
	for i := range ps {
		ps[i] /= sum
	}
	return classResult(b.cats, ps), nil
}
