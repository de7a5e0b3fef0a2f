package lightgbm

import (
	"cmp"
	"math"
	"slices"
	"unsafe"
)

// The flat layout stores each numeric tree as one array of 16-byte nodes,
// leaves included, laid out breadth first with each node's two children
// side by side, and walks every row exactly the tree's depth steps: a leaf
// is its own left child and never goes right, so a walk that reaches a
// leaf early stays there. A step is a node load, a feature load, a compare
// and an add, with no branch: the data-dependent branches of the node walk
// (which side, leaf or not, missing or not) are what a CPU mispredicts in
// tree ensembles. Unlike XGBoost's perfect layout (internal/runtime/
// xgboost/perfect.go) nothing is padded, which matters for LightGBM's
// leaf-wise trees: 31 leaves often reach depth 9 to 14.
//
// Batches of minBlock rows or more walk each tree across a block of rows
// one level at a time (walkBlock); smaller ones walk all trees of one row
// one level at a time, deepest trees first, so each tree stops at its own
// depth (walkRow). Either way the walks in flight are independent chains
// of loads the CPU overlaps, and each row still adds its trees' outputs in
// file order, so scores are bit for bit those of the node walk.
//
// Missing values are folded into the row instead of the step. Each row is
// expanded once into up to seven copies (variants) of its features, one per
// way a split can treat a value, so that LightGBM's whole decision becomes
// "left iff v <= threshold" on the right copy:
//
//	varNaNRight  missing type NaN, default right: NaN as +Inf
//	varNaNLeft   missing type NaN, default left:  NaN as -Inf
//	varNone      missing type None: NaN as 0 (LightGBM reads it as 0)
//	varZeroRight missing type Zero, default right: NaN and |v| <= kZeroThreshold as +Inf
//	varZeroLeft  missing type Zero, default left:  the same as -Inf
//
// Every other value is unchanged, so non-missing values decide as before;
// +Inf <= t fails and -Inf <= t holds for every finite threshold t. A
// threshold of +Inf is common, though: LightGBM writes it for a split that
// sends every present value left and only missing ones right. There +Inf
// would tie with a real +Inf, so such a split with default right reads an
// indicator instead, with threshold 0.5:
//
//	varNaNFlag   1 for NaN, 0 otherwise
//	varZeroFlag  1 for NaN and |v| <= kZeroThreshold, 0 otherwise
//
// (with default left, or missing type None, a +Inf threshold already sends
// everything left). Trees with a NaN threshold or categorical splits, and
// trees deeper than maxFlatDepth, keep the node walk, as do models whose
// expanded rows would be wider than maxStride. Only the variants a model
// uses are built.
const (
	varNaNRight = iota
	varNaNLeft
	varNone
	varZeroRight
	varZeroLeft
	varNaNFlag
	varZeroFlag
	numVariants
)

// fnode is a node of the flat layout: the split's index in the expanded
// row and its threshold, and the index in booster.flat of its left child;
// the right child follows the left one. A leaf is its own left child, holds
// its value in thr and reads the expanded row's last value, -Inf, which is
// never greater than the value, so a walk at a leaf stays there.
type fnode struct {
	thr  float64
	slot uint32
	left uint32
}

// flatTree locates tree i's nodes in booster.flat: size 0 means the tree
// is not laid out. The root is node off.
type flatTree struct {
	off   uint32
	size  uint32
	depth int32
}

const (
	// maxFlatDepth bounds the steps every row takes in a tree; deeper
	// (chain-like) trees keep the node walk, where most rows stop early.
	maxFlatDepth = 32
	// blockRows rows walk each tree together in large batches.
	blockRows = 64
	// minBlock is the smallest batch walked tree by tree across rows;
	// smaller ones walk four trees of one row together.
	minBlock = 8
	// maxStride bounds an expanded row (512 KiB); wider models keep the
	// node walk.
	maxStride = 1 << 16
	// blockBytes is about what a block's expanded rows may take.
	blockBytes = 32 << 10
)

// blockFor is how many rows walk together for expanded rows of stride
// values: blockRows, fewer for wide rows, at least minBlock.
func blockFor(stride int) int {
	return min(blockRows, max(minBlock, blockBytes/8/stride))
}

// variant is the row copy node n reads, and the threshold it compares
// that copy with.
func (n *node) variant() (int, float64) {
	left := n.defaultLeft()
	inf := math.IsInf(n.threshold, 1)
	switch n.missingType() {
	case missingNaN:
		switch {
		case left:
			return varNaNLeft, n.threshold
		case inf:
			return varNaNFlag, 0.5
		}
		return varNaNRight, n.threshold
	case missingZero:
		switch {
		case left:
			return varZeroLeft, n.threshold
		case inf:
			return varZeroFlag, 0.5
		}
		return varZeroRight, n.threshold
	}
	return varNone, n.threshold
}

// flatFits tells whether t can be laid out, and its depth.
func (t *tree) flatFits() (int, bool) {
	for i := range t.nodes {
		n := &t.nodes[i]
		if n.categorical() || math.IsNaN(n.threshold) {
			return 0, false
		}
	}
	d := t.depth()
	return d, d <= maxFlatDepth
}

// depth is the number of splits on the tree's longest path.
func (t *tree) depth() int {
	if len(t.nodes) == 0 {
		return 0
	}
	type item struct{ n, d int32 }
	stack := make([]item, 1, len(t.nodes)+1)
	deepest := 0
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range t.nodes[it.n].children {
			if c < 0 {
				deepest = max(deepest, int(it.d)+1)
			} else {
				stack = append(stack, item{c, it.d + 1})
			}
		}
	}
	return deepest
}

// buildFlat lays out every tree that fits and chooses the row variants.
func (b *booster) buildFlat() {
	b.ftrees = make([]flatTree, len(b.trees))
	depths := make([]int, len(b.trees))
	fits := make([]bool, len(b.trees))
	var used [numVariants]bool
	total := 0
	for i := range b.trees {
		t := &b.trees[i]
		depths[i], fits[i] = t.flatFits()
		if !fits[i] {
			continue
		}
		total += 2*len(t.leafValue) - 1
		for j := range t.nodes {
			v, _ := t.nodes[j].variant()
			used[v] = true
		}
	}
	nv := 0
	for _, u := range used {
		if u {
			nv++
		}
	}
	if total == 0 || total >= math.MaxUint32 || nv*b.numFeatures > maxStride {
		b.ftrees = nil // nothing to lay out, or rows too wide to copy
		return
	}
	for v := range b.varOff {
		b.varOff[v] = -1
		if used[v] {
			b.varOff[v] = int32(b.stride)
			b.stride += b.numFeatures
		}
	}
	b.stride++ // the -Inf leaves read
	b.flat = make([]fnode, total)
	b.fleaf = make([]int32, total)
	at := 0
	var queue []int32
	for i := range b.trees {
		if fits[i] {
			b.ftrees[i], queue = b.layOut(&b.trees[i], depths[i], at, queue)
			at += int(b.ftrees[i].size)
		}
	}
	b.buildLevels()
}

// layOut writes tree t into b.flat from index off on, breadth first, each
// node's two children side by side; queue is scratch space, returned for
// reuse.
func (b *booster) layOut(t *tree, depth, off int, queue []int32) (flatTree, []int32) {
	ft := flatTree{off: uint32(off), size: uint32(2*len(t.leafValue) - 1), depth: int32(depth)}
	flat, fleaf := b.flat[off:off+int(ft.size)], b.fleaf[off:off+int(ft.size)]
	// place writes LightGBM node c (a leaf when negative) at local index i.
	place := func(c int32, i int) {
		if c < 0 {
			flat[i] = fnode{thr: t.leafValue[^c], slot: uint32(b.stride - 1), left: uint32(off + i)}
			fleaf[i] = ^c
			return
		}
		n := &t.nodes[c]
		v, thr := n.variant()
		flat[i] = fnode{thr: thr, slot: uint32(b.varOff[v]) + uint32(n.feature)}
		fleaf[i] = -1
	}
	queue = queue[:0] // inner nodes laid out whose children are not, in layout order
	if len(t.nodes) == 0 {
		place(^0, 0) // the single leaf
		return ft, queue
	}
	place(0, 0)
	queue = append(queue, 0)
	next := 1 // the first free index
	for i, head := 0, 0; head < len(queue); i++ {
		if fleaf[i] >= 0 {
			continue
		}
		c := queue[head]
		head++
		flat[i].left = uint32(off + next)
		for k, ch := range t.nodes[c].children {
			place(ch, next+k)
			if ch >= 0 {
				queue = append(queue, ch)
			}
		}
		next += 2
	}
	return ft, queue
}

// expandRow writes row's variants into dst (b.stride values), and -Inf
// last.
func (b *booster) expandRow(dst, row []float64) {
	inf, ninf := math.Inf(1), math.Inf(-1)
	nf := b.numFeatures
	row = row[:nf]
	dst[b.stride-1] = ninf
	for v, o := range b.varOff {
		if o < 0 {
			continue
		}
		out := dst[o : int(o)+nf]
		switch v {
		case varNaNRight, varNaNLeft:
			sub := inf
			if v == varNaNLeft {
				sub = ninf
			}
			for f, x := range row {
				if x != x {
					x = sub
				}
				out[f] = x
			}
		case varNone:
			for f, x := range row {
				if x != x {
					x = 0
				}
				out[f] = x
			}
		case varZeroRight, varZeroLeft:
			sub := inf
			if v == varZeroLeft {
				sub = ninf
			}
			for f, x := range row {
				if x != x || x >= -zeroThreshold && x <= zeroThreshold {
					x = sub
				}
				out[f] = x
			}
		case varNaNFlag:
			for f, x := range row {
				out[f] = 0
				if x != x {
					out[f] = 1
				}
			}
		case varZeroFlag:
			for f, x := range row {
				out[f] = 0
				if x != x || x >= -zeroThreshold && x <= zeroThreshold {
					out[f] = 1
				}
			}
		}
	}
}

func b2i(v bool) uint32 {
	var i uint32
	if v {
		i = 1
	}
	return i
}

// walkBlock walks laid-out tree ft for the n expanded rows in xb (stride
// values apart), one level at a time across the rows, and leaves each
// row's final node (an index in b.flat) in idx. The rows' walks are
// independent, so the CPU overlaps their chains of dependent loads.
//
// The loads skip Go's bounds checks: buildFlat made every slot less than
// b.stride and every left child and the node after it nodes of b.flat,
// the walk starts at a root, and xb holds n rows of stride values
// (checked here).
func (b *booster) walkBlock(ft flatTree, xb []float64, stride, n int, idx []uint32) {
	idx = idx[:n]
	if n == 0 || stride != b.stride || len(xb) < n*stride {
		panic("lightgbm: walkBlock: rows do not match the model")
	}
	root := b.flat[ft.off]
	if ft.depth == 0 {
		for r := range idx {
			idx[r] = ft.off
		}
		return
	}
	fp := unsafe.Pointer(unsafe.SliceData(b.flat))
	xp := unsafe.Pointer(unsafe.SliceData(xb))
	rowBytes := uintptr(stride) * 8
	// The root's split needs no node load.
	var row uintptr
	for r := range idx {
		x := *(*float64)(unsafe.Add(xp, row+uintptr(root.slot)*8))
		idx[r] = root.left + b2i(x > root.thr)
		row += rowBytes
	}
	for range ft.depth - 1 {
		row = 0
		for r, i := range idx {
			nd := (*fnode)(unsafe.Add(fp, uintptr(i)*nodeBytes))
			x := *(*float64)(unsafe.Add(xp, row+uintptr(nd.slot)*8))
			idx[r] = nd.left + b2i(x > nd.thr)
			row += rowBytes
		}
	}
}

// nodeBytes is the size of an fnode, which the unsafe walks step by.
const nodeBytes = unsafe.Sizeof(fnode{})

// walk1 walks laid-out tree ft for one expanded row xr and returns its
// final node's index.
func (b *booster) walk1(ft flatTree, xr []float64) uint32 {
	i := ft.off
	for range ft.depth {
		n := &b.flat[i]
		i = n.left + b2i(xr[n.slot] > n.thr)
	}
	return i
}

// buildLevels orders the laid-out trees for walkRow: deepest first, so
// that the trees still walking at each level are a prefix of the order.
func (b *booster) buildLevels() {
	b.order = b.order[:0]
	for t, ft := range b.ftrees {
		if ft.size > 0 {
			b.order = append(b.order, int32(t))
		}
	}
	slices.SortStableFunc(b.order, func(x, y int32) int { return cmp.Compare(b.ftrees[y].depth, b.ftrees[x].depth) })
	b.rank = make([]int32, len(b.ftrees))
	for t := range b.rank {
		b.rank[t] = -1
	}
	b.leavesOnly = b.treesPerIter == 1 && len(b.order) == len(b.trees)
	for _, t := range b.trees {
		b.leavesOnly = b.leavesOnly && t.linear == nil
	}
	b.roots = make([]uint32, len(b.order))
	for j, t := range b.order {
		b.rank[t] = int32(j)
		b.roots[j] = b.ftrees[t].off
	}
	b.active = b.active[:0]
	for d := range b.ftrees[b.order[0]].depth {
		n := 0
		for n < len(b.order) && b.ftrees[b.order[n]].depth > d {
			n++
		}
		b.active = append(b.active, int32(n))
	}
}

// walkRow walks every laid-out tree for one expanded row xr, one level at
// a time across the trees (independent chains of loads, as walkBlock's
// rows are), and leaves the final node of tree order[j], as an index in
// b.flat, in at[j]. Trees that reached their depth drop out of the level
// loop, so each tree takes its own depth in steps.
//
// The loads skip bounds checks as walkBlock's do: at[j] starts at a root
// and moves to children, every slot is below b.stride = len(xr), and at
// has room for every laid-out tree (checked here).
func (b *booster) walkRow(xr []float64, at []uint32) {
	if len(xr) != b.stride || len(at) < len(b.roots) {
		panic("lightgbm: walkRow: row does not match the model")
	}
	copy(at, b.roots)
	fp := unsafe.Pointer(unsafe.SliceData(b.flat))
	xp := unsafe.Pointer(unsafe.SliceData(xr))
	ap := unsafe.Pointer(unsafe.SliceData(at))
	for _, n := range b.active {
		j := uintptr(0)
		// Two trees per iteration: fewer loop instructions per step.
		for ; j+1 < uintptr(n); j += 2 {
			a0 := (*uint32)(unsafe.Add(ap, j*4))
			a1 := (*uint32)(unsafe.Add(ap, j*4+4))
			n0 := (*fnode)(unsafe.Add(fp, uintptr(*a0)*nodeBytes))
			n1 := (*fnode)(unsafe.Add(fp, uintptr(*a1)*nodeBytes))
			x0 := *(*float64)(unsafe.Add(xp, uintptr(n0.slot)*8))
			x1 := *(*float64)(unsafe.Add(xp, uintptr(n1.slot)*8))
			*a0 = n0.left + b2i(x0 > n0.thr)
			*a1 = n1.left + b2i(x1 > n1.thr)
		}
		if j < uintptr(n) {
			a := (*uint32)(unsafe.Add(ap, j*4))
			nd := (*fnode)(unsafe.Add(fp, uintptr(*a)*nodeBytes))
			x := *(*float64)(unsafe.Add(xp, uintptr(nd.slot)*8))
			*a = nd.left + b2i(x > nd.thr)
		}
	}
}
