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
	left, right  int32
	catLo, catHi int32 // categorical: the split's words in tree.catBits
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
			i = n.left
		} else {
			i = n.right
		}
	}
	return int(^i)
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

// predict returns the tree's output for x.
func (t *tree) predict(x []float64) float64 {
	l := t.leaf(x)
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
