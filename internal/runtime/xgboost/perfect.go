package xgboost

import (
	"math"
	"unsafe"
)

// The perfect layout stores a numeric tree as a complete binary tree of its
// own depth in heap order: node i's children are 2i+1 and 2i+2, and after
// exactly depth steps every walk ends on a leaf. Leaves above the last level
// are pushed down by padding splits whose subtrees repeat the leaf, so the
// walk needs no child pointers, no leaf test and no branch: one step is a
// node load, a feature load, a compare and an add. The price is memory, so
// only trees whose padded size stays near their real size are laid out so
// (see perfectFits); the others keep the node walk in evaluate.go.
//
// Missing values are folded into the row instead of the step: each row is
// expanded to 2×cols values, the first half with NaN replaced by +Inf, the
// second by -Inf. A default-right split reads the first half (+Inf is never
// < the threshold, so it goes right), a default-left split the second
// (-Inf < every threshold above -Inf, so it goes left). Present values are
// unchanged in both halves, so "go left iff x < split_condition" holds as
// before; splits whose threshold is NaN or -Inf would break the argument
// and keep their tree on the node walk.

// pnode is one node of a perfect tree: the feature's index in the expanded
// row and the threshold, or at the last level the leaf value in thr.
type pnode struct {
	feat int32
	thr  float32
}

const (
	// maxPerfectDepth bounds a perfect tree at 2^13-1 nodes (64 KiB).
	maxPerfectDepth = 12
	// perfectSlack is how many times its real node count a tree may
	// grow by padding; shallow trees are always allowed.
	perfectSlack     = 4
	perfectFreeDepth = 6
)

// perfectFits tells whether tree t (nodes real nodes) is laid out perfect.
func (b *booster) perfectFits(t treeRef, nodes int) bool {
	if t.hasCat || t.depth > maxPerfectDepth {
		return false
	}
	if t.depth > perfectFreeDepth && 1<<(t.depth+1)-1 > perfectSlack*nodes {
		return false
	}
	end := int(t.root) + nodes
	for i := int(t.root); i < end; i++ {
		n := &b.nodes[i]
		if n.feat&bitLeaf == 0 && (n.value != n.value || n.value == float32(math.Inf(-1))) {
			return false
		}
	}
	return true
}

// buildPerfect lays out every tree that fits; trees[i].perf is its offset
// in b.perf, or -1 for trees left to the node walk.
func (b *booster) buildPerfect() {
	total := 0
	for ti := range b.trees {
		t := &b.trees[ti]
		t.perf = -1
		if b.perfectFits(*t, b.treeSize(ti)) {
			total += 1<<(t.depth+1) - 1
		}
	}
	if total == 0 {
		return
	}
	b.perf = make([]pnode, 0, total)
	for ti := range b.trees {
		t := &b.trees[ti]
		if !b.perfectFits(*t, b.treeSize(ti)) {
			continue
		}
		t.perf = int32(len(b.perf))
		tree := b.perf[len(b.perf) : len(b.perf)+1<<(t.depth+1)-1]
		b.perf = b.perf[:len(b.perf)+len(tree)]
		b.fillPerfect(tree, 0, 0, int(t.depth), t.root)
	}
	for ti := range b.trees {
		b.trees[ti].quad = ti+4 <= len(b.trees)
		for _, u := range b.trees[ti:min(ti+4, len(b.trees))] {
			if u.perf < 0 || u.depth != b.trees[ti].depth {
				b.trees[ti].quad = false
			}
		}
	}
}

// treeSize is the number of nodes of tree ti in b.nodes.
func (b *booster) treeSize(ti int) int {
	end := len(b.nodes)
	if ti+1 < len(b.trees) {
		end = int(b.trees[ti+1].root)
	}
	return end - int(b.trees[ti].root)
}

// fillPerfect writes the subtree of b.nodes[src] at heap index h, level lvl
// of a perfect tree of depth d.
func (b *booster) fillPerfect(tree []pnode, h, lvl, d int, src int32) {
	n := &b.nodes[src]
	if lvl == d {
		tree[h] = pnode{thr: n.value} // a leaf: the layout's depth is the tree's
		return
	}
	left, right := src, src
	tree[h] = pnode{} // padding: both sides repeat the leaf
	if n.feat&bitLeaf == 0 {
		f := int32(n.feat & featMask)
		if n.feat&bitDefaultLeft != 0 {
			f += int32(b.numFeature)
		}
		tree[h] = pnode{feat: f, thr: n.value}
		left, right = n.left, n.left+1
	}
	b.fillPerfect(tree, 2*h+1, lvl+1, d, left)
	b.fillPerfect(tree, 2*h+2, lvl+1, d, right)
}

// expandRows writes rows [lo, hi) of x (cols each) into buf, 2×cols per
// row: NaN as +Inf, then NaN as -Inf.
func expandRows(buf, x []float32, cols, lo, hi int) {
	inf, ninf := float32(math.Inf(1)), float32(math.Inf(-1))
	for r := lo; r < hi; r++ {
		row := x[r*cols : (r+1)*cols]
		out := buf[(r-lo)*2*cols : (r-lo+1)*2*cols]
		hiHalf, loHalf := out[:cols], out[cols:]
		for f, v := range row {
			if v != v {
				hiHalf[f], loHalf[f] = inf, ninf
				continue
			}
			hiHalf[f], loHalf[f] = v, v
		}
	}
}

// perfect1 walks perfect tree t for one expanded row.
func (b *booster) perfect1(t treeRef, row []float32) float32 {
	tree := b.perf[t.perf : int(t.perf)+1<<(t.depth+1)-1]
	var i int32
	for range t.depth {
		n := tree[i]
		i = 2*i + 2 - b2i(row[n.feat] < n.thr)
	}
	return tree[i].thr
}

// perfectBlock walks perfect tree t for the n expanded rows in xb (stride
// values apart) one level at a time across all the rows, and adds the leaf
// values (times w when weighted) to out[r*ng+group]. The rows' walks are
// independent, so the CPU overlaps their chains of dependent loads; idx
// (at least n entries) holds their heap indices between levels.
//
// The loads skip Go's bounds checks, which cost a third of the step: build
// checked every split's feature against numFeature, so nd.feat < stride
// = 2*numFeature, and a heap index below 2^depth-1 has both children
// inside the tree's 2^(depth+1)-1 nodes.
func (b *booster) perfectBlock(t treeRef, xb []float32, stride, n int, idx []uint32, out []float32, ng int, w float32, weighted bool) {
	tree := b.perf[t.perf : int(t.perf)+1<<(t.depth+1)-1]
	idx = idx[:n]
	if n == 0 || stride != 2*b.numFeature {
		panic("xgboost: perfectBlock: rows do not match the model")
	}
	g := int(t.group)
	add := func(r int, v float32) {
		if weighted {
			v = float32(v * w)
		}
		out[r*ng+g] += v
	}
	if t.depth == 0 {
		for r := range n {
			add(r, tree[0].thr)
		}
		return
	}
	tp := unsafe.Pointer(unsafe.SliceData(tree))
	xp := unsafe.Pointer(unsafe.SliceData(xb[:n*stride]))
	rowBytes := uintptr(stride) * 4
	// Every row starts at the root: its split needs no node load.
	var row uintptr // byte offset of row r in xb; never a pointer past its end
	rf, rt := uintptr(tree[0].feat)*4, tree[0].thr
	for r := range idx {
		x := *(*float32)(unsafe.Add(xp, row+rf))
		idx[r] = 2 - uint32(b2i(x < rt))
		row += rowBytes
	}
	for range t.depth - 2 {
		row = 0
		for r, i := range idx {
			nd := *(*pnode)(unsafe.Add(tp, uintptr(i)*8))
			x := *(*float32)(unsafe.Add(xp, row+uintptr(nd.feat)*4))
			idx[r] = 2*i + 2 - uint32(b2i(x < nd.thr))
			row += rowBytes
		}
	}
	if t.depth == 1 {
		for r, i := range idx {
			add(r, tree[i].thr)
		}
		return
	}
	// The last split and the leaf in one pass.
	row = 0
	for r, i := range idx {
		nd := *(*pnode)(unsafe.Add(tp, uintptr(i)*8))
		x := *(*float32)(unsafe.Add(xp, row+uintptr(nd.feat)*4))
		leaf := 2*i + 2 - uint32(b2i(x < nd.thr))
		add(r, (*pnode)(unsafe.Add(tp, uintptr(leaf)*8)).thr)
		row += rowBytes
	}
}

// perfectTrees4 walks the four perfect trees ts, all of one depth, for one
// expanded row together, and adds their leaf values (times ws[k] when ws is
// not nil) to out in tree order. It is the small-batch counterpart of
// perfectBlock: with one row, the independent walks are the trees'. The
// loads skip bounds checks as perfectBlock's do, for the same reasons.
func (b *booster) perfectTrees4(ts []treeRef, ws []float32, row []float32, out []float32) {
	ts = ts[:4]
	if len(row) != 2*b.numFeature {
		panic("xgboost: perfectTrees4: row does not match the model")
	}
	// buildPerfect lays a quad's trees out one after the other.
	size := 1<<(ts[0].depth+1) - 1
	p0 := unsafe.Pointer(unsafe.SliceData(b.perf[ts[0].perf : int(ts[0].perf)+4*size]))
	p1, p2, p3 := unsafe.Add(p0, size*8), unsafe.Add(p0, 2*size*8), unsafe.Add(p0, 3*size*8)
	xp := unsafe.Pointer(unsafe.SliceData(row))
	step := func(p unsafe.Pointer, i uint32) uint32 {
		at := uintptr(i) * 8 // sizeof(pnode)
		f := *(*uint32)(unsafe.Add(p, at))
		x := *(*float32)(unsafe.Add(xp, uintptr(f)*4))
		return 2*i + 2 - uint32(b2i(x < *(*float32)(unsafe.Add(p, at+4))))
	}
	var i0, i1, i2, i3 uint32
	for range ts[0].depth {
		i0, i1, i2, i3 = step(p0, i0), step(p1, i1), step(p2, i2), step(p3, i3)
	}
	leaf := func(p unsafe.Pointer, i uint32) float32 { return *(*float32)(unsafe.Add(p, uintptr(i)*8+4)) }
	v := [4]float32{leaf(p0, i0), leaf(p1, i1), leaf(p2, i2), leaf(p3, i3)}
	for k, t := range ts {
		if ws != nil {
			v[k] = float32(v[k] * ws[k])
		}
		out[t.group] += v[k]
	}
}
