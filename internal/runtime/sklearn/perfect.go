package sklearn

import (
	"math"
	"unsafe"
)

// The perfect layout stores a tree as a complete binary tree of its own
// depth in heap order (node i's children are 2i+1 and 2i+2), leaves above
// the last level pushed down by padding splits whose two subtrees repeat
// the leaf. A walk then needs no child pointers, no leaf test and no
// branch: exactly depth steps of load, compare, add.
//
// scikit-learn compares float32(x) <= threshold with a float64 threshold.
// For a float32 x that is the same as x <= t32, where t32 is the largest
// float32 not above the threshold (−Inf when there is none), so the walk
// compares float32s with no loss of exactness.
//
// Missing values are folded into the row instead of the step, as the
// XGBoost runtime does: each row is expanded once to 2×cols float32s, NaN
// as +Inf in the first half and −Inf in the second. A split that sends NaN
// right reads the first half (+Inf <= t32 fails unless t32 is +Inf), one
// that sends it left the second (−Inf <= every t32 that is not NaN).
// Present values are the same in both halves. Trees with a NaN threshold
// or a threshold of +Inf would break the argument and keep the node walk.

// pnode is one split of a perfect tree: the feature's index in the
// expanded row and the threshold rounded down to float32.
type pnode struct {
	feat int32
	thr  float32
}

// perfTree is a tree's perfect layout: 2^depth-1 splits and, per leaf
// position, the offset of its values in tree.values.
type perfTree struct {
	depth int
	nodes []pnode
	leaf  []int32
}

const (
	// maxPerfectDepth bounds a perfect tree at 2^12 leaves.
	maxPerfectDepth = 12
	// Trees up to perfectFreeDepth are always laid out; deeper ones only
	// while padding at most perfectSlack times their real node count.
	perfectFreeDepth = 6
	perfectSlack     = 4
	// blockRows is how many rows a block walk carries through each tree.
	blockRows = 64
	// smallBatch is the batch below which rows walk trees one at a time.
	smallBatch = 8
)

// floor32 is the largest float32 not above v (−Inf when none is).
func floor32(v float64) float32 {
	f := float32(v)
	if float64(f) > v {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

// depth is the number of splits on the tree's longest root-to-leaf path.
func (t *tree) depth(i int) int {
	n := &t.nodes[i]
	if n.left < 0 {
		return 0
	}
	return 1 + max(t.depth(int(n.left)), t.depth(int(n.right)))
}

// buildPerfect lays t out perfect when it fits; t.perf stays nil otherwise.
func (t *tree) buildPerfect(nFeatures int) {
	d := t.depth(0)
	if d > maxPerfectDepth || (d > perfectFreeDepth && 1<<(d+1)-1 > perfectSlack*len(t.nodes)) {
		return
	}
	for _, n := range t.nodes {
		if n.left >= 0 && (n.threshold != n.threshold || n.threshold == math.Inf(1)) {
			return
		}
	}
	p := &perfTree{depth: d, nodes: make([]pnode, 1<<d-1), leaf: make([]int32, 1<<d)}
	t.fillPerfect(p, 0, 0, 0, nFeatures)
	t.perf = p
}

// fillPerfect writes the subtree of node src at heap index h, level lvl.
func (t *tree) fillPerfect(p *perfTree, h, lvl, src, nFeatures int) {
	if lvl == p.depth {
		p.leaf[h-(1<<p.depth-1)] = int32(src * t.nValues)
		return
	}
	n := &t.nodes[src]
	left, right := src, src
	// Padding (under a leaf): any comparison leads to the same leaf.
	p.nodes[h] = pnode{}
	if n.left >= 0 {
		f := n.feature
		if n.missingLeft {
			f += int32(nFeatures)
		}
		p.nodes[h] = pnode{feat: f, thr: floor32(n.threshold)}
		left, right = int(n.left), int(n.right)
	}
	t.fillPerfect(p, 2*h+1, lvl+1, left, nFeatures)
	t.fillPerfect(p, 2*h+2, lvl+1, right, nFeatures)
}

// expandRows writes the rows of x (cols each) into buf as float32, 2×cols
// per row: NaN as +Inf, then NaN as −Inf.
func expandRows(buf []float32, x []float64, cols int) {
	inf, ninf := float32(math.Inf(1)), float32(math.Inf(-1))
	rows := len(x) / cols
	for r := range rows {
		row := x[r*cols : (r+1)*cols]
		out := buf[r*2*cols : (r+1)*2*cols]
		right, left := out[:cols], out[cols:]
		for f, v := range row {
			v32 := float32(v)
			if v32 != v32 {
				right[f], left[f] = inf, ninf
				continue
			}
			right[f], left[f] = v32, v32
		}
	}
}

func b2u(b bool) uint32 {
	var u uint32
	if b {
		u = 1
	}
	return u
}

// leaf1 walks the perfect tree for one expanded row and returns the
// offset of the leaf's values.
func (p *perfTree) leaf1(row []float32) int32 {
	var i uint32
	for range p.depth {
		n := p.nodes[i]
		i = 2*i + 2 - b2u(row[n.feat] <= n.thr)
	}
	return p.leaf[int(i)-len(p.nodes)]
}

// block walks the perfect tree for the n expanded rows in xb (stride
// float32s apart) one level at a time across all rows, so the CPU overlaps
// their independent chains of loads, and writes each row's leaf offset to
// out[:n].
//
// The loads skip Go's bounds checks: buildPerfect wrote features below
// 2×nFeatures = stride, and a heap index below 2^depth-1 has both children
// inside the tree; the leaf index is below 2^depth by the same argument.
func (p *perfTree) block(xb []float32, stride, n int, out []int32) {
	out = out[:n]
	if n == 0 {
		return
	}
	xp := unsafe.Pointer(unsafe.SliceData(xb[:n*stride]))
	lp := unsafe.Pointer(unsafe.SliceData(p.leaf))
	if p.depth == 0 {
		for r := range out {
			out[r] = p.leaf[0]
		}
		return
	}
	var idx [blockRows]uint32
	ix := idx[:n]
	tp := unsafe.Pointer(unsafe.SliceData(p.nodes))
	rowBytes := uintptr(stride) * 4
	// Every row starts at the root, whose split needs no node load.
	rf, rt := uintptr(p.nodes[0].feat)*4, p.nodes[0].thr
	var row uintptr
	for r := range ix {
		x := *(*float32)(unsafe.Add(xp, row+rf))
		ix[r] = 2 - b2u(x <= rt)
		row += rowBytes
	}
	for range p.depth - 1 {
		row = 0
		for r, i := range ix {
			nd := *(*pnode)(unsafe.Add(tp, uintptr(i)*8))
			x := *(*float32)(unsafe.Add(xp, row+uintptr(nd.feat)*4))
			ix[r] = 2*i + 2 - b2u(x <= nd.thr)
			row += rowBytes
		}
	}
	first := uint32(len(p.nodes))
	for r, i := range ix {
		out[r] = *(*int32)(unsafe.Add(lp, uintptr(i-first)*4))
	}
}

// prepareTrees lays out every tree that fits the perfect layout.
func prepareTrees(trees []*tree, nFeatures int) {
	for _, t := range trees {
		t.buildPerfect(nFeatures)
	}
}

// sumTrees adds, for each row of x and each tree in order, the tree's leaf
// values (k of them) to out[row*k:], as a row-by-row walk does: 0 + v0 +
// v1 + ... when out starts at zero. Large batches go in blocks of rows,
// each converted to float32 once and then walked tree by tree.
func sumTrees(trees []*tree, x mat, out []float64, k int) {
	cols := x.cols
	stride := 2 * cols
	if x.rows < smallBatch {
		var small [2 * 64]float32
		var buf []float32
		if stride <= len(small) {
			buf = small[:stride]
		} else {
			buf = make([]float32, stride)
		}
		for r := range x.rows {
			xr := x.row(r)
			expandRows(buf, xr, cols)
			o := out[r*k : (r+1)*k]
			for _, t := range trees {
				var v []float64
				if t.perf != nil {
					off := t.perf.leaf1(buf)
					v = t.values[off : int(off)+k]
				} else {
					v = t.value(xr)
				}
				for j := range o {
					o[j] += v[j]
				}
			}
		}
		return
	}
	buf := make([]float32, blockRows*stride)
	var leaves [blockRows]int32
	for lo := 0; lo < x.rows; lo += blockRows {
		hi := min(lo+blockRows, x.rows)
		n := hi - lo
		xb := x.data[lo*cols : hi*cols]
		expandRows(buf, xb, cols)
		ob := out[lo*k : hi*k]
		for _, t := range trees {
			if t.perf == nil {
				for r := range n {
					v := t.value(xb[r*cols : (r+1)*cols])
					o := ob[r*k : (r+1)*k]
					for j := range o {
						o[j] += v[j]
					}
				}
				continue
			}
			t.perf.block(buf, stride, n, leaves[:])
			addLeaves(ob, t.values, leaves[:n], k)
		}
	}
}

// addLeaves adds the values at each leaf offset to its row of ob.
func addLeaves(ob, values []float64, leaves []int32, k int) {
	switch k {
	case 1:
		ob = ob[:len(leaves)]
		for r, off := range leaves {
			ob[r] += values[off]
		}
	case 2:
		ob = ob[:2*len(leaves)]
		for r, off := range leaves {
			v := values[off : off+2]
			ob[2*r] += v[0]
			ob[2*r+1] += v[1]
		}
	default:
		for r, off := range leaves {
			v := values[off : int(off)+k]
			o := ob[r*k : (r+1)*k]
			for j := range o {
				o[j] += v[j]
			}
		}
	}
}

// leafValues copies each row's leaf values (nValues of them) to
// out[row*nValues:], exactly as stored: a single tree adds nothing up.
func (t *tree) leafValues(x mat, out []float64) {
	k := t.nValues
	if t.perf == nil || x.rows < smallBatch {
		for r := range x.rows {
			copy(out[r*k:(r+1)*k], t.value(x.row(r)))
		}
		return
	}
	cols := x.cols
	stride := 2 * cols
	buf := make([]float32, blockRows*stride)
	var leaves [blockRows]int32
	for lo := 0; lo < x.rows; lo += blockRows {
		hi := min(lo+blockRows, x.rows)
		expandRows(buf, x.data[lo*cols:hi*cols], cols)
		t.perf.block(buf, stride, hi-lo, leaves[:])
		for r, off := range leaves[:hi-lo] {
			copy(out[(lo+r)*k:(lo+r+1)*k], t.values[off:int(off)+k])
		}
	}
}
