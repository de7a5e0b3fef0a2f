package sklearn

import (
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
)

// node is one split of a fitted sklearn Tree; left < 0 marks a leaf.
type node struct {
	left, right int32
	feature     int32
	missingLeft bool
	threshold   float64
}

// tree is sklearn.tree._tree.Tree: nodes in depth-first order and, per
// node, nValues values (class counts or fractions, or one regression value).
type tree struct {
	nodes   []node
	values  []float64
	nValues int
	// perf is the perfect layout prediction walks (perfect.go), nil for
	// trees that do not fit it or are read only to be laid open.
	perf *perfTree
}

// readTree decodes a pickled Tree. Children must come after their parent,
// as sklearn's builders write them, so every walk ends.
func readTree(v any, nFeatures int) (*tree, error) {
	po, ok := v.(*pickle.Object)
	if !ok || po.Class.Name != "Tree" {
		return nil, fmt.Errorf("%w: tree_ is %s, want sklearn.tree._tree.Tree", runtime.ErrCorruptModel, pickle.Describe(v))
	}
	o, err := asObj(v)
	if err != nil {
		return nil, err
	}
	if len(po.Args) == 3 {
		if no, ok := pickle.Number(po.Args[2]); ok && no != 1 {
			return nil, fmt.Errorf("%w: trees with %v outputs (multi-output)", runtime.ErrUnsupported, no)
		}
	}
	nodes, err := o.array("nodes")
	if err != nil {
		return nil, err
	}
	cnt := nodes.Len()
	left, err := nodes.FieldFloat64s("left_child")
	if err != nil {
		return nil, o.errf("nodes: %v", err)
	}
	right, err := nodes.FieldFloat64s("right_child")
	if err != nil {
		return nil, o.errf("nodes: %v", err)
	}
	feat, err := nodes.FieldFloat64s("feature")
	if err != nil {
		return nil, o.errf("nodes: %v", err)
	}
	thr, err := nodes.FieldFloat64s("threshold")
	if err != nil {
		return nil, o.errf("nodes: %v", err)
	}
	// sklearn >= 1.3 records where missing values go; before that NaN
	// fails "x <= threshold" and goes right.
	var missingLeft []float64
	if _, ok := nodes.Dtype.Field("missing_go_to_left"); ok {
		if missingLeft, err = nodes.FieldFloat64s("missing_go_to_left"); err != nil {
			return nil, o.errf("nodes: %v", err)
		}
	}
	vals, vshape, err := o.floats("values")
	if err != nil {
		return nil, err
	}
	if cnt == 0 || len(vshape) != 3 || vshape[0] != cnt || vshape[1] != 1 || vshape[2] == 0 {
		return nil, o.errf("values shape %v does not fit %d nodes", vshape, cnt)
	}
	t := &tree{nodes: make([]node, cnt), values: vals, nValues: vshape[2]}
	for i := range t.nodes {
		l, r, f := int(left[i]), int(right[i]), int(feat[i])
		if l < 0 {
			t.nodes[i] = node{left: -1, right: -1}
			continue
		}
		if l <= i || r <= i || l >= cnt || r >= cnt || f < 0 || f >= nFeatures {
			return nil, o.errf("node %d has children %d, %d and feature %d (of %d nodes, %d features)", i, l, r, f, cnt, nFeatures)
		}
		t.nodes[i] = node{left: int32(l), right: int32(r), feature: int32(f), threshold: thr[i]}
		if missingLeft != nil && missingLeft[i] != 0 {
			t.nodes[i].missingLeft = true
		}
	}
	return t, nil
}

// leaf returns the leaf a row lands in. sklearn evaluates trees on float32
// copies of the input, so the row is rounded to float32 before comparing.
func (t *tree) leaf(x []float64) int {
	i := 0
	for {
		n := &t.nodes[i]
		if n.left < 0 {
			return i
		}
		// Written as a select rather than if/else so the compiler can use a
		// conditional move: random rows mispredict tree branches.
		v := float64(float32(x[n.feature]))
		next := n.right
		if v <= n.threshold || (n.missingLeft && v != v) {
			next = n.left
		}
		i = int(next)
	}
}

func (t *tree) value(x []float64) []float64 {
	l := t.leaf(x)
	return t.values[l*t.nValues : (l+1)*t.nValues]
}

// treeClassifier is DecisionTreeClassifier / ExtraTreeClassifier.
type treeClassifier struct {
	labels labels
	tree   *tree
}

func readTreeModel(o obj) (*tree, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	if no, err := o.int("n_outputs_"); err == nil && no != 1 {
		return nil, 0, fmt.Errorf("%w: %s with %d outputs (multi-output)", runtime.ErrUnsupported, o.cls, no)
	}
	tv, _ := o.get("tree_")
	t, err := readTree(tv, n)
	return t, n, err
}

func buildTreeClassifier(o obj) (any, int, error) {
	t, n, err := readTreeModel(o)
	if err != nil {
		return nil, 0, err
	}
	l, err := readLabels(o)
	if err != nil {
		return nil, 0, err
	}
	if t.nValues != l.len() {
		return nil, 0, o.errf("tree has %d values per node for %d classes", t.nValues, l.len())
	}
	t.normalizeLeaves()
	t.buildPerfect(n)
	return &treeClassifier{labels: l, tree: t}, n, nil
}

func (c *treeClassifier) classes() labels    { return c.labels }
func (c *treeClassifier) hasProba() bool     { return true }
func (c *treeClassifier) decisionWidth() int { return 0 }

func (c *treeClassifier) classify(x mat) classResult {
	k := c.labels.len()
	p := newMat(x.rows, k)
	c.tree.leafValues(x, p.data)
	idx := make([]int, x.rows)
	for i := range idx {
		idx[i] = argmax(p.row(i))
	}
	return classResult{idx: idx, proba: p}
}

// normalizeLeaves turns every leaf's class weights into the probabilities
// predict_proba reports, once at load instead of per row.
func (t *tree) normalizeLeaves() {
	for i, n := range t.nodes {
		if n.left < 0 {
			normalize(t.values[i*t.nValues : (i+1)*t.nValues])
		}
	}
}

// normalize divides by the sum unless it is zero (DecisionTreeClassifier.predict_proba).
func normalize(p []float64) {
	s := 0.0
	for _, v := range p {
		s += v
	}
	if s == 0 {
		return
	}
	for i := range p {
		p[i] /= s
	}
}

// treeRegressor is DecisionTreeRegressor / ExtraTreeRegressor.
type treeRegressor struct{ tree *tree }

func buildTreeRegressor(o obj) (any, int, error) {
	t, n, err := readTreeModel(o)
	if err != nil {
		return nil, 0, err
	}
	if t.nValues != 1 {
		return nil, 0, o.errf("regression tree has %d values per node", t.nValues)
	}
	t.buildPerfect(n)
	return &treeRegressor{tree: t}, n, nil
}

func (r *treeRegressor) regress(x mat) []float64 {
	y := make([]float64, x.rows)
	r.tree.leafValues(x, y)
	return y
}
