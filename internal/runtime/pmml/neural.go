package pmml

import (
	"math"
)

type conn struct {
	from   int // index into the value slice
	weight float64
}

type neuron struct {
	bias float64
	in   []conn
}

type neuralLayer struct {
	act       string
	threshold float64
	norm      string
	neurons   []neuron
	first     int // index of the layer's first neuron in the value slice
}

type neuralOutput struct {
	neuron int
	cat    string // NormDiscrete category, classification
	norm   *normContinuous
}

type neuralCore struct {
	inputs   []expr
	layers   []neuralLayer
	outputs  []neuralOutput
	classify bool
	cats     []string
}

func (c *compiler) neuralNetwork(n *node, m *model) (core, error) {
	if err := n.only(append(commonModelChildren, "NeuralInputs", "NeuralLayer", "NeuralOutputs")...); err != nil {
		return nil, err
	}
	nc := &neuralCore{classify: m.classification()}
	index := map[string]int{}
	ni := n.child("NeuralInputs")
	if ni == nil {
		return nil, errAt(n, "missing <NeuralInputs>")
	}
	for _, in := range ni.children("NeuralInput") {
		d := in.child("DerivedField")
		if d == nil {
			return nil, errAt(in, "missing <DerivedField>")
		}
		f, err := c.derived(d)
		if err != nil {
			return nil, err
		}
		index[in.attr("id")] = len(nc.inputs)
		nc.inputs = append(nc.inputs, f.expr)
	}
	defAct := n.attrOr("activationFunction", "")
	defNorm := n.attrOr("normalizationMethod", "none")
	defThr, err := n.floatOr("threshold", 0)
	if err != nil {
		return nil, err
	}
	count := len(nc.inputs)
	for _, ln := range n.children("NeuralLayer") {
		l := neuralLayer{act: ln.attrOr("activationFunction", defAct), norm: ln.attrOr("normalizationMethod", defNorm), first: count}
		if l.threshold, err = ln.floatOr("threshold", defThr); err != nil {
			return nil, err
		}
		switch l.act {
		case "threshold", "logistic", "tanh", "identity", "exponential", "reciprocal", "square", "Gauss",
			"sine", "cosine", "Elliott", "arctan", "rectifier":
		default:
			return nil, unsupported(ln, "activationFunction "+l.act)
		}
		switch l.norm {
		case "none", "simplemax", "softmax":
		default:
			return nil, unsupported(ln, "normalizationMethod "+l.norm)
		}
		for _, nn := range ln.children("Neuron") {
			var nr neuron
			if nr.bias, err = nn.floatOr("bias", 0); err != nil {
				return nil, err
			}
			for _, cn := range nn.children("Con") {
				from, ok := index[cn.attr("from")]
				if !ok {
					return nil, errAt(cn, "connection from unknown neuron %q", cn.attr("from"))
				}
				w, err := cn.float("weight")
				if err != nil {
					return nil, err
				}
				nr.in = append(nr.in, conn{from: from, weight: w})
			}
			index[nn.attr("id")] = count
			count++
			l.neurons = append(l.neurons, nr)
		}
		nc.layers = append(nc.layers, l)
	}
	no := n.child("NeuralOutputs")
	if no == nil {
		return nil, errAt(n, "missing <NeuralOutputs>")
	}
	for _, o := range no.children("NeuralOutput") {
		idx, ok := index[o.attr("outputNeuron")]
		if !ok {
			return nil, errAt(o, "unknown outputNeuron %q", o.attr("outputNeuron"))
		}
		d := o.child("DerivedField")
		if d == nil {
			return nil, errAt(o, "missing <DerivedField>")
		}
		out := neuralOutput{neuron: idx}
		var body *node
		for _, k := range d.kids {
			if k.name != "Extension" {
				body = k
			}
		}
		if body == nil {
			return nil, errAt(d, "DerivedField has no expression")
		}
		switch body.name {
		case "NormDiscrete":
			out.cat = body.attr("value")
			nc.cats = append(nc.cats, out.cat)
		case "FieldRef":
		case "NormContinuous":
			e, err := c.expr(body)
			if err != nil {
				return nil, err
			}
			nc2 := e.(normContinuous)
			out.norm = &nc2
		default:
			return nil, unsupported(body, "in a NeuralOutput")
		}
		nc.outputs = append(nc.outputs, out)
	}
	return nc, nil
}

func activate(act string, z, threshold float64) float64 {
	switch act {
	case "threshold":
		if z > threshold {
			return 1
		}
		return 0
	case "logistic":
		return 1 / (1 + math.Exp(-z))
	case "tanh":
		return math.Tanh(z)
	case "exponential":
		return math.Exp(z)
	case "reciprocal":
		return 1 / z
	case "square":
		return z * z
	case "Gauss":
		return math.Exp(-z * z)
	case "sine":
		return math.Sin(z)
	case "cosine":
		return math.Cos(z)
	case "Elliott":
		return z / (1 + math.Abs(z))
	case "arctan":
		return 2 * math.Atan(z) / math.Pi
	case "rectifier":
		return math.Max(0, z)
	}
	return z
}

func (nc *neuralCore) eval(s *scope) (result, error) {
	total := len(nc.inputs)
	for _, l := range nc.layers {
		total += len(l.neurons)
	}
	vals := make([]float64, total)
	for i, e := range nc.inputs {
		x, ok := e.eval(s).number()
		if !ok {
			return result{}, nil
		}
		vals[i] = x
	}
	for _, l := range nc.layers {
		out := vals[l.first : l.first+len(l.neurons)]
		for j, nr := range l.neurons {
			z := nr.bias
			for _, c := range nr.in {
				z += c.weight * vals[c.from]
			}
			out[j] = activate(l.act, z, l.threshold)
		}
		switch l.norm {
		case "softmax":
			copy(out, normalizeScores("softmax", out))
		case "simplemax":
			copy(out, normalizeScores("simplemax", out))
		}
	}
	if nc.classify {
		r := result{probs: map[string]float64{}}
		for _, o := range nc.outputs {
			if o.cat != "" {
				r.probs[o.cat] = vals[o.neuron]
			}
		}
		r.val = strValue(argmax(r.probs, nc.cats))
		return r, nil
	}
	if len(nc.outputs) == 0 {
		return result{}, nil
	}
	o := nc.outputs[0]
	y := vals[o.neuron]
	if o.norm != nil {
		y = o.norm.inverse(y)
	}
	return result{val: numValue(y)}, nil
}
