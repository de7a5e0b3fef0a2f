package lightgbm

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	fr "github.com/ferryserve/ferry/internal/runtime"
)

// Rows are handed to workers in chunks of this many; batches smaller than
// two chunks run on the calling goroutine.
const chunkRows = 256

type results struct {
	raw     []float64 // rows × numClass raw scores
	predict []float64 // transformed raw, or raw itself with raw_score; nil unless wanted
	leaves  []int64   // rows × (end-start), nil unless wanted
}

// evaluate scores every row of x. Large batches are split into chunks that
// a few goroutines, started and joined here, take in turn; ctx is checked
// between chunks.
func (m *Model) evaluate(ctx context.Context, x fr.Matrix[float64], p plan) (results, error) {
	k := m.b.treesPerIter
	var r results
	if p.wantPredict && !p.rawScore {
		// One allocation for both.
		both := make([]float64, 2*x.Rows*k)
		r.raw, r.predict = both[:x.Rows*k:x.Rows*k], both[x.Rows*k:]
	} else {
		r.raw = make([]float64, x.Rows*k)
		if p.wantPredict {
			r.predict = r.raw
		}
	}
	if p.wantLeaves {
		r.leaves = make([]int64, x.Rows*(p.end-p.start))
	}
	chunks := (x.Rows + chunkRows - 1) / chunkRows
	workers := min(runtime.GOMAXPROCS(0), chunks)
	if workers <= 1 {
		m.evalRows(x, p, r, 0, x.Rows)
		return r, ctx.Err()
	}
	var next atomic.Int64
	shared := r // captured by the workers; r itself stays off the heap
	err := fr.Parallel(workers, func(int) error {
		for ctx.Err() == nil {
			c := int(next.Add(1)) - 1
			if c >= chunks {
				return nil
			}
			m.evalRows(x, p, shared, c*chunkRows, min((c+1)*chunkRows, x.Rows))
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	return r, ctx.Err()
}

// evalRows fills rows [lo, hi) of the results.
func (m *Model) evalRows(x fr.Matrix[float64], p plan, r results, lo, hi int) {
	b := m.b
	k := b.treesPerIter
	if p.wantLeaves {
		nt := p.end - p.start
		for i := lo; i < hi; i++ {
			leaves := r.leaves[i*nt : (i+1)*nt]
			for j := range nt {
				leaves[j] = int64(b.trees[p.start+j].leaf(x.Row(i)))
			}
		}
		if !p.wantPredict && !p.wantRaw {
			return
		}
	}
	if b.ftrees != nil {
		m.scoreFlat(x, p, r.raw, lo, hi)
	}
	for i := lo; i < hi && b.ftrees == nil; i += group {
		if i+group <= hi && noNaN(x.Data[i*x.Cols:(i+group)*x.Cols]) {
			m.scoreGroup(x, p, r.raw, i)
			continue
		}
		for j := i; j < min(i+group, hi); j++ {
			row := x.Row(j)
			s := r.raw[j*k : (j+1)*k]
			clean := noNaN(row)
			// Sum in file order per class, as LightGBM does, so results
			// match bit for bit.
			for t := p.start; t < p.end; t++ {
				s[t%k] += b.trees[t].predict(row, clean)
			}
		}
	}
	for i := lo; i < hi; i++ {
		s := r.raw[i*k : (i+1)*k]
		if b.averageOutput && p.iterations > 0 {
			for c := range s {
				s[c] /= float64(p.iterations)
			}
		}
		if p.wantPredict && !p.rawScore {
			out := r.predict[i*k : (i+1)*k]
			copy(out, s)
			b.objective.transform(out)
		}
	}
}

// scoreFlat adds the trees' outputs to raw for rows [lo, hi), tree by
// tree in file order per row: laid-out trees through the flat layout,
// the others through the node walk.
func (m *Model) scoreFlat(x fr.Matrix[float64], p plan, raw []float64, lo, hi int) {
	b := m.b
	k := b.treesPerIter
	stride := b.stride
	nb := blockFor(stride)
	var small [256]float64 // expanded rows of small requests, off the heap
	var xb []float64
	if n := min(nb, hi-lo) * stride; n <= len(small) {
		xb = small[:n]
	} else {
		// Large batches come here once per chunk of chunkRows rows.
		buf, _ := blockBufs.Get().(*[]float64)
		if buf == nil || cap(*buf) < n {
			buf = &[]float64{}
			*buf = make([]float64, n)
		}
		defer blockBufs.Put(buf)
		xb = (*buf)[:n]
	}
	var idx [blockRows]uint32
	var clean [blockRows]bool
	for blk := lo; blk < hi; blk += nb {
		end := min(hi, blk+nb)
		n := end - blk
		for r := range n {
			row := x.Row(blk + r)
			b.expandRow(xb[r*stride:(r+1)*stride], row)
			clean[r] = noNaN(row)
		}
		if n < minBlock {
			for r := range n {
				m.flatRow(p, xb[r*stride:(r+1)*stride], x.Row(blk+r), raw[(blk+r)*k:(blk+r+1)*k], clean[r])
			}
			continue
		}
		for t := p.start; t < p.end; t++ {
			tr := &b.trees[t]
			ft := b.ftrees[t]
			c := t % k
			if ft.size == 0 {
				for r := range n {
					raw[(blk+r)*k+c] += tr.predict(x.Row(blk+r), clean[r])
				}
				continue
			}
			b.walkBlock(ft, xb, stride, n, idx[:])
			if tr.linear == nil {
				for r, i := range idx[:n] {
					raw[(blk+r)*k+c] += b.flat[i].thr
				}
				continue
			}
			for r, i := range idx[:n] {
				raw[(blk+r)*k+c] += tr.output(int(b.fleaf[i]), x.Row(blk+r))
			}
		}
	}
}

// blockBufs holds the expanded rows of a block between chunks.
var blockBufs sync.Pool

// flatRow adds the trees' outputs to s for one row (row, and xr its
// expansion): every laid-out tree through walkRow when all trees are
// used, tree by tree otherwise.
func (m *Model) flatRow(p plan, xr, row, s []float64, clean bool) {
	b := m.b
	k := b.treesPerIter
	if p.start == 0 && p.end == len(b.trees) {
		var buf [256]uint32
		at := buf[:]
		if len(b.order) > len(buf) {
			at = make([]uint32, len(b.order))
		}
		b.walkRow(xr, at)
		if b.leavesOnly {
			// Every tree laid out, constant leaves, one score per row.
			fl := b.flat
			v := s[0]
			for _, j := range b.rank {
				v += fl[at[j]].thr
			}
			s[0] = v
			return
		}
		for t := range b.trees {
			j := b.rank[t]
			v := 0.0
			switch tr := &b.trees[t]; {
			case j < 0:
				v = tr.predict(row, clean)
			case tr.linear == nil:
				v = b.flat[at[j]].thr
			default:
				v = tr.output(int(b.fleaf[at[j]]), row)
			}
			if k == 1 {
				s[0] += v
			} else {
				s[t%k] += v
			}
		}
		return
	}
	for t := p.start; t < p.end; t++ {
		tr := &b.trees[t]
		ft := b.ftrees[t]
		switch {
		case ft.size == 0:
			s[t%k] += tr.predict(row, clean)
		case tr.linear == nil:
			s[t%k] += b.flat[b.walk1(ft, xr)].thr
		default:
			s[t%k] += tr.output(int(b.fleaf[b.walk1(ft, xr)]), row)
		}
	}
}

// group is how many NaN-free rows walk each plain tree together: their
// walks are independent, so the CPU overlaps their loads and compares.
const group = 4

// scoreGroup adds the trees' outputs to raw for the NaN-free rows
// [i, i+group), tree by tree in file order.
func (m *Model) scoreGroup(x fr.Matrix[float64], p plan, raw []float64, i int) {
	k := m.b.treesPerIter
	x0, x1, x2, x3 := x.Row(i), x.Row(i+1), x.Row(i+2), x.Row(i+3)
	s0, s1, s2, s3 := raw[i*k:(i+1)*k], raw[(i+1)*k:(i+2)*k], raw[(i+2)*k:(i+3)*k], raw[(i+3)*k:(i+4)*k]
	for t := p.start; t < p.end; t++ {
		tr := &m.b.trees[t]
		c := t % k
		if !tr.plain {
			s0[c] += tr.predict(x0, true)
			s1[c] += tr.predict(x1, true)
			s2[c] += tr.predict(x2, true)
			s3[c] += tr.predict(x3, true)
			continue
		}
		l := tr.leafPlain4(x0, x1, x2, x3)
		s0[c] += tr.output(int(l[0]), x0)
		s1[c] += tr.output(int(l[1]), x1)
		s2[c] += tr.output(int(l[2]), x2)
		s3[c] += tr.output(int(l[3]), x3)
	}
}

func noNaN(v []float64) bool {
	for _, f := range v {
		if f != f {
			return false
		}
	}
	return true
}
