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
	r := results{raw: make([]float64, x.Rows*k)}
	if p.wantPredict {
		r.predict = r.raw
		if !p.rawScore {
			r.predict = make([]float64, x.Rows*k)
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
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c := int(next.Add(1)) - 1
				if c >= chunks {
					return
				}
				m.evalRows(x, p, r, c*chunkRows, min((c+1)*chunkRows, x.Rows))
			}
		}()
	}
	wg.Wait()
	return r, ctx.Err()
}

// evalRows fills rows [lo, hi) of the results.
func (m *Model) evalRows(x fr.Matrix[float64], p plan, r results, lo, hi int) {
	b := m.b
	k := b.treesPerIter
	nt := p.end - p.start
	for i := lo; i < hi; i++ {
		row := x.Row(i)
		s := r.raw[i*k : (i+1)*k]
		if p.wantLeaves {
			leaves := r.leaves[i*nt : (i+1)*nt]
			for j := range nt {
				leaves[j] = int64(b.trees[p.start+j].leaf(row))
			}
			if !p.wantPredict && !p.wantRaw {
				continue
			}
		}
		// Sum in file order per class, as LightGBM does, so results match
		// bit for bit.
		for t := p.start; t < p.end; t += k {
			for c := range k {
				s[c] += b.trees[t+c].predict(row)
			}
		}
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
