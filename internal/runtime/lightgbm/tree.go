package lightgbm

import "math"

// decision_type bits, as LightGBM writes them.
const (
	flagCategorical = 1 << 0
	flagDefaultLeft = 1 << 1
)

// Missing-value types (decision_type bits 2-3).
const (
	missingNone = 0
	missingZero = 1
	missingNaN  = 2
)

// zeroThreshold is LightGBM's kZeroThreshold. It is declared there as the
// float literal 1e-35f, so its double value is float32(1e-35), not 1e-35.
var zeroThreshold = float64(float32(1e-35))

// node is one internal node. Children >= 0 are nodes; a negative child c
// is leaf ^c, as in LightGBM.
type node struct {
	threshold    float64
	feature      int32
	children     [2]int32 // left, right
	catLo, catHi int32    // categorical: the split's words in tree.catBits
	flags        uint8
}

func (n *node) categorical() bool { return n.flags&flagCategorical != 0 }
func (n *node) defaultLeft() bool { return n.flags&flagDefaultLeft != 0 }
func (n *node) missingType() int  { return int(n.flags>>2) & 3 }

// tree is one regression tree. A tree with one leaf has no nodes.
type tree struct {
	nodes     []node
	leafValue []float64
	catBounds []int32
	catBits   []uint32
	linear    *linearLeaves // nil unless is_linear=1
	// plain: no categorical splits, no Zero missing type and no NaN
	// threshold, so for a row without NaN every decision is just
	// x <= threshold, and x > threshold the opposite.
	plain bool
}

// linearLeaves holds the per-leaf linear models of a linear tree: leaf i
// computes constant[i] + sum(coeff[j] * x[feature[j]]) for j in
// [start[i], start[i+1]).
type linearLeaves struct {
	constant []float64
	start    []int32
	feature  []int32
	coeff    []float64
}

// leaf returns the index of the leaf x falls into.
func (t *tree) leaf(x []float64) int {
	if len(t.nodes) == 0 {
		return 0
	}
	i := int32(0)
	for i >= 0 {
		n := &t.nodes[i]
		if t.goLeft(n, x[n.feature]) {
			i = n.children[0]
		} else {
			i = n.children[1]
		}
	}
	return int(^i)
}

// leafPlain is leaf for plain trees and rows without NaN. It is written
// so the compiler can pick the child without a branch: the comparison is
// the one branch a CPU cannot predict in tree walks.
func (t *tree) leafPlain(x []float64) int {
	nodes := t.nodes
	if len(nodes) == 0 {
		return 0
	}
	i := int32(0)
	for i >= 0 {
		n := &nodes[i]
		right := 0
		if x[n.feature] > n.threshold {
			right = 1
		}
		i = n.children[right&1]
	}
	return int(^i)
}

// leafPlain4 is leafPlain for four rows at once.
func (t *tree) leafPlain4(x0, x1, x2, x3 []float64) [4]int32 {
	nodes := t.nodes
	if len(nodes) == 0 {
		return [4]int32{}
	}
	var i0, i1, i2, i3 int32
	// Leaves are negative: loop while any walk is still at a node.
	for i0&i1&i2&i3 >= 0 {
		i0 = step(nodes, i0, x0)
		i1 = step(nodes, i1, x1)
		i2 = step(nodes, i2, x2)
		i3 = step(nodes, i3, x3)
	}
	return [4]int32{^i0, ^i1, ^i2, ^i3}
}

// step moves a plain walk at node i one level down; at a leaf it stays.
func step(nodes []node, i int32, x []float64) int32 {
	if i < 0 {
		return i
	}
	n := &nodes[i]
	right := 0
	if x[n.feature] > n.threshold {
		right = 1
	}
	return n.children[right&1]
}

func (t *tree) goLeft(n *node, v float64) bool {
	if n.categorical() {
		// NaN, negative and out-of-int32 values are never in the set. C++
		// truncates toward zero, so -0.5 is category 0, as in LightGBM.
		if !(v > -1 && v < math.MaxInt32) {
			return false
		}
		c := int32(v)
		w := c / 32
		if w >= n.catHi-n.catLo {
			return false
		}
		return t.catBits[n.catLo+w]>>(c%32)&1 != 0
	}
	mt := n.missingType()
	if mt != missingNaN && math.IsNaN(v) {
		v = 0
	}
	if mt == missingZero && v >= -zeroThreshold && v <= zeroThreshold ||
		mt == missingNaN && math.IsNaN(v) {
		return n.defaultLeft()
	}
	return v <= n.threshold
}

// predict returns the tree's output for x; noNaN says x holds no NaN.
func (t *tree) predict(x []float64, noNaN bool) float64 {
	var l int
	if noNaN && t.plain {
		l = t.leafPlain(x)
	} else {
		l = t.leaf(x)
	}
	return t.output(l, x)
}

// output is the value of leaf l for x.
func (t *tree) output(l int, x []float64) float64 {
	if t.linear == nil {
		return t.leafValue[l]
	}
	ll := t.linear
	out := ll.constant[l]
	for j := ll.start[l]; j < ll.start[l+1]; j++ {
		v := x[ll.feature[j]]
		if math.IsNaN(v) {
			// LightGBM falls back to the plain leaf value when a feature of
			// the leaf's linear model is missing.
			return t.leafValue[l]
		}
		out += ll.coeff[j] * v
	}
	return out
}
