package runtime

// TreeEnsemble is a tree model laid open for explainers (TreeSHAP): every
// tree with its splits, leaf values and training covers, and how the trees
// add up to the margins. A runtime offers it through an optional method
// that explainers look for; models without trees simply lack it.
//
// The margin of output group g for a row is Base[g] plus, for every tree
// with Group g, Weight times the value of the leaf the row reaches.
type TreeEnsemble struct {
	NumFeatures  int
	NumGroups    int       // margins per row (classes or targets)
	Base         []float64 // starting margin of each group
	Trees        []Tree
	FeatureNames []string // may be empty
}

// Tree is one decision tree. Nodes[0] is the root.
type Tree struct {
	Group  int     // output group the tree adds to
	Weight float64 // 1, or the tree's weight (DART)
	Nodes  []TreeNode
}

// SplitKind is how a node compares a present (non-NaN) feature value.
type SplitKind uint8

// Split kinds.
const (
	// SplitLess sends x < Threshold left (XGBoost).
	SplitLess SplitKind = iota
	// SplitLessEqual sends x <= Threshold left (LightGBM, scikit-learn).
	SplitLessEqual
	// SplitCategory sends x right when it is an integer category in
	// Categories, left otherwise.
	SplitCategory
)

// TreeNode is one node. A leaf has Left == Right == -1 and its output in
// Value; an inner node sends missing values (NaN) to its default child.
type TreeNode struct {
	Left, Right int32
	Feature     int32
	Kind        SplitKind
	DefaultLeft bool
	Threshold   float64
	Categories  []uint64 // bit set of categories that go right (SplitCategory)
	// Cover is the number (or hessian sum) of training rows that reached
	// the node; a node's cover is its children's covers summed.
	Cover float64
	Value float64 // leaf output
}

// IsLeaf tells whether n is a leaf.
func (n *TreeNode) IsLeaf() bool { return n.Left < 0 }

// GoesLeft tells which child a row with feature value x takes at the inner
// node n. Values are float64; runtimes that compare in float32 give float32
// thresholds, which convert exactly, so the decisions agree.
func (n *TreeNode) GoesLeft(x float64) bool {
	if x != x {
		return n.DefaultLeft
	}
	switch n.Kind {
	case SplitLessEqual:
		return x <= n.Threshold
	case SplitCategory:
		if x < 0 || x >= 1<<24 {
			return true
		}
		c := uint64(x)
		w := c / 64
		return !(w < uint64(len(n.Categories)) && n.Categories[w]>>(c%64)&1 != 0)
	default:
		return x < n.Threshold
	}
}
