package xgboost

import (
	"context"
	"runtime"
	"sync"
)

const (
	// blockRows rows go through each tree together, which keeps a tree's
	// nodes in cache (XGBoost's CPU predictor blocks rows the same way).
	blockRows = 64
	// rowsPerWorker is the smallest share worth a goroutine of its own.
	rowsPerWorker = 1024
)

// leaf walks the tree at root for one row and returns the leaf value. The
// common case, a numeric split on a present value, is written without a
// branch on the comparison, which random data mispredicts half the time.
func (b *booster) leaf(root int32, row []float32) float32 {
	nodes := b.nodes
	i := root
	for {
		n := &nodes[i]
		if n.left < 0 {
			return n.value
		}
		x := row[n.feat&featMask]
		if n.feat&bitCategorical == 0 && x == x {
			i = n.left + b2i(!(x < n.value))
			continue
		}
		var right bool
		if x != x { // NaN: missing
			right = n.feat&bitDefaultLeft == 0
		} else {
			right = b.catRight(n, x)
		}
		i = n.left + b2i(right)
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
	for blk := lo; blk < hi; blk += blockRows {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(hi, blk+blockRows)
		for t, root := range b.roots {
			g := int(b.groups[t])
			if b.weights != nil {
				w := b.weights[t]
				for r := blk; r < end; r++ {
					// The conversion rounds the product, as XGBoost's
					// float multiply does, and forbids fusing it.
					out[r*ng+g] += float32(b.leaf(root, x[r*cols:(r+1)*cols]) * w)
				}
				continue
			}
			for r := blk; r < end; r++ {
				out[r*ng+g] += b.leaf(root, x[r*cols:(r+1)*cols])
			}
		}
	}
	return nil
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
// GOMAXPROCS goroutines that it joins before returning.
func (b *booster) marginsParallel(ctx context.Context, x []float32, rows, cols int) ([]float32, error) {
	out := make([]float32, rows*b.ngroup)
	workers := min(runtime.GOMAXPROCS(0), rows/rowsPerWorker)
	if workers <= 1 {
		return out, b.margins(ctx, x, cols, 0, rows, out)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	per := (rows + workers - 1) / workers
	for w := range workers {
		lo, hi := w*per, min(rows, (w+1)*per)
		wg.Go(func() { errs[w] = b.margins(ctx, x, cols, lo, hi, out) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
