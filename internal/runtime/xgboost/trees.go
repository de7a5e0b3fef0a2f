package xgboost

import (
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime"
)

// setCover records tree t's cover of old node i at flattened index idx.
// Covers are kept only for explainers; a tree without them leaves zeros,
// which TreeEnsemble refuses.
func (b *booster) setCover(idx int, t *rawTree, i int) {
	if len(b.cover) < len(b.nodes) {
		b.cover = append(b.cover, make([]float32, len(b.nodes)-len(b.cover))...)
	}
	if len(t.cover) == len(t.left) {
		b.cover[idx] = t.cover[i]
	}
}

// TreeEnsemble lays the model's trees open for TreeSHAP. Linear boosters
// and models whose files carry no covers (sum_hessian) have no ensemble
// to explain; they return an error wrapping runtime.ErrUnsupported.
func (m *Model) TreeEnsemble() (*runtime.TreeEnsemble, error) {
	b := m.b
	if b.linear != nil {
		return nil, fmt.Errorf("%w: %s booster has no trees", runtime.ErrUnsupported, b.kind)
	}
	e := &runtime.TreeEnsemble{
		NumFeatures:  b.numFeature,
		NumGroups:    b.ngroup,
		Base:         make([]float64, b.ngroup),
		Trees:        make([]runtime.Tree, len(b.trees)),
		FeatureNames: m.raw.featureNames,
	}
	for g, v := range b.base {
		e.Base[g] = float64(v)
	}
	for ti, ref := range b.trees {
		t := runtime.Tree{Group: int(ref.group), Weight: 1}
		if b.weights != nil {
			t.Weight = float64(b.weights[ti])
		}
		end := len(b.nodes)
		if ti+1 < len(b.trees) {
			end = int(b.trees[ti+1].root)
		}
		t.Nodes = make([]runtime.TreeNode, end-int(ref.root))
		for k := range t.Nodes {
			i := int(ref.root) + k
			n := &b.nodes[i]
			out := &t.Nodes[k]
			if i < len(b.cover) {
				out.Cover = float64(b.cover[i])
			}
			if n.feat&bitLeaf != 0 {
				*out = runtime.TreeNode{Left: -1, Right: -1, Feature: -1, Value: float64(n.value), Cover: out.Cover}
				continue
			}
			out.Left = n.left - ref.root
			out.Right = out.Left + 1
			out.Feature = int32(n.feat & featMask)
			out.DefaultLeft = n.feat&bitDefaultLeft != 0
			out.Threshold = float64(n.value)
			out.Kind = runtime.SplitLess
			if n.feat&bitCategorical != 0 {
				out.Kind = runtime.SplitCategory
				out.Categories = b.cats[n.cat]
				out.Threshold = 0 // the file's split_condition is unused (often NaN)
			}
		}
		if t.Nodes[0].Cover <= 0 {
			return nil, fmt.Errorf("%w: tree %d has no cover (sum_hessian) in the model file", runtime.ErrUnsupported, ti)
		}
		e.Trees[ti] = t
	}
	return e, nil
}
