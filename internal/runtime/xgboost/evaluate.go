package xgboost

import (
	"context"
	"runtime"

	fr "github.com/ferryserve/ferry/internal/runtime"
)

const (
	// blockRows rows go through each tree together, which keeps a tree's
	// nodes in cache (XGBoost's CPU predictor blocks rows the same way).
	blockRows = 64
	// rowsPerWorker is the smallest share worth a goroutine of its own.
	rowsPerWorker = 1024
)

// leaf walks the tree at root for one row and returns the leaf value.
func (b *booster) leaf(root int32, row []float32) float32 {
	nodes := b.nodes
	i := root
	for {
		n := &nodes[i]
		if n.feat&bitLeaf != 0 {
			return n.value
		}
		x := row[n.feat&featMask]
		var right bool
		switch {
		case x != x: // NaN: missing
			right = n.feat&bitDefaultLeft == 0
		case n.feat&bitCategorical != 0:
			right = b.catRight(n, x)
		default:
			right = !(x < n.value)
		}
		i = n.left + b2i(right)
	}
}

// lanes is how many rows walk a tree together in leaves8.
const lanes = 8

// leaves8 walks the numeric-only tree t for eight rows at once, depth
// steps each, and adds the leaf values (times w when weighted) to
// out[k*ng+group]. Each step is branch-free: random features mispredict a
// compare branch half the time, and independent rows let the CPU overlap
// their chains of dependent loads.
func (b *booster) leaves8(t treeRef, rows *[lanes][]float32, out []float32, ng int, w float32, weighted bool) {
	nodes := b.nodes
	var idx [lanes]int32
	for k := range idx {
		idx[k] = t.root
	}
	// A constant lane count lets the compiler drop the lane bounds checks.
	for range t.depth {
		for k := range lanes {
			nd := &nodes[idx[k]]
			x := rows[k][nd.feat&featMask]
			notLess := 1 - b2i(x < nd.value)                    // NaN compares false: 1
			present := 1 - b2i(x != x)                          // 0 for NaN
			defRight := int32(nd.feat>>31) ^ 1                  // NaN's direction
			inner := 1 - int32(nd.feat>>29&1)                   // 0 at a leaf, which stays put
			idx[k] = nd.left + inner&notLess&(present|defRight) // right child is left+1
		}
	}
	for k := range lanes {
		v := nodes[idx[k]].value
		if weighted {
			// The conversion rounds the product, as XGBoost's float
			// multiply does, and forbids fusing it into the add.
			v = float32(v * w)
		}
		out[k*ng+int(t.group)] += v
	}
}

func b2i(v bool) int32 {
	var i int32
	if v {
		i = 1
	}
	return i
}

// catRight decides a categorical split the way XGBoost 1.7 does: categories
// in the node's set go right, others left. Values that are not valid
// categories (negative or ≥ 2^24) go left like unseen ones: measured
// against libxgboost 1.7.4, they do not follow the default direction.
func (b *booster) catRight(n *node, x float32) bool {
	if x < 0 || x >= maxCategory {
		return false
	}
	c := uint32(x)
	set := b.cats[n.cat]
	w := c / 64
	return int(w) < len(set) && set[w]>>(c%64)&1 != 0
}

// margins computes the margins of rows [lo, hi) of x (cols features each)
// into out (ngroup per row, indexed from row 0).
func (b *booster) margins(ctx context.Context, x []float32, cols, lo, hi int, out []float32) error {
	ng := b.ngroup
	for r := lo; r < hi; r++ {
		copy(out[r*ng:(r+1)*ng], b.base)
	}
	if b.linear != nil {
		b.linearMargins(x, cols, lo, hi, out)
		return nil
	}
	var (
		rows  [lanes][]float32
		xb    []float32 // the block's rows, expanded for perfect trees
		idx   [blockRows]uint32
		small [256]float32 // xb for small requests, off the heap
	)
	if b.perf != nil {
		xb = small[:]
		if n := min(blockRows, hi-lo) * 2 * cols; n > len(small) {
			xb = make([]float32, n)
		}
	}
	for blk := lo; blk < hi; blk += blockRows {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(hi, blk+blockRows)
		if xb != nil {
			expandRows(xb, x, cols, blk, end)
		}
		if xb != nil && end-blk < lanes {
			// Too few rows to overlap their walks: overlap trees'.
			for r := blk; r < end; r++ {
				o := (r - blk) * 2 * cols
				b.smallBatchRow(xb[o:o+2*cols], x[r*cols:(r+1)*cols], out[r*ng:(r+1)*ng])
			}
			continue
		}
		for ti, t := range b.trees {
			var w float32
			weighted := b.weights != nil
			if weighted {
				w = b.weights[ti]
			}
			r := blk
			if t.perf >= 0 {
				b.perfectBlock(t, xb, 2*cols, end-blk, idx[:], out[blk*ng:], ng, w, weighted)
				continue
			}
			if !t.hasCat {
				for ; r+lanes <= end; r += lanes {
					for k := range lanes {
						rows[k] = x[(r+k)*cols : (r+k+1)*cols]
					}
					b.leaves8(t, &rows, out[r*ng:], ng, w, weighted)
				}
			}
			// Categorical trees, and the rows short of a full group of lanes.
			for ; r < end; r++ {
				v := b.leaf(t.root, x[r*cols:(r+1)*cols])
				if weighted {
					v = float32(v * w)
				}
				out[r*ng+int(t.group)] += v
			}
		}
	}
	return nil
}

// smallBatchRow adds all trees' leaf values for one row (x, and xr its
// expansion) to out, overlapping the walks of four trees at a time.
func (b *booster) smallBatchRow(xr, x, out []float32) {
	trees := b.trees
	for ti := 0; ti < len(trees); {
		t := trees[ti]
		if t.quad {
			var ws []float32
			if b.weights != nil {
				ws = b.weights[ti : ti+4]
			}
			b.perfectTrees4(trees[ti:ti+4], ws, xr, out)
			ti += 4
			continue
		}
		var v float32
		if t.perf >= 0 {
			v = b.perfect1(t, xr)
		} else {
			v = b.leaf(t.root, x)
		}
		if b.weights != nil {
			v = float32(v * b.weights[ti])
		}
		out[t.group] += v
		ti++
	}
}

// linearMargins evaluates gblinear: bias + base + Σ x·w over the features
// present, accumulated in float32 in feature order like XGBoost.
func (b *booster) linearMargins(x []float32, cols, lo, hi int, out []float32) {
	ng := b.ngroup
	bias := b.linear[b.numFeature*ng:]
	for r := lo; r < hi; r++ {
		row := x[r*cols : (r+1)*cols]
		for g := range ng {
			psum := bias[g] + out[r*ng+g]
			for f, v := range row {
				if v == v {
					psum += float32(v * b.linear[f*ng+g])
				}
			}
			out[r*ng+g] = psum
		}
	}
}

// marginsParallel computes all rows' margins, splitting large batches over
// GOMAXPROCS goroutines that it joins before returning (a panic on one
// comes back as an error, see fr.Parallel).
func (b *booster) marginsParallel(ctx context.Context, x []float32, rows, cols int) ([]float32, error) {
	out := make([]float32, rows*b.ngroup)
	workers := min(runtime.GOMAXPROCS(0), rows/rowsPerWorker)
	if workers <= 1 {
		return out, b.margins(ctx, x, cols, 0, rows, out)
	}
	per := (rows + workers - 1) / workers
	err := fr.Parallel(workers, func(w int) error {
		return b.margins(ctx, x, cols, w*per, min(rows, (w+1)*per), out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
