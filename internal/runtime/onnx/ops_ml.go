package onnx

import (
	"fmt"
	"math"

	"github.com/ferryserve/ferry/internal/runtime"
)

// This file holds the ai.onnx.ml operators: tree ensembles, linear models,
// Scaler, Normalizer and ZipMap, with ONNX Runtime's conventions where the
// specification leaves room (binary classifiers with one score column).

// rows2D reads a [N, C] (or [C]) numeric input as float64 rows.
func rows2D(x *value) (data []float64, n, c int, err error) {
	switch len(x.shape) {
	case 1:
		n, c = 1, x.shape[0]
	case 2:
		n, c = x.shape[0], x.shape[1]
	default:
		return nil, 0, 0, fmt.Errorf("%w: input shape %v; want [rows, features]", runtime.ErrInvalidInput, x.shape)
	}
	data, err = x.float64s()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: %w", runtime.ErrInvalidInput, err)
	}
	return data, n, c, nil
}

// postTransform is an ai.onnx.ml post_transform.
type postTransform uint8

const (
	postNone postTransform = iota
	postSoftmax
	postLogistic
	postSoftmaxZero
	postProbit
)

func readPost(c *nodeCtx) (postTransform, error) {
	switch s := c.str("post_transform", "NONE"); s {
	case "NONE":
		return postNone, nil
	case "SOFTMAX":
		return postSoftmax, nil
	case "LOGISTIC":
		return postLogistic, nil
	case "SOFTMAX_ZERO":
		return postSoftmaxZero, nil
	case "PROBIT":
		return postProbit, nil
	default:
		return 0, fmt.Errorf("%w: post_transform %q", runtime.ErrCorruptModel, s)
	}
}

// apply transforms one row of scores in place.
func (p postTransform) apply(row []float64) {
	switch p {
	case postLogistic:
		for i, v := range row {
			row[i] = sigmoid(v)
		}
	case postSoftmax:
		softmax(row, row, 1, len(row), 1)
	case postSoftmaxZero:
		m := math.Inf(-1)
		for _, v := range row {
			if v != 0 {
				m = max(m, v)
			}
		}
		var sum float64
		for i, v := range row {
			if v != 0 {
				row[i] = math.Exp(v - m)
				sum += row[i]
			}
		}
		for i, v := range row {
			if v != 0 {
				row[i] = v / sum
			}
		}
	case postProbit:
		for i, v := range row {
			row[i] = math.Sqrt2 * math.Erfinv(2*v-1)
		}
	}
}

// binaryScores expands a single score column s to the two columns ONNX
// Runtime (1.30) writes for a binary classifier with one score column:
// [1-t, t] with t the post-transformed score when every weight is
// positive (and for LinearClassifier), otherwise [-s, s], or the logistic
// of both under LOGISTIC.
func binaryScores(s float64, post postTransform, complement bool) (float64, float64) {
	switch {
	case complement:
		t := []float64{s}
		post.apply(t)
		return 1 - t[0], t[0]
	case post == postLogistic:
		return sigmoid(-s), sigmoid(s)
	default:
		return -s, s
	}
}

// classLabels reads classlabels_int64s or classlabels_strings.
type classLabels struct {
	ints []int64
	strs []string
}

func readLabels(c *nodeCtx, intsAttr, strsAttr string) (classLabels, error) {
	l := classLabels{ints: c.ints(intsAttr), strs: c.strs(strsAttr)}
	if (len(l.ints) == 0) == (len(l.strs) == 0) {
		return l, fmt.Errorf("%w: want exactly one of %s and %s", runtime.ErrCorruptModel, intsAttr, strsAttr)
	}
	return l, nil
}

func (l classLabels) len() int { return max(len(l.ints), len(l.strs)) }

// output allocates the label tensor for n rows.
func (l classLabels) output(n int) *value {
	if l.strs != nil {
		return &value{dt: tString, shape: []int{n}, str: make([]string, n)}
	}
	return &value{dt: tInt64, shape: []int{n}, i64: make([]int64, n)}
}

func (l classLabels) set(v *value, row, class int) {
	if l.strs != nil {
		v.str[row] = l.strs[class]
	} else {
		v.i64[row] = l.ints[class]
	}
}

// ---- tree ensembles ----

// Node modes.
const (
	modeLeaf uint8 = iota
	modeLEQ
	modeLT
	modeGTE
	modeGT
	modeEQ
	modeNEQ
)

type treeNode struct {
	mode        uint8
	missingTrue bool
	feature     int
	threshold   float64
	yes, no     int32 // node indexes
	// leaves: weights[wStart:wEnd]
	wStart, wEnd int32
}

type leafWeight struct {
	target int
	w      float64
}

type ensemble struct {
	nodes    []treeNode
	roots    []int32
	weights  []leafWeight
	targets  int
	features int // the largest feature index + 1
	agg      string
	base     []float64
	post     postTransform
}

// readEnsemble builds the trees from the nodes_* attributes and the leaf
// weights from the <prefix>_* attributes (target_ or class_).
func readEnsemble(c *nodeCtx, prefix string, targets int) (*ensemble, error) {
	treeIDs, nodeIDs := c.ints("nodes_treeids"), c.ints("nodes_nodeids")
	feats, modes := c.ints("nodes_featureids"), c.strs("nodes_modes")
	yes, no := c.ints("nodes_truenodeids"), c.ints("nodes_falsenodeids")
	missing := c.ints("nodes_missing_value_tracks_true")
	thr, err := c.floats64("nodes_values")
	if err != nil {
		return nil, err
	}
	n := len(nodeIDs)
	if n == 0 {
		return nil, fmt.Errorf("%w: the ensemble has no nodes", runtime.ErrCorruptModel)
	}
	for _, l := range [][]int64{treeIDs, feats, yes, no} {
		if len(l) != n {
			return nil, fmt.Errorf("%w: nodes_* attributes differ in length", runtime.ErrCorruptModel)
		}
	}
	if len(modes) != n || (len(thr) != n) || (len(missing) != 0 && len(missing) != n) {
		return nil, fmt.Errorf("%w: nodes_* attributes differ in length", runtime.ErrCorruptModel)
	}
	e := &ensemble{targets: targets, nodes: make([]treeNode, n)}
	type key struct{ tree, node int64 }
	index := make(map[key]int32, n)
	for i := range n {
		k := key{treeIDs[i], nodeIDs[i]}
		if _, dup := index[k]; dup {
			return nil, fmt.Errorf("%w: tree %d has node %d twice", runtime.ErrCorruptModel, k.tree, k.node)
		}
		index[k] = int32(i)
	}
	isChild := make([]bool, n)
	for i := range n {
		nd := &e.nodes[i]
		switch modes[i] {
		case "LEAF":
			nd.mode = modeLeaf
		case "BRANCH_LEQ":
			nd.mode = modeLEQ
		case "BRANCH_LT":
			nd.mode = modeLT
		case "BRANCH_GTE":
			nd.mode = modeGTE
		case "BRANCH_GT":
			nd.mode = modeGT
		case "BRANCH_EQ":
			nd.mode = modeEQ
		case "BRANCH_NEQ":
			nd.mode = modeNEQ
		default:
			return nil, fmt.Errorf("%w: node mode %q", runtime.ErrCorruptModel, modes[i])
		}
		nd.threshold = thr[i]
		nd.missingTrue = len(missing) > 0 && missing[i] != 0
		if nd.mode == modeLeaf {
			continue
		}
		if feats[i] < 0 || feats[i] > maxElements {
			return nil, fmt.Errorf("%w: feature id %d", runtime.ErrCorruptModel, feats[i])
		}
		nd.feature = int(feats[i])
		e.features = max(e.features, nd.feature+1)
		y, ok1 := index[key{treeIDs[i], yes[i]}]
		f, ok2 := index[key{treeIDs[i], no[i]}]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: tree %d node %d points to a missing child", runtime.ErrCorruptModel, treeIDs[i], nodeIDs[i])
		}
		nd.yes, nd.no = y, f
		isChild[y], isChild[f] = true, true
	}
	seenTree := map[int64]bool{}
	for i := range n {
		if !isChild[i] {
			if seenTree[treeIDs[i]] {
				return nil, fmt.Errorf("%w: tree %d has more than one root", runtime.ErrCorruptModel, treeIDs[i])
			}
			seenTree[treeIDs[i]] = true
			e.roots = append(e.roots, int32(i))
		}
	}
	if err := e.checkAcyclic(); err != nil {
		return nil, err
	}
	// Leaf weights, grouped per node.
	wTree, wNode, wID := c.ints(prefix+"_treeids"), c.ints(prefix+"_nodeids"), c.ints(prefix+"_ids")
	w, err := c.floats64(prefix + "_weights")
	if err != nil {
		return nil, err
	}
	if len(wNode) != len(wTree) || len(wID) != len(wTree) || len(w) != len(wTree) {
		return nil, fmt.Errorf("%w: %s_* attributes differ in length", runtime.ErrCorruptModel, prefix)
	}
	perNode := make([][]leafWeight, n)
	for i := range wTree {
		j, ok := index[key{wTree[i], wNode[i]}]
		if !ok {
			return nil, fmt.Errorf("%w: weight for missing node %d of tree %d", runtime.ErrCorruptModel, wNode[i], wTree[i])
		}
		if wID[i] < 0 || wID[i] >= int64(targets) {
			return nil, fmt.Errorf("%w: %s_ids value %d outside [0, %d)", runtime.ErrCorruptModel, prefix, wID[i], targets)
		}
		perNode[j] = append(perNode[j], leafWeight{target: int(wID[i]), w: w[i]})
	}
	for i := range perNode {
		e.nodes[i].wStart = int32(len(e.weights))
		e.weights = append(e.weights, perNode[i]...)
		e.nodes[i].wEnd = int32(len(e.weights))
	}
	e.agg = c.str("aggregate_function", "SUM")
	switch e.agg {
	case "SUM", "AVERAGE", "MIN", "MAX":
	default:
		return nil, fmt.Errorf("%w: aggregate_function %q", runtime.ErrCorruptModel, e.agg)
	}
	if e.base, err = c.floats64("base_values"); err != nil {
		return nil, err
	}
	if e.post, err = readPost(c); err != nil {
		return nil, err
	}
	return e, nil
}

// checkAcyclic rejects node graphs with cycles (Kahn's algorithm), so
// evaluation always ends at a leaf.
func (e *ensemble) checkAcyclic() error {
	indeg := make([]int, len(e.nodes))
	for _, nd := range e.nodes {
		if nd.mode != modeLeaf {
			indeg[nd.yes]++
			indeg[nd.no]++
		}
	}
	queue := append([]int32(nil), e.roots...)
	seen := 0
	for len(queue) > 0 {
		i := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		seen++
		nd := e.nodes[i]
		if nd.mode == modeLeaf {
			continue
		}
		for _, ch := range [2]int32{nd.yes, nd.no} {
			if indeg[ch]--; indeg[ch] == 0 {
				queue = append(queue, ch)
			}
		}
	}
	if seen != len(e.nodes) {
		return fmt.Errorf("%w: the tree nodes form a cycle", runtime.ErrCorruptModel)
	}
	return nil
}

// leaf walks one tree for row x.
func (e *ensemble) leaf(root int32, x []float64) *treeNode {
	nd := &e.nodes[root]
	for nd.mode != modeLeaf {
		v := x[nd.feature]
		var yes bool
		if nd.missingTrue && math.IsNaN(v) {
			yes = true
		} else {
			switch nd.mode {
			case modeLEQ:
				yes = v <= nd.threshold
			case modeLT:
				yes = v < nd.threshold
			case modeGTE:
				yes = v >= nd.threshold
			case modeGT:
				yes = v > nd.threshold
			case modeEQ:
				yes = v == nd.threshold
			case modeNEQ:
				yes = v != nd.threshold
			}
		}
		if yes {
			nd = &e.nodes[nd.yes]
		} else {
			nd = &e.nodes[nd.no]
		}
	}
	return nd
}

// scores aggregates the trees for row x into out (len targets); base
// values and the post transform are left to the caller. With single set,
// sums are rounded to float32 after every step, as ONNX Runtime
// accumulates in float for FLOAT inputs (it matters at label thresholds).
func (e *ensemble) scores(x []float64, out []float64, has []bool, single bool) {
	for i := range out {
		out[i] = 0
		has[i] = false
	}
	for _, r := range e.roots {
		nd := e.leaf(r, x)
		for _, lw := range e.weights[nd.wStart:nd.wEnd] {
			t := lw.target
			switch {
			case e.agg == "MIN" && has[t]:
				out[t] = min(out[t], lw.w)
			case e.agg == "MAX" && has[t]:
				out[t] = max(out[t], lw.w)
			case single:
				out[t] = float64(float32(out[t]) + float32(lw.w))
			default:
				out[t] += lw.w
			}
			has[t] = true
		}
	}
	if e.agg == "AVERAGE" && len(e.roots) > 0 {
		for i := range out {
			out[i] /= float64(len(e.roots))
		}
	}
	if single {
		for i, v := range out {
			out[i] = float64(float32(v))
		}
	}
}

// addBase adds base_values to the aggregated scores.
func (e *ensemble) addBase(out []float64, single bool) {
	for i := range out {
		if i < len(e.base) {
			out[i] += e.base[i]
			if single {
				out[i] = float64(float32(out[i]))
			}
		}
	}
}

// input reads the ensemble's [N, C] input and checks the feature count.
func (e *ensemble) input(x *value) ([]float64, int, int, error) {
	data, n, c, err := rows2D(x)
	if err != nil {
		return nil, 0, 0, err
	}
	if c < e.features {
		return nil, 0, 0, fmt.Errorf("%w: rows have %d features; the trees read feature %d", runtime.ErrInvalidInput, c, e.features-1)
	}
	return data, n, c, nil
}

func buildTreeRegressor(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	targets, err := checkInt("n_targets", c.int("n_targets", 1), 1, 1<<16)
	if err != nil {
		return nil, err
	}
	e, err := readEnsemble(c, "target", targets)
	if err != nil {
		return nil, err
	}
	return func(rb *runBudget, in []*value) ([]*value, error) {
		data, n, cols, err := e.input(in[0])
		if err != nil {
			return nil, err
		}
		single := in[0].dt != tDouble
		out, err := rb.newValue(tFloat, []int{n, targets})
		if err != nil {
			return nil, err
		}
		row := make([]float64, targets)
		has := make([]bool, targets)
		for i := range n {
			e.scores(data[i*cols:(i+1)*cols], row, has, single)
			e.addBase(row, single)
			e.post.apply(row)
			for t, v := range row {
				out.f32[i*targets+t] = float32(v)
			}
		}
		return []*value{out}, nil
	}, nil
}

func buildTreeClassifier(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	if err := c.wantOutputs(2); err != nil {
		return nil, err
	}
	labels, err := readLabels(c, "classlabels_int64s", "classlabels_strings")
	if err != nil {
		return nil, err
	}
	classes := labels.len()
	e, err := readEnsemble(c, "class", classes)
	if err != nil {
		return nil, err
	}
	// ONNX Runtime's binary case: two labels, every weight on one class id.
	binary, allPositive := classes == 2 && len(e.weights) > 0, true
	for _, w := range e.weights {
		binary = binary && w.target == e.weights[0].target
		allPositive = allPositive && w.w >= 0
	}
	return func(rb *runBudget, in []*value) ([]*value, error) {
		data, n, cols, err := e.input(in[0])
		if err != nil {
			return nil, err
		}
		single := in[0].dt != tDouble
		label := labels.output(n)
		probs, err := rb.newValue(tFloat, []int{n, classes})
		if err != nil {
			return nil, err
		}
		row := make([]float64, classes)
		has := make([]bool, classes)
		for i := range n {
			e.scores(data[i*cols:(i+1)*cols], row, has, single)
			var class int
			if classes == 2 {
				class = e.finishTwoClasses(row, has, binary, allPositive)
			} else {
				e.addBase(row, single)
				class = argmaxScored(row, has, len(e.base) > 0)
				e.post.apply(row)
			}
			labels.set(label, i, class)
			for k, v := range row {
				probs.f32[i*classes+k] = float32(v)
			}
		}
		return []*value{label, probs}, nil
	}, nil
}

// finishTwoClasses applies base values, picks the label and writes the
// final scores of a two-class tree ensemble into row, following ONNX
// Runtime 1.30 (whose choices the ONNX specification leaves open).
// One deliberate difference: when both class ids carry weights, the
// label is the class with the larger score (ONNX Runtime then returns
// the integer 1 or 0 rather than a class label).
func (e *ensemble) finishTwoClasses(row []float64, has []bool, binary, allPositive bool) int {
	cols := 2
	switch len(e.base) {
	case 0:
		if !has[1] {
			cols = 1
		}
	case 1:
		if !has[1] {
			row[0] += e.base[0]
			cols = 1
		}
	default:
		if has[1] {
			row[1] = e.base[1] + row[0]
			if has[0] {
				row[0] = -row[1]
			}
		} else {
			row[0] += e.base[0]
			row[1] += e.base[1]
		}
	}
	var pos float64
	switch {
	case cols == 2 && has[1]:
		pos = row[1]
	case has[0]:
		pos = row[0]
	}
	class := 0
	switch {
	case binary && allPositive:
		if pos > 0.5 {
			class = 1
		}
	case binary:
		if pos > 0 {
			class = 1
		}
	default:
		class = argmax(row)
	}
	if cols == 2 {
		e.post.apply(row)
	} else {
		row[0], row[1] = binaryScores(row[0], e.post, allPositive)
	}
	return class
}

// argmaxScored is argmax over the classes that received a score (all of
// them when base values are set), as ONNX Runtime picks labels.
func argmaxScored(row []float64, has []bool, all bool) int {
	best := -1
	for i, v := range row {
		if (all || has[i]) && (best < 0 || v > row[best]) {
			best = i
		}
	}
	return max(best, 0)
}

func argmax(row []float64) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}

// ---- linear models ----

func buildLinearRegressor(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	targets, err := checkInt("targets", c.int("targets", 1), 1, 1<<16)
	if err != nil {
		return nil, err
	}
	coef, err := c.floats64("coefficients")
	if err != nil {
		return nil, err
	}
	icpt, err := c.floats64("intercepts")
	if err != nil {
		return nil, err
	}
	post, err := readPost(c)
	if err != nil {
		return nil, err
	}
	if len(coef) == 0 || len(coef)%targets != 0 || (len(icpt) != 0 && len(icpt) != targets) {
		return nil, fmt.Errorf("%w: %d coefficients and %d intercepts for %d targets", runtime.ErrCorruptModel, len(coef), len(icpt), targets)
	}
	features := len(coef) / targets
	return func(rb *runBudget, in []*value) ([]*value, error) {
		data, n, cols, err := rows2D(in[0])
		if err != nil {
			return nil, err
		}
		if cols != features {
			return nil, fmt.Errorf("%w: rows have %d features; the model has %d", runtime.ErrInvalidInput, cols, features)
		}
		out, err := rb.newValue(tFloat, []int{n, targets})
		if err != nil {
			return nil, err
		}
		row := make([]float64, targets)
		for i := range n {
			linear(row, data[i*cols:(i+1)*cols], coef, icpt)
			post.apply(row)
			for t, v := range row {
				out.f32[i*targets+t] = float32(v)
			}
		}
		return []*value{out}, nil
	}, nil
}

// linear computes out[t] = coef[t,:]·x + icpt[t].
func linear(out, x, coef, icpt []float64) {
	for t := range out {
		s := dot(coef[t*len(x):(t+1)*len(x)], x)
		if len(icpt) > 0 {
			s += icpt[t]
		}
		out[t] = s
	}
}

func buildLinearClassifier(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	if err := c.wantOutputs(2); err != nil {
		return nil, err
	}
	labels, err := readLabels(c, "classlabels_ints", "classlabels_strings")
	if err != nil {
		return nil, err
	}
	coef, err := c.floats64("coefficients")
	if err != nil {
		return nil, err
	}
	icpt, err := c.floats64("intercepts")
	if err != nil {
		return nil, err
	}
	post, err := readPost(c)
	if err != nil {
		return nil, err
	}
	if c.int("multi_class", 0) != 0 {
		return nil, fmt.Errorf("%w: LinearClassifier multi_class=%d", runtime.ErrUnsupported, c.int("multi_class", 0))
	}
	rows := len(icpt)
	if rows == 0 || len(coef) == 0 || len(coef)%rows != 0 {
		return nil, fmt.Errorf("%w: %d coefficients for %d intercepts", runtime.ErrCorruptModel, len(coef), rows)
	}
	classes := labels.len()
	binary := rows == 1 && classes == 2
	if !binary && rows != classes {
		return nil, fmt.Errorf("%w: %d coefficient rows for %d classes", runtime.ErrCorruptModel, rows, classes)
	}
	features := len(coef) / rows
	return func(rb *runBudget, in []*value) ([]*value, error) {
		data, n, cols, err := rows2D(in[0])
		if err != nil {
			return nil, err
		}
		if cols != features {
			return nil, fmt.Errorf("%w: rows have %d features; the model has %d", runtime.ErrInvalidInput, cols, features)
		}
		label := labels.output(n)
		probs, err := rb.newValue(tFloat, []int{n, classes})
		if err != nil {
			return nil, err
		}
		row := make([]float64, rows)
		for i := range n {
			linear(row, data[i*cols:(i+1)*cols], coef, icpt)
			if binary {
				s := row[0]
				a, b := binaryScores(s, post, true)
				probs.f32[2*i], probs.f32[2*i+1] = float32(a), float32(b)
				if s > 0 {
					labels.set(label, i, 1)
				} else {
					labels.set(label, i, 0)
				}
				continue
			}
			labels.set(label, i, argmax(row))
			post.apply(row)
			for k, v := range row {
				probs.f32[i*classes+k] = float32(v)
			}
		}
		return []*value{label, probs}, nil
	}, nil
}

// ---- preprocessing ----

func buildScaler(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	offset, scale := c.floats("offset"), c.floats("scale")
	return func(rb *runBudget, in []*value) ([]*value, error) {
		data, n, cols, err := rows2D(in[0])
		if err != nil {
			return nil, err
		}
		for _, p := range [][]float32{offset, scale} {
			if len(p) > 1 && len(p) != cols {
				return nil, fmt.Errorf("%w: Scaler has %d parameters for %d features", runtime.ErrInvalidInput, len(p), cols)
			}
		}
		at := func(p []float32, j int, def float32) float32 {
			switch len(p) {
			case 0:
				return def
			case 1:
				return p[0]
			}
			return p[j]
		}
		out, err := rb.newValue(tFloat, []int{n, cols})
		if err != nil {
			return nil, err
		}
		if len(in[0].shape) == 1 {
			out.shape = []int{cols}
		}
		for i, v := range data {
			j := i % max(cols, 1)
			out.f32[i] = (float32(v) - at(offset, j, 0)) * at(scale, j, 1)
		}
		return []*value{out}, nil
	}, nil
}

func buildNormalizer(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	norm := c.str("norm", "MAX")
	switch norm {
	case "MAX", "L1", "L2":
	default:
		return nil, fmt.Errorf("%w: Normalizer norm %q", runtime.ErrCorruptModel, norm)
	}
	return func(rb *runBudget, in []*value) ([]*value, error) {
		data, n, cols, err := rows2D(in[0])
		if err != nil {
			return nil, err
		}
		out, err := rb.newValue(tFloat, []int{n, cols})
		if err != nil {
			return nil, err
		}
		if len(in[0].shape) == 1 {
			out.shape = []int{cols}
		}
		for i := range n {
			row := data[i*cols : (i+1)*cols]
			var d float64
			switch norm {
			case "MAX":
				d = math.Inf(-1)
				for _, v := range row {
					d = max(d, v)
				}
			case "L1":
				for _, v := range row {
					d += math.Abs(v)
				}
			case "L2":
				for _, v := range row {
					d += v * v
				}
				d = math.Sqrt(d)
			}
			for j, v := range row {
				out.f32[i*cols+j] = float32(v / d)
			}
		}
		return []*value{out}, nil
	}, nil
}

func buildZipMap(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	labels, err := readLabels(c, "classlabels_int64s", "classlabels_strings")
	if err != nil {
		return nil, err
	}
	return func(rb *runBudget, in []*value) ([]*value, error) {
		x := in[0]
		if x.dt != tFloat || len(x.shape) != 2 || x.shape[1] != labels.len() {
			return nil, fmt.Errorf("%w: ZipMap input %s %v for %d class labels", runtime.ErrInvalidInput, x.dt, x.shape, labels.len())
		}
		out := *x
		out.zipmap = true
		return []*value{&out}, nil
	}, nil
}
