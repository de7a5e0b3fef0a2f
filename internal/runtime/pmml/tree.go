package pmml

// treeNode is one Node of a TreeModel.
type treeNode struct {
	id           string
	pred         predicate
	score        value
	count        float64
	hasCount     bool
	dist         []scoreDist
	kids         []*treeNode
	defaultChild *treeNode
	// probs and conf are the node's class probabilities and confidences,
	// computed once at load and shared (read-only) by every result.
	probs, conf map[string]float64
}

type scoreDist struct {
	val               string
	count, conf, prob float64
	hasConf, hasProb  bool
}

type treeCore struct {
	root     *treeNode
	strategy string
	noTrue   string
	penalty  float64
	classify bool
}

func (c *compiler) treeModel(n *node, m *model) (core, error) {
	if err := n.only(append(commonModelChildren, "Node")...); err != nil {
		return nil, err
	}
	t := &treeCore{
		strategy: n.attrOr("missingValueStrategy", "none"),
		noTrue:   n.attrOr("noTrueChildStrategy", "returnNullPrediction"),
		classify: m.classification(),
	}
	switch t.strategy {
	case "none", "lastPrediction", "nullPrediction", "defaultChild", "weightedConfidence", "aggregateNodes":
	default:
		return nil, unsupported(n, "missingValueStrategy "+t.strategy)
	}
	switch t.noTrue {
	case "returnNullPrediction", "returnLastPrediction":
	default:
		return nil, unsupported(n, "noTrueChildStrategy "+t.noTrue)
	}
	var err error
	if t.penalty, err = n.floatOr("missingValuePenalty", 1); err != nil {
		return nil, err
	}
	rn := n.child("Node")
	if rn == nil {
		return nil, errAt(n, "missing root <Node>")
	}
	if t.root, err = c.treeNode(rn, t.classify); err != nil {
		return nil, err
	}
	return t, nil
}

func (c *compiler) treeNode(n *node, classify bool) (*treeNode, error) {
	if err := n.only("SimplePredicate", "CompoundPredicate", "SimpleSetPredicate", "True", "False",
		"Partition", "ScoreDistribution", "Node"); err != nil {
		return nil, err
	}
	pn := findPredicate(n)
	if pn == nil {
		return nil, errAt(n, "node has no predicate")
	}
	p, err := c.predicate(pn)
	if err != nil {
		return nil, err
	}
	t := &treeNode{id: n.attr("id"), pred: p}
	if s, ok := n.attrs["score"]; ok {
		if classify {
			t.score = strValue(s)
		} else {
			f, err := parseNumber(s)
			if err != nil {
				return nil, errAt(n, "score %q is not a number", s)
			}
			t.score = numValue(f)
		}
	}
	if n.has("recordCount") {
		if t.count, err = n.float("recordCount"); err != nil {
			return nil, err
		}
		t.hasCount = true
	}
	for _, d := range n.children("ScoreDistribution") {
		sd := scoreDist{}
		if sd.val, err = d.required("value"); err != nil {
			return nil, err
		}
		if sd.count, err = d.float("recordCount"); err != nil {
			return nil, err
		}
		if d.has("confidence") {
			if sd.conf, err = d.float("confidence"); err != nil {
				return nil, err
			}
			sd.hasConf = true
		}
		if d.has("probability") {
			if sd.prob, err = d.float("probability"); err != nil {
				return nil, err
			}
			sd.hasProb = true
		}
		t.dist = append(t.dist, sd)
	}
	for _, k := range n.children("Node") {
		kn, err := c.treeNode(k, classify)
		if err != nil {
			return nil, err
		}
		t.kids = append(t.kids, kn)
	}
	if classify {
		t.distributions()
	}
	if dc := n.attr("defaultChild"); dc != "" {
		for _, k := range t.kids {
			if k.id == dc {
				t.defaultChild = k
			}
		}
		if t.defaultChild == nil {
			return nil, errAt(n, "defaultChild %q is not a child node", dc)
		}
	}
	return t, nil
}

func (t *treeCore) eval(s *scope) (result, error) {
	if t.root.pred.test(s) != triTrue {
		return result{}, nil
	}
	switch t.strategy {
	case "weightedConfidence", "aggregateNodes":
		if r, ok := t.aggregate(s); ok {
			return r, nil
		}
	}
	cur, mult := t.root, 1.0
	for len(cur.kids) > 0 {
		var next *treeNode
	children:
		for _, k := range cur.kids {
			switch k.pred.test(s) {
			case triTrue:
				next = k
				break children
			case triUnknown:
				switch t.strategy {
				case "lastPrediction":
					return t.leaf(cur, mult), nil
				case "nullPrediction":
					return result{}, nil
				case "defaultChild":
					if cur.defaultChild == nil {
						return t.leaf(cur, mult), nil
					}
					next = cur.defaultChild
					mult *= t.penalty
					break children
				}
			}
		}
		if next == nil {
			if t.noTrue == "returnLastPrediction" {
				return t.leaf(cur, mult), nil
			}
			return result{}, nil
		}
		cur = next
	}
	return t.leaf(cur, mult), nil
}

// leaf turns the node a traversal ended in into a result; mult is the
// accumulated missing-value penalty applied to confidences.
func (t *treeCore) leaf(n *treeNode, mult float64) result {
	r := result{val: n.score, entity: n.id}
	if !t.classify {
		return r
	}
	r.probs, r.conf = n.probs, n.conf
	if mult != 1 && n.conf != nil {
		r.conf = make(map[string]float64, len(n.conf))
		for k, c := range n.conf {
			r.conf[k] = c * mult
		}
	}
	if !r.val.ok && r.probs != nil {
		r.val = strValue(argmax(r.probs, nil))
	}
	return r
}

// distributions fills n.probs and n.conf from its ScoreDistributions.
func (n *treeNode) distributions() {
	total := 0.0
	for _, d := range n.dist {
		total += d.count
	}
	if len(n.dist) > 0 {
		n.probs = make(map[string]float64, len(n.dist))
		n.conf = make(map[string]float64, len(n.dist))
		for _, d := range n.dist {
			p := 0.0
			switch {
			case d.hasProb:
				p = d.prob
			case total > 0:
				p = d.count / total
			}
			n.probs[d.val] = p
			c := p
			if d.hasConf {
				c = d.conf
			}
			n.conf[d.val] = c
		}
	} else if n.score.ok {
		n.probs = map[string]float64{n.score.str: 1}
		n.conf = n.probs
	}
}

// aggregate implements weightedConfidence and aggregateNodes; ok is false
// when no predicate was unknown, so the plain traversal applies.
func (t *treeCore) aggregate(s *scope) (result, bool) {
	dist, hit, unknown := t.collect(t.root, s)
	if !unknown {
		return result{}, false
	}
	if !hit || len(dist) == 0 {
		return result{}, true
	}
	r := result{}
	if t.strategy == "aggregateNodes" {
		total := 0.0
		for _, v := range dist {
			total += v
		}
		r.probs = map[string]float64{}
		for k, v := range dist {
			if total > 0 {
				r.probs[k] = v / total
			}
		}
	} else {
		r.probs = dist
	}
	r.conf = r.probs
	order := make([]string, 0, len(t.root.dist))
	for _, d := range t.root.dist {
		order = append(order, d.val)
	}
	r.val = strValue(argmax(r.probs, order))
	return r, true
}

// collect returns, for the subtree at n, the record counts
// (aggregateNodes) or confidences (weightedConfidence) it predicts.
func (t *treeCore) collect(n *treeNode, s *scope) (dist map[string]float64, hit, unknown bool) {
	if len(n.kids) == 0 {
		return t.own(n), true, false
	}
	var set []*treeNode
	for _, k := range n.kids {
		r := k.pred.test(s)
		if r == triUnknown {
			unknown = true
			set = append(set, k)
			continue
		}
		if r == triTrue {
			set = append(set, k)
			break
		}
	}
	if len(set) == 0 {
		if t.noTrue == "returnLastPrediction" {
			return t.own(n), true, unknown
		}
		return nil, false, unknown
	}
	if len(set) == 1 && !unknown {
		return t.collect(set[0], s)
	}
	dist = map[string]float64{}
	weight := 0.0
	for _, k := range set {
		d, ok, _ := t.collect(k, s)
		if !ok {
			continue
		}
		hit = true
		w := k.count
		if t.strategy == "aggregateNodes" {
			w = 1
		}
		weight += w
		for c, v := range d {
			dist[c] += w * v
		}
	}
	if t.strategy == "weightedConfidence" && weight > 0 {
		for c := range dist {
			dist[c] /= weight
		}
	}
	return dist, hit, true
}

func (t *treeCore) own(n *treeNode) map[string]float64 {
	out := make(map[string]float64, len(n.dist))
	total := 0.0
	for _, d := range n.dist {
		total += d.count
	}
	for _, d := range n.dist {
		if t.strategy == "aggregateNodes" {
			out[d.val] = d.count
			continue
		}
		switch {
		case d.hasConf:
			out[d.val] = d.conf
		case d.hasProb:
			out[d.val] = d.prob
		case total > 0:
			out[d.val] = d.count / total
		}
	}
	return out
}
