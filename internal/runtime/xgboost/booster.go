package xgboost

import (
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime"
)

// rawModel is a parsed model file before validation: what the JSON, UBJSON
// and legacy binary parsers all produce.
type rawModel struct {
	objective    string
	booster      string // "gbtree", "dart" or "gblinear"
	numFeature   int64
	numClass     int64
	numTarget    int64
	baseScore    []float32 // response space, one value or one per group
	trees        []rawTree
	treeInfo     []int64 // output group of each tree
	weightDrop   []float32
	linear       []float32 // gblinear: (numFeature+1) × groups, bias last
	featureNames []string
	version      string
}

// rawTree is one tree in XGBoost's own node numbering.
type rawTree struct {
	left, right []int64
	splitIndex  []int64
	cond        []float32 // threshold, or the leaf value for leaves
	defaultLeft []bool
	categorical []bool    // nil when the tree has no categorical split
	categories  [][]int64 // per node, the categories that go right
	cover       []float32 // per node, the training hessian sum (sum_hessian); for TreeSHAP
}

const (
	featMask       = 1<<29 - 1
	bitLeaf        = 1 << 29
	bitCategorical = 1 << 30
	bitDefaultLeft = 1 << 31
	// maxCategory is XGBoost's OutOfRangeCat: larger (or negative)
	// values are not categories.
	maxCategory = 1 << 24
	// maxCatWords caps the memory of all category bitsets (32 MiB).
	maxCatWords = 1 << 22
)

// node is one tree node, 16 bytes. Trees are stored breadth first so that
// a node's right child directly follows its left child. A leaf has bitLeaf
// set and points to itself, so stepping from a leaf stays there: that lets
// several rows walk a tree in lockstep for its full depth without a branch.
type node struct {
	left  int32   // index of the left child; a leaf's own index
	feat  uint32  // feature index | bitLeaf | bitDefaultLeft | bitCategorical
	value float32 // split threshold, or the leaf value
	cat   int32   // index into booster.cats for categorical splits
}

// treeRef locates one tree in booster.nodes.
type treeRef struct {
	root   int32
	group  int32 // output group the tree adds to
	depth  int32 // longest root-to-leaf path, in splits
	hasCat bool  // has categorical splits: evaluated row by row
	perf   int32 // offset of the tree's perfect layout in booster.perf, or -1
	quad   bool  // this tree and the next three are perfect and of one depth
}

// booster is a validated, flattened model ready to evaluate. It is
// read-only after build.
type booster struct {
	obj        objective
	kind       string
	numFeature int
	ngroup     int
	base       []float32 // starting margin of each group

	nodes   []node
	trees   []treeRef
	weights []float32 // dart's weight_drop; nil for gbtree
	cats    [][]uint64
	perf    []pnode // trees laid out perfect (perfect.go), evaluated from these

	linear []float32 // gblinear weights; nil for tree boosters
	cover  []float32 // per node, aligned with nodes: see trees.go
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", runtime.ErrCorruptModel, fmt.Sprintf(format, args...))
}

func build(r *rawModel) (*booster, error) {
	obj, err := lookupObjective(r.objective)
	if err != nil {
		return nil, err
	}
	if r.numFeature < 1 || r.numFeature > featMask {
		return nil, corrupt("num_feature %d out of range", r.numFeature)
	}
	if r.numClass < 0 || r.numClass > 1<<16 || r.numTarget < 0 || r.numTarget > 1<<16 {
		return nil, corrupt("num_class %d / num_target %d out of range", r.numClass, r.numTarget)
	}
	b := &booster{obj: obj, kind: r.booster, numFeature: int(r.numFeature), ngroup: int(max(r.numClass, r.numTarget, 1))}
	if (obj.link == linkSoftmax || obj.link == linkArgmax) && r.numClass < 1 {
		return nil, corrupt("%s needs num_class", obj.name)
	}
	if err := b.setBase(r.baseScore); err != nil {
		return nil, err
	}
	switch r.booster {
	case "gblinear":
		if want := (b.numFeature + 1) * b.ngroup; len(r.linear) != want {
			return nil, corrupt("gblinear has %d weights, want %d", len(r.linear), want)
		}
		b.linear = r.linear
		return b, nil
	case "gbtree", "dart":
	default:
		return nil, fmt.Errorf("%w: xgboost booster %q", runtime.ErrUnsupported, r.booster)
	}
	if len(r.treeInfo) != len(r.trees) {
		return nil, corrupt("tree_info has %d entries for %d trees", len(r.treeInfo), len(r.trees))
	}
	if r.booster == "dart" {
		if len(r.weightDrop) != len(r.trees) {
			return nil, corrupt("weight_drop has %d entries for %d trees", len(r.weightDrop), len(r.trees))
		}
		b.weights = r.weightDrop
	}
	catWords := 0
	for i := range r.trees {
		g := r.treeInfo[i]
		if g < 0 || g >= int64(b.ngroup) {
			return nil, corrupt("tree %d is for output group %d of %d", i, g, b.ngroup)
		}
		ref, err := b.addTree(&r.trees[i], &catWords)
		if err != nil {
			return nil, fmt.Errorf("tree %d: %w", i, err)
		}
		ref.group = int32(g)
		b.trees = append(b.trees, ref)
	}
	b.buildPerfect()
	return b, nil
}

func (b *booster) setBase(score []float32) error {
	b.base = make([]float32, b.ngroup)
	switch len(score) {
	case 1:
		m, err := b.obj.baseMargin(score[0])
		if err != nil {
			return err
		}
		for g := range b.base {
			b.base[g] = m
		}
	case b.ngroup:
		for g, s := range score {
			m, err := b.obj.baseMargin(s)
			if err != nil {
				return err
			}
			b.base[g] = m
		}
	default:
		return corrupt("base_score has %d values for %d outputs", len(score), b.ngroup)
	}
	return nil
}

// addTree appends t breadth first, checking that it is a tree: every
// child index in range and reached once, so evaluation always ends.
func (b *booster) addTree(t *rawTree, catWords *int) (treeRef, error) {
	ref := treeRef{root: int32(len(b.nodes))}
	n := len(t.left)
	if n == 0 {
		return ref, corrupt("tree has no nodes")
	}
	if len(t.right) != n || len(t.splitIndex) != n || len(t.cond) != n || len(t.defaultLeft) != n ||
		(t.categorical != nil && len(t.categorical) != n) || (t.categories != nil && len(t.categories) != n) {
		return ref, corrupt("tree arrays have different lengths")
	}
	if len(b.nodes)+n > 1<<31-2 {
		return ref, corrupt("too many nodes")
	}
	type pending struct{ old, idx, depth int }
	seen := make([]bool, n)
	seen[0] = true
	queue := []pending{{0, len(b.nodes), 0}}
	b.nodes = append(b.nodes, node{})
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		i := p.old
		b.setCover(p.idx, t, i)
		l, r := t.left[i], t.right[i]
		if l == -1 {
			b.nodes[p.idx] = node{left: int32(p.idx), feat: bitLeaf, value: t.cond[i], cat: -1}
			ref.depth = max(ref.depth, int32(p.depth))
			continue
		}
		if l <= 0 || r <= 0 || l >= int64(n) || r >= int64(n) || l == r || seen[l] || seen[r] {
			return ref, corrupt("node %d has children %d and %d", i, l, r)
		}
		seen[l], seen[r] = true, true
		f := t.splitIndex[i]
		if f < 0 || f >= int64(b.numFeature) {
			return ref, corrupt("node %d splits on feature %d of %d", i, f, b.numFeature)
		}
		nd := node{left: int32(len(b.nodes)), feat: uint32(f), value: t.cond[i], cat: -1}
		if t.defaultLeft[i] {
			nd.feat |= bitDefaultLeft
		}
		if t.categorical != nil && t.categorical[i] {
			set, err := bitset(t.categories[i])
			if err != nil {
				return ref, fmt.Errorf("node %d: %w", i, err)
			}
			if *catWords += len(set); *catWords > maxCatWords {
				return ref, corrupt("category sets too large")
			}
			ref.hasCat = true
			nd.feat |= bitCategorical
			nd.cat = int32(len(b.cats))
			b.cats = append(b.cats, set)
		}
		b.nodes[p.idx] = nd
		queue = append(queue, pending{int(l), len(b.nodes), p.depth + 1}, pending{int(r), len(b.nodes) + 1, p.depth + 1})
		b.nodes = append(b.nodes, node{}, node{})
	}
	return ref, nil
}

func bitset(cats []int64) ([]uint64, error) {
	hi := int64(-1)
	for _, c := range cats {
		if c < 0 || c >= maxCategory {
			return nil, corrupt("category %d out of range", c)
		}
		hi = max(hi, c)
	}
	set := make([]uint64, hi/64+1)
	for _, c := range cats {
		set[c/64] |= 1 << (c % 64)
	}
	return set, nil
}
