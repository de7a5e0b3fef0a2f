// Package treeshap computes exact SHAP values of tree ensembles with the
// path-dependent TreeSHAP algorithm (Lundberg, Erion and Lee, "Consistent
// individualized feature attribution for tree ensembles", Algorithm 2).
// It reads a model's trees through the optional Source interface and needs
// no background data: the training covers stored in the trees stand in for
// the data distribution, as in XGBoost's pred_contribs.
package treeshap

import (
	"errors"
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime"
)

// Source is implemented by models that can lay their trees open
// (internal/runtime/xgboost.Model). The returned ensemble is not modified.
type Source interface {
	TreeEnsemble() (*runtime.TreeEnsemble, error)
}

// FeatureMapper is implemented by models whose trees read features made
// from the input one column at a time (a scikit-learn Pipeline of scalers
// and imputers ahead of its trees): tree feature j is a function of input
// feature j alone, so each split on it is a split on input feature j.
// Path-dependent TreeSHAP asks only which branch a row takes at each
// split, so the trees' Shapley values at MapFeatures(row) are the model's
// at row. MapFeatures must not modify row and returns NumFeatures values.
type FeatureMapper interface {
	MapFeatures(row []float64) ([]float64, error)
}

// ErrNotTrees: the model has no trees to explain (a linear model, an
// external server). Callers map it to a load-time configuration error.
var ErrNotTrees = errors.New("model has no trees to explain")

// Explainer computes SHAP values for one ensemble. It is read-only after
// New and safe for concurrent use.
type Explainer struct {
	e        *runtime.TreeEnsemble
	means    [][]float64                        // per tree, per node: cover-weighted mean leaf value
	expected []float64                          // per group: Base + Σ weight·mean(root)
	bufLen   int                                // path elements one row's recursion needs
	mapIn    func([]float64) ([]float64, error) // input row to tree features, or nil
}

// FromModel builds an explainer for m, or an error wrapping ErrNotTrees
// when m (unwrapped) does not expose trees.
func FromModel(m runtime.Model) (*Explainer, error) {
	src, ok := runtime.Unwrap(m).(Source)
	if !ok {
		return nil, fmt.Errorf("%w: %s runtime does not expose trees", ErrNotTrees, m.Metadata().Platform)
	}
	e, err := src.TreeEnsemble()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotTrees, err)
	}
	x, err := New(e)
	if err != nil {
		return nil, err
	}
	if fm, ok := src.(FeatureMapper); ok {
		x.mapIn = fm.MapFeatures
	}
	return x, nil
}

// New validates e and precomputes node means.
func New(e *runtime.TreeEnsemble) (*Explainer, error) {
	if e.NumFeatures < 1 || e.NumGroups < 1 || len(e.Base) != e.NumGroups {
		return nil, fmt.Errorf("treeshap: ensemble has %d features, %d groups, %d base margins", e.NumFeatures, e.NumGroups, len(e.Base))
	}
	x := &Explainer{e: e, means: make([][]float64, len(e.Trees)), expected: append([]float64(nil), e.Base...)}
	maxDepth := 0
	for ti := range e.Trees {
		t := &e.Trees[ti]
		if t.Group < 0 || t.Group >= e.NumGroups {
			return nil, fmt.Errorf("treeshap: tree %d adds to group %d of %d", ti, t.Group, e.NumGroups)
		}
		d, err := validate(t, e.NumFeatures)
		if err != nil {
			return nil, fmt.Errorf("treeshap: tree %d: %w", ti, err)
		}
		if d >= maxPath {
			return nil, fmt.Errorf("treeshap: tree %d is %d deep, more than %d", ti, d, maxPath-1)
		}
		maxDepth = max(maxDepth, d)
		x.means[ti] = nodeMeans(t)
		x.expected[t.Group] += t.Weight * x.means[ti][0]
	}
	x.bufLen = (maxDepth + 2) * (maxDepth + 3) / 2
	return x, nil
}

// validate checks that t is a tree (every node reached once from the root,
// children in range) with features in range and positive covers, and
// returns its depth.
func validate(t *runtime.Tree, features int) (int, error) {
	n := len(t.Nodes)
	if n == 0 {
		return 0, errors.New("no nodes")
	}
	seen := make([]bool, n)
	type item struct{ node, depth int }
	stack := []item{{0, 0}}
	seen[0] = true
	depth := 0
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		nd := &t.Nodes[it.node]
		depth = max(depth, it.depth)
		if nd.IsLeaf() {
			continue
		}
		if nd.Feature < 0 || int(nd.Feature) >= features {
			return 0, fmt.Errorf("node %d splits on feature %d of %d", it.node, nd.Feature, features)
		}
		if !(nd.Cover > 0) {
			return 0, fmt.Errorf("node %d has cover %v", it.node, nd.Cover)
		}
		for _, c := range [2]int32{nd.Left, nd.Right} {
			if c <= 0 || int(c) >= n || seen[c] {
				return 0, fmt.Errorf("node %d has children %d and %d", it.node, nd.Left, nd.Right)
			}
			seen[c] = true
			stack = append(stack, item{int(c), it.depth + 1})
		}
	}
	return depth, nil
}

// nodeMeans returns each node's expected output under the training
// distribution: a leaf's value, or its children's means weighted by their
// covers over the node's own cover (XGBoost's FillNodeMeanValues).
func nodeMeans(t *runtime.Tree) []float64 {
	means := make([]float64, len(t.Nodes))
	var fill func(i int32) float64
	fill = func(i int32) float64 {
		n := &t.Nodes[i]
		if n.IsLeaf() {
			means[i] = n.Value
		} else {
			l, r := fill(n.Left), fill(n.Right)
			means[i] = (l*t.Nodes[n.Left].Cover + r*t.Nodes[n.Right].Cover) / n.Cover
		}
		return means[i]
	}
	fill(0)
	return means
}

// NumFeatures is the number of input features.
func (x *Explainer) NumFeatures() int { return x.e.NumFeatures }

// NumGroups is the number of margins per row.
func (x *Explainer) NumGroups() int { return x.e.NumGroups }

// FeatureNames are the names the model carries, if any.
func (x *Explainer) FeatureNames() []string { return x.e.FeatureNames }

// ExpectedValue is the expected margin of each group: the bias term.
func (x *Explainer) ExpectedValue() []float64 { return x.expected }

// Width is the length of one row's output: NumGroups × (NumFeatures+1).
func (x *Explainer) Width() int { return x.e.NumGroups * (x.e.NumFeatures + 1) }

// Shap writes the SHAP values of row (NumFeatures values, NaN missing)
// into out (Width values): for each group the contributions of the
// features and then the bias, in margin space, so that each group's values
// sum to the row's margin. It is XGBoost's pred_contribs layout.
func (x *Explainer) Shap(row []float64, out []float64) error {
	return x.shap(row, out, make([]pathElem, x.bufLen))
}

// ShapRows explains rows (row-major, NumFeatures columns) into out (Width
// values per row), reusing one buffer for all rows.
func (x *Explainer) ShapRows(rows []float64, out []float64) error {
	f := x.e.NumFeatures
	if len(rows)%f != 0 || len(out) != len(rows)/f*x.Width() {
		return fmt.Errorf("treeshap: %d values for rows of %d features, %d outputs", len(rows), f, len(out))
	}
	buf := make([]pathElem, x.bufLen)
	w := x.Width()
	for r := range len(rows) / f {
		if err := x.shap(rows[r*f:(r+1)*f], out[r*w:(r+1)*w], buf); err != nil {
			return err
		}
	}
	return nil
}

func (x *Explainer) shap(row, out []float64, buf []pathElem) error {
	f := x.e.NumFeatures
	if len(row) != f || len(out) != x.Width() {
		return fmt.Errorf("treeshap: row has %d features, want %d; output has %d values, want %d", len(row), f, len(out), x.Width())
	}
	row, err := x.input(row)
	if err != nil {
		return err
	}
	x.contribs(row, out, buf)
	return nil
}

// input is row as the trees read it.
func (x *Explainer) input(row []float64) ([]float64, error) {
	if x.mapIn == nil {
		return row, nil
	}
	r, err := x.mapIn(row)
	if err != nil {
		return nil, fmt.Errorf("treeshap: computing the trees' features: %w", err)
	}
	if len(r) != x.e.NumFeatures {
		return nil, fmt.Errorf("treeshap: the model maps %d features to %d, the trees read %d", len(row), len(r), x.e.NumFeatures)
	}
	return r, nil
}

// contribs writes the SHAP values of a row the trees read into out.
func (x *Explainer) contribs(row, out []float64, buf []pathElem) {
	f := x.e.NumFeatures
	x.conditioned(row, out, buf, 0, -1)
	for g, b := range x.e.Base {
		out[g*(f+1)+f] += b
	}
	for ti := range x.e.Trees {
		t := &x.e.Trees[ti]
		out[t.Group*(f+1)+f] += t.Weight * x.means[ti][0]
	}
}

// conditioned writes the trees' feature contributions into out (bias
// columns zero), with feature cf held on (cond > 0: every path takes the
// row's branch at its splits) or off (cond < 0: paths split by cover
// there) or free (cond == 0, plain TreeSHAP); XGBoost's conditioned
// TreeShap, which interaction values are built from.
func (x *Explainer) conditioned(row, out []float64, buf []pathElem, cond int, cf int32) {
	f := x.e.NumFeatures
	clear(out)
	for ti := range x.e.Trees {
		t := &x.e.Trees[ti]
		phi := out[t.Group*(f+1) : (t.Group+1)*(f+1)]
		w := walker{t: t, row: row, phi: phi, weight: t.Weight, cond: cond, condFeature: cf}
		w.recurse(0, nil, buf, 1, 1, -1, 1)
	}
}

// InteractionWidth is the length of one row's interaction values:
// NumGroups × (NumFeatures+1)².
func (x *Explainer) InteractionWidth() int {
	n := x.e.NumFeatures + 1
	return x.e.NumGroups * n * n
}

// Interactions writes the SHAP interaction values of row into out
// (InteractionWidth values): for each group an (F+1)×(F+1) matrix, row
// i column j the interaction of features i and j (half of it each way),
// the diagonal the main effects, so that row i sums to feature i's SHAP
// value; the last row and column belong to the bias. It is XGBoost's
// pred_interactions layout and method: the difference between the
// contributions with feature i held on and held off, halved.
func (x *Explainer) Interactions(row, out []float64) error {
	f := x.e.NumFeatures
	n := f + 1
	if len(row) != f || len(out) != x.InteractionWidth() {
		return fmt.Errorf("treeshap: row has %d features, want %d; output has %d values, want %d", len(row), f, len(out), x.InteractionWidth())
	}
	row, err := x.input(row)
	if err != nil {
		return err
	}
	buf := make([]pathElem, x.bufLen)
	diag := make([]float64, x.Width())
	on := make([]float64, x.Width())
	off := make([]float64, x.Width())
	x.contribs(row, diag, buf)
	clear(out)
	for i := range n {
		if i < f {
			x.conditioned(row, on, buf, 1, int32(i))
			x.conditioned(row, off, buf, -1, int32(i))
		}
		for g := range x.e.NumGroups {
			m := out[g*n*n+i*n : g*n*n+(i+1)*n]
			c := g * n
			m[i] = diag[c+i]
			if i == f {
				continue // the bias interacts with nothing
			}
			for k := range n {
				if k == i {
					continue
				}
				m[k] = (on[c+k] - off[c+k]) / 2
				m[i] -= m[k]
			}
		}
	}
	return nil
}

// pathElem is one feature on the path from the root: the fraction of
// "zero" paths (feature unknown: the row follows both children by cover)
// and "one" paths (feature known: only the row's branch) that flow through
// it, and the proportion of feature subsets of each size (weight).
type pathElem struct {
	feature   int32
	zero, one float64
	weight    float64
}

type walker struct {
	t      *runtime.Tree
	row    []float64
	phi    []float64
	weight float64
	// cond holds feature condFeature on (> 0) or off (< 0), or nothing.
	cond        int
	condFeature int32
}

// recurse visits node with the path of its parent, which it copies into
// the head of buf before extending it; children use the rest of buf.
// condFrac is the share of the paths that the conditioned feature lets
// through (1 without conditioning).
func (w *walker) recurse(node int32, parent, buf []pathElem, zero, one float64, feature int32, condFrac float64) {
	if condFrac == 0 {
		return
	}
	p := buf[:len(parent)]
	copy(p, parent)
	if w.cond == 0 || feature != w.condFeature {
		p = extend(p, zero, one, feature)
	}
	rest := buf[len(p):]
	n := &w.t.Nodes[node]
	if n.IsLeaf() {
		v := n.Value * w.weight * condFrac
		for i := 1; i < len(p); i++ {
			w.phi[p[i].feature] += unwoundSum(p, i) * (p[i].one - p[i].zero) * v
		}
		return
	}
	hot, cold := n.Right, n.Left
	if n.GoesLeft(w.row[n.Feature]) {
		hot, cold = n.Left, n.Right
	}
	inZero, inOne := 1.0, 1.0
	for k := 1; k < len(p); k++ {
		if p[k].feature == n.Feature {
			inZero, inOne = p[k].zero, p[k].one
			p = unwind(p, k)
			break
		}
	}
	nodes := w.t.Nodes
	hotFrac, coldFrac := condFrac, condFrac
	if w.cond != 0 && n.Feature == w.condFeature {
		if w.cond > 0 {
			coldFrac = 0
		} else {
			hotFrac *= nodes[hot].Cover / n.Cover
			coldFrac *= nodes[cold].Cover / n.Cover
		}
	}
	if hotZero := inZero * nodes[hot].Cover / n.Cover; hotZero > 0 || inOne > 0 {
		w.recurse(hot, p, rest, hotZero, inOne, n.Feature, hotFrac)
	}
	// A child that no path reaches (no training row went there and the
	// row does not) adds nothing, and unwinding it would divide by zero.
	if coldZero := inZero * nodes[cold].Cover / n.Cover; coldZero > 0 {
		w.recurse(cold, p, rest, coldZero, 0, n.Feature, coldFrac)
	}
}

// inv[k] is 1/k: the path arithmetic multiplies by it instead of
// dividing, which more than halves the time per row.
var inv = func() (t [maxPath + 2]float64) {
	for k := 1; k < len(t); k++ {
		t[k] = 1 / float64(k)
	}
	return t
}()

// maxPath bounds a path's length: one element per distinct feature on a
// root-to-leaf path, plus the root's.
const maxPath = 1024

// extend appends a feature to the path, splitting every subset size's
// weight between the subsets that leave it out (zero) and hold it (one).
func extend(p []pathElem, zero, one float64, feature int32) []pathElem {
	l := len(p)
	p = p[:l+1]
	p[l] = pathElem{feature: feature, zero: zero, one: one}
	if l == 0 {
		p[l].weight = 1
		return p
	}
	zd, od := zero*inv[l+1], one*inv[l+1]
	for i := l - 1; i >= 0; i-- {
		w := p[i].weight
		p[i+1].weight += od * w * float64(i+1)
		p[i].weight = zd * w * float64(l-i)
	}
	return p
}

// unwind removes element i from the path, undoing its extend.
func unwind(p []pathElem, i int) []pathElem {
	l := len(p) - 1
	zero, one := p[i].zero, p[i].one
	d := float64(l + 1)
	next := p[l].weight
	if one != 0 {
		do, zd := d/one, zero*inv[l+1]
		for j := l - 1; j >= 0; j-- {
			old := p[j].weight
			w := next * do * inv[j+1]
			p[j].weight = w
			next = old - w*zd*float64(l-j)
		}
	} else {
		dz := d / zero
		for j := l - 1; j >= 0; j-- {
			p[j].weight *= dz * inv[l-j]
		}
	}
	for j := i; j < l; j++ {
		p[j].feature, p[j].zero, p[j].one = p[j+1].feature, p[j+1].zero, p[j+1].one
	}
	return p[:l]
}

// unwoundSum is the total weight the path would have with element i
// unwound, computed without changing the path.
func unwoundSum(p []pathElem, i int) float64 {
	l := len(p) - 1
	zero, one := p[i].zero, p[i].one
	d := float64(l + 1)
	total := 0.0
	if one != 0 {
		do, zd := d/one, zero*inv[l+1]
		next := p[l].weight
		for j := l - 1; j >= 0; j-- {
			t := next * do * inv[j+1]
			total += t
			next = p[j].weight - t*zd*float64(l-j)
		}
		return total
	}
	dz := d / zero
	for j := l - 1; j >= 0; j-- {
		total += p[j].weight * inv[l-j]
	}
	return total * dz
}
