package lightgbm

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/ferryserve/ferry/internal/runtime"
)

// ParseTreeEnsemble reads a model.txt's trees for TreeSHAP: the trees as
// Parse reads them, with the training row counts (internal_count,
// leaf_count) LightGBM's own TreeSHAP (predict_contrib) uses as covers.
// Parse does not keep the counts, since prediction does not need them.
// Linear trees, and Zero-as-missing splits whose default side is not the
// side zero takes anyway, have no exact representation and return an
// error wrapping runtime.ErrUnsupported.
func ParseTreeEnsemble(data []byte) (*runtime.TreeEnsemble, error) {
	b, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("lightgbm: %w", err)
	}
	counts, err := treeCounts(data, len(b.trees))
	if err != nil {
		return nil, fmt.Errorf("lightgbm: %w", err)
	}
	return b.ensemble(counts)
}

// treeCounts reads every tree block's internal_count and leaf_count, in
// either order, as the internal counts followed by the leaf counts.
func treeCounts(data []byte, trees int) ([][]float64, error) {
	out := make([][]float64, 0, trees)
	var internal, leaves []float64
	seen := 0
	flush := func() {
		if seen == 2 {
			out = append(out, append(internal, leaves...))
		}
		internal, leaves, seen = nil, nil, 0
	}
	for _, l := range splitLines(data) {
		if string(l) == "end of trees" {
			break
		}
		k, v, ok := bytes.Cut(l, []byte("="))
		if !ok {
			continue
		}
		switch string(k) {
		case "Tree":
			flush()
		case "internal_count", "leaf_count":
			var vals []float64
			for _, f := range bytes.Fields(v) {
				c, err := strconv.ParseFloat(string(f), 64)
				if err != nil || c < 0 {
					return nil, corrupt("tree %d: %s holds %q", len(out), k, clip(f))
				}
				vals = append(vals, c)
			}
			if string(k) == "internal_count" {
				internal = vals
			} else {
				leaves = vals
			}
			seen++
		}
	}
	flush()
	if len(out) != trees {
		return nil, fmt.Errorf("%w: %d of %d trees have internal_count and leaf_count (TreeSHAP needs the training counts)", runtime.ErrUnsupported, len(out), trees)
	}
	return out, nil
}

// ensemble lays b open with counts[t] = internal then leaf counts of
// tree t. Inner node i keeps index i; leaf l becomes node inner+l.
func (b *booster) ensemble(counts [][]float64) (*runtime.TreeEnsemble, error) {
	k := b.treesPerIter
	e := &runtime.TreeEnsemble{
		NumFeatures: b.numFeatures, NumGroups: k, Base: make([]float64, k),
		Trees: make([]runtime.Tree, len(b.trees)), FeatureNames: b.featureNames,
	}
	weight := 1.0
	if b.averageOutput {
		weight = 1 / float64(b.iterations())
	}
	for ti := range b.trees {
		t := &b.trees[ti]
		if t.linear != nil {
			return nil, fmt.Errorf("%w: lightgbm tree %d is a linear tree; TreeSHAP explains constant leaves", runtime.ErrUnsupported, ti)
		}
		inner := len(t.nodes)
		if len(counts[ti]) != inner+len(t.leafValue) {
			return nil, corrupt("tree %d: %d counts for %d nodes and %d leaves", ti, len(counts[ti]), inner, len(t.leafValue))
		}
		nodes := make([]runtime.TreeNode, inner+len(t.leafValue))
		index := func(c int32) int32 {
			if c < 0 {
				return int32(inner) + ^c
			}
			return c
		}
		for i := range t.leafValue {
			nodes[inner+i] = runtime.TreeNode{Left: -1, Right: -1, Feature: -1, Value: t.leafValue[i], Cover: counts[ti][inner+i]}
		}
		for i := range t.nodes {
			n, err := t.node(i)
			if err != nil {
				return nil, fmt.Errorf("%w: lightgbm tree %d: %w", runtime.ErrUnsupported, ti, err)
			}
			n.Left, n.Right = index(n.Left), index(n.Right)
			n.Cover = counts[ti][i]
			nodes[i] = n
		}
		e.Trees[ti] = runtime.Tree{Group: ti % k, Weight: weight, Nodes: nodes}
	}
	return e, nil
}

// node converts inner node i, children still in LightGBM's numbering,
// so that runtime.TreeNode.GoesLeft decides as goLeft does.
func (t *tree) node(i int) (runtime.TreeNode, error) {
	n := &t.nodes[i]
	out := runtime.TreeNode{Feature: n.feature, Left: n.children[0], Right: n.children[1], Threshold: n.threshold, Kind: runtime.SplitLessEqual}
	if n.categorical() {
		// LightGBM sends categories in the set left, runtime.SplitCategory
		// right: swap the children. Values never in the set (NaN,
		// negative) take LightGBM's right child, now the left one.
		out.Kind, out.Threshold = runtime.SplitCategory, 0
		out.Left, out.Right = n.children[1], n.children[0]
		out.DefaultLeft = true
		words := t.catBits[n.catLo:n.catHi]
		out.Categories = make([]uint64, (len(words)+1)/2)
		for w, bits := range words {
			out.Categories[w/2] |= uint64(bits) << (32 * (w % 2))
		}
		return out, nil
	}
	switch n.missingType() {
	case missingNaN:
		out.DefaultLeft = n.defaultLeft()
	case missingNone:
		out.DefaultLeft = 0 <= n.threshold // NaN is read as 0
	case missingZero:
		// Zero (and NaN, read as 0) takes the default side; that is
		// x <= threshold with NaN to the default only when zero lies on
		// the default side anyway.
		left := n.defaultLeft()
		if left && n.threshold < zeroThreshold || !left && n.threshold >= -zeroThreshold {
			return out, fmt.Errorf("node %d sends zero to its default side %s across threshold %g (zero_as_missing); TreeSHAP cannot represent it", i, side(left), n.threshold)
		}
		out.DefaultLeft = left
	}
	return out, nil
}

func side(left bool) string {
	if left {
		return "left"
	}
	return "right"
}

// TreeEnsemble lays the loaded model's trees open for TreeSHAP, as
// predict_contrib sees them: every tree the model predicts with by default
// (Options.NumIteration rounds when set), with the training counts as
// covers. It is built once, on first use, and shared; callers must not
// modify it. Models whose file has no counts, linear trees, and
// unrepresentable zero_as_missing splits return an error wrapping
// runtime.ErrUnsupported.
func (m *Model) TreeEnsemble() (*runtime.TreeEnsemble, error) {
	m.ensOnce.Do(func() {
		if m.countsErr != nil {
			m.ensErr = m.countsErr
			return
		}
		e, err := m.b.ensemble(m.counts)
		if err != nil {
			m.ensErr = err
			return
		}
		if n := m.opts.NumIteration; n > 0 && n < m.b.iterations() {
			e.Trees = e.Trees[:n*m.b.treesPerIter]
			if m.b.averageOutput {
				for i := range e.Trees {
					e.Trees[i].Weight = 1 / float64(n)
				}
			}
		}
		m.ens = e
	})
	return m.ens, m.ensErr
}
