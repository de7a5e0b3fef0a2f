package lightgbm

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ferryserve/ferry/internal/runtime"
)

// Limits that keep a lying or hostile file from making the loader or the
// request path allocate without bound. Arrays are only ever sized from the
// tokens actually present in the file, never from a count in a header.
const (
	maxFeatures = 1 << 24 // max_feature_idx+1
	maxClasses  = 1 << 16 // num_class / num_tree_per_iteration
)

// booster is a parsed model.txt, ready to evaluate.
type booster struct {
	version       string
	numClass      int // outputs of "predict"
	treesPerIter  int // raw scores per row
	numFeatures   int // max_feature_idx + 1
	featureNames  []string
	objective     objective
	averageOutput bool
	trees         []tree

	// The flat layout (flat.go): ftrees[i] locates tree i in flat (nil
	// when no tree is laid out), fleaf holds each leaf node's LightGBM leaf
	// number (-1 at inner nodes); rows expand to stride values, variant v
	// at varOff[v] (-1 when unused), then -Inf.
	flat   []fnode
	fleaf  []int32
	ftrees []flatTree
	stride int
	varOff [numVariants]int32
	// For walkRow: the laid-out trees deepest first, their roots, where
	// tree t sits in that order (-1 if not laid out), and how many trees
	// are still walking at each level; leavesOnly: every tree is laid out
	// with constant leaves and there is one score per row.
	leavesOnly bool
	order      []int32
	roots      []uint32
	rank       []int32
	active     []int32
}

// iterations is the number of boosting rounds the model holds.
func (b *booster) iterations() int { return len(b.trees) / b.treesPerIter }

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", runtime.ErrCorruptModel, fmt.Sprintf(format, args...))
}

// parse reads the LightGBM text model format (versions v2 to v4): a header
// of key=value lines, "Tree=i" blocks, "end of trees", then feature
// importances and parameters, which prediction does not need.
func parse(data []byte) (*booster, error) {
	lines := splitLines(data)
	if len(lines) == 0 || string(lines[0]) != "tree" {
		return nil, corrupt(`file does not start with the "tree" header line`)
	}
	i := 1
	header := map[string]string{}
	flags := map[string]bool{}
	for ; i < len(lines); i++ {
		l := lines[i]
		if bytes.HasPrefix(l, []byte("Tree=")) || string(l) == "end of trees" {
			break
		}
		if len(l) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(l, []byte("="))
		if !ok {
			flags[string(l)] = true // e.g. "average_output"
			continue
		}
		header[string(k)] = string(v)
	}
	b, err := parseHeader(header, flags)
	if err != nil {
		return nil, err
	}
	ended := false
	for i < len(lines) {
		l := lines[i]
		if string(l) == "end of trees" {
			ended = true
			break
		}
		if len(l) == 0 {
			i++
			continue
		}
		idx, ok := bytes.CutPrefix(l, []byte("Tree="))
		if !ok {
			return nil, corrupt("line %d: want \"Tree=%d\", got %q", i+1, len(b.trees), clip(l))
		}
		if n, err := strconv.Atoi(string(idx)); err != nil || n != len(b.trees) {
			return nil, corrupt("line %d: want \"Tree=%d\", got %q", i+1, len(b.trees), clip(l))
		}
		i++
		fields := map[string]string{}
		for ; i < len(lines) && len(lines[i]) > 0; i++ {
			k, v, ok := bytes.Cut(lines[i], []byte("="))
			if !ok || bytes.HasPrefix(lines[i], []byte("Tree=")) {
				break
			}
			fields[string(k)] = string(v)
		}
		t, err := parseTree(fields, b.numFeatures)
		if err != nil {
			return nil, fmt.Errorf("tree %d: %w", len(b.trees), err)
		}
		b.trees = append(b.trees, t)
	}
	if !ended {
		return nil, corrupt(`no "end of trees" line: the file is truncated`)
	}
	if s, ok := header["tree_sizes"]; ok && len(strings.Fields(s)) != len(b.trees) {
		return nil, corrupt("tree_sizes lists %d trees, the file holds %d", len(strings.Fields(s)), len(b.trees))
	}
	if len(b.trees) == 0 {
		return nil, corrupt("the model holds no trees")
	}
	if len(b.trees)%b.treesPerIter != 0 {
		return nil, corrupt("%d trees is not a multiple of num_tree_per_iteration=%d", len(b.trees), b.treesPerIter)
	}
	b.buildFlat()
	return b, nil
}

func parseHeader(h map[string]string, flags map[string]bool) (*booster, error) {
	b := &booster{version: h["version"], averageOutput: flags["average_output"]}
	switch b.version {
	case "", "v2", "v3", "v4":
	default:
		return nil, fmt.Errorf("%w: model version %q (supported: v2, v3, v4)", runtime.ErrUnsupported, b.version)
	}
	var err error
	if b.numClass, err = headerInt(h, "num_class", 1, 1, maxClasses); err != nil {
		return nil, err
	}
	if b.treesPerIter, err = headerInt(h, "num_tree_per_iteration", b.numClass, 1, maxClasses); err != nil {
		return nil, err
	}
	mfi, err := headerInt(h, "max_feature_idx", -1, 0, maxFeatures-1)
	if err != nil {
		return nil, err
	}
	if mfi < 0 {
		return nil, corrupt("header has no max_feature_idx")
	}
	b.numFeatures = mfi + 1
	if names := strings.Fields(h["feature_names"]); len(names) > 0 {
		if len(names) != b.numFeatures {
			return nil, corrupt("feature_names has %d names, max_feature_idx says %d features", len(names), b.numFeatures)
		}
		b.featureNames = names
	}
	if b.objective, err = parseObjective(h["objective"]); err != nil {
		return nil, err
	}
	if b.treesPerIter != b.numClass {
		return nil, corrupt("num_tree_per_iteration=%d differs from num_class=%d", b.treesPerIter, b.numClass)
	}
	// A custom objective may train several trees per round; every named
	// objective other than the multiclass ones trains one.
	multi := b.objective.kind == objMulticlass || b.objective.kind == objMulticlassOVA || b.objective.name == "custom"
	if !multi && b.numClass != 1 {
		return nil, corrupt("objective %q trains one tree per round, but num_class=%d", b.objective.name, b.numClass)
	}
	return b, nil
}

func headerInt(h map[string]string, key string, def, lo, hi int) (int, error) {
	s, ok := h[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < lo || n > hi {
		return 0, corrupt("header %s=%q: want an integer in [%d, %d]", key, clip([]byte(s)), lo, hi)
	}
	return n, nil
}

// parseTree builds one tree from its key=value lines and checks that its
// arrays agree and that the child links form a tree rooted at node 0, so
// evaluation can index without bounds surprises and always terminates.
func parseTree(f map[string]string, numFeatures int) (tree, error) {
	var t tree
	nl, err := strconv.Atoi(f["num_leaves"])
	if err != nil || nl < 1 {
		return t, corrupt("num_leaves=%q: want a positive integer", clip([]byte(f["num_leaves"])))
	}
	if t.leafValue, err = floats(f, "leaf_value", nl); err != nil {
		return t, err
	}
	inner := nl - 1
	feat, err := ints(f, "split_feature", inner)
	if err != nil {
		return t, err
	}
	thr, err := floats(f, "threshold", inner)
	if err != nil {
		return t, err
	}
	// Like LightGBM, a tree without decision_type has plain numerical
	// splits with no missing-value handling.
	dt := make([]int, inner)
	if _, ok := f["decision_type"]; ok {
		if dt, err = ints(f, "decision_type", inner); err != nil {
			return t, err
		}
	}
	left, err := ints(f, "left_child", inner)
	if err != nil {
		return t, err
	}
	right, err := ints(f, "right_child", inner)
	if err != nil {
		return t, err
	}
	numCat := 0
	if s, ok := f["num_cat"]; ok {
		if numCat, err = strconv.Atoi(s); err != nil || numCat < 0 || numCat > inner {
			return t, corrupt("num_cat=%q: want an integer in [0, %d]", clip([]byte(s)), inner)
		}
	}
	if numCat > 0 {
		bounds, err := ints(f, "cat_boundaries", numCat+1)
		if err != nil {
			return t, err
		}
		words := strings.Fields(f["cat_threshold"])
		t.catBits = make([]uint32, len(words))
		for i, w := range words {
			v, err := strconv.ParseUint(w, 10, 32)
			if err != nil {
				return t, corrupt("cat_threshold[%d]=%q: want a uint32", i, clip([]byte(w)))
			}
			t.catBits[i] = uint32(v)
		}
		if bounds[0] != 0 || bounds[numCat] != len(words) {
			return t, corrupt("cat_boundaries must run from 0 to len(cat_threshold)=%d", len(words))
		}
		for i := 1; i <= numCat; i++ {
			if bounds[i] < bounds[i-1] {
				return t, corrupt("cat_boundaries must not decrease")
			}
		}
		t.catBounds = make([]int32, len(bounds))
		for i, v := range bounds {
			t.catBounds[i] = int32(v)
		}
	}
	t.nodes = make([]node, inner)
	for i := range inner {
		n := &t.nodes[i]
		if feat[i] < 0 || feat[i] >= numFeatures {
			return t, corrupt("node %d splits on feature %d; the model has %d features", i, feat[i], numFeatures)
		}
		if dt[i] < 0 || dt[i] > 0xff {
			return t, corrupt("node %d: decision_type %d", i, dt[i])
		}
		n.feature = int32(feat[i])
		n.threshold = thr[i]
		n.flags = uint8(dt[i])
		if n.missingType() > missingNaN {
			return t, corrupt("node %d: decision_type %d has unknown missing type %d", i, dt[i], n.missingType())
		}
		if n.categorical() {
			c := thr[i]
			if !(c >= 0 && c < float64(numCat)) || c != math.Trunc(c) {
				return t, corrupt("node %d: categorical threshold %v is not a split index below num_cat=%d", i, c, numCat)
			}
			n.catLo, n.catHi = t.catBounds[int(c)], t.catBounds[int(c)+1]
		}
		for _, c := range [2]int{left[i], right[i]} {
			if c >= inner || c < -nl {
				return t, corrupt("node %d: child %d out of range for %d leaves", i, c, nl)
			}
		}
		n.children = [2]int32{int32(left[i]), int32(right[i])}
	}
	t.plain = true
	for i := range t.nodes {
		n := &t.nodes[i]
		// leafPlain's "right iff x > threshold" is "not x <= threshold"
		// only for a threshold that is not NaN.
		if n.categorical() || n.missingType() == missingZero || math.IsNaN(n.threshold) {
			t.plain = false
		}
	}
	if err := checkShape(t.nodes, nl); err != nil {
		return t, err
	}
	if f["is_linear"] == "1" {
		if t.linear, err = parseLinear(f, nl, numFeatures); err != nil {
			return t, err
		}
	}
	return t, nil
}

// checkShape walks the tree from the root and requires every internal node
// and every leaf to be reached exactly once.
func checkShape(nodes []node, numLeaves int) error {
	if len(nodes) == 0 {
		return nil
	}
	seenNode := make([]bool, len(nodes))
	seenLeaf := make([]bool, numLeaves)
	stack := []int32{0}
	seenNode[0] = true
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range nodes[n].children {
			if c < 0 {
				if seenLeaf[^c] {
					return corrupt("leaf %d is reached twice", ^c)
				}
				seenLeaf[^c] = true
				continue
			}
			if seenNode[c] {
				return corrupt("node %d is reached twice (a cycle or a shared subtree)", c)
			}
			seenNode[c] = true
			stack = append(stack, c)
		}
	}
	for i, ok := range seenLeaf {
		if !ok {
			return corrupt("leaf %d is unreachable", i)
		}
	}
	for i, ok := range seenNode {
		if !ok {
			return corrupt("node %d is unreachable", i)
		}
	}
	return nil
}

func parseLinear(f map[string]string, nl, numFeatures int) (*linearLeaves, error) {
	consts, err := floats(f, "leaf_const", nl)
	if err != nil {
		return nil, err
	}
	counts, err := ints(f, "num_features", nl)
	if err != nil {
		return nil, err
	}
	feats := strings.Fields(f["leaf_features"])
	coeffs := strings.Fields(f["leaf_coeff"])
	total := 0
	for _, c := range counts {
		if c < 0 || c > len(feats) {
			return nil, corrupt("num_features entry %d is out of range", c)
		}
		total += c
	}
	if total != len(feats) || total != len(coeffs) {
		return nil, corrupt("linear leaves: num_features sums to %d, leaf_features has %d, leaf_coeff has %d", total, len(feats), len(coeffs))
	}
	ll := &linearLeaves{
		constant: consts,
		start:    make([]int32, nl+1),
		feature:  make([]int32, total),
		coeff:    make([]float64, total),
	}
	for i, s := range feats {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v >= numFeatures {
			return nil, corrupt("leaf_features[%d]=%q: want a feature index below %d", i, clip([]byte(s)), numFeatures)
		}
		ll.feature[i] = int32(v)
		if ll.coeff[i], err = strconv.ParseFloat(coeffs[i], 64); err != nil {
			return nil, corrupt("leaf_coeff[%d]=%q: not a number", i, clip([]byte(coeffs[i])))
		}
	}
	for i, c := range counts {
		ll.start[i+1] = ll.start[i] + int32(c)
	}
	return ll, nil
}

func floats(f map[string]string, key string, want int) ([]float64, error) {
	words := strings.Fields(f[key])
	if len(words) != want {
		return nil, corrupt("%s has %d values, want %d", key, len(words), want)
	}
	out := make([]float64, want)
	for i, w := range words {
		v, err := strconv.ParseFloat(w, 64)
		if err != nil {
			return nil, corrupt("%s[%d]=%q: not a number", key, i, clip([]byte(w)))
		}
		out[i] = v
	}
	return out, nil
}

func ints(f map[string]string, key string, want int) ([]int, error) {
	words := strings.Fields(f[key])
	if len(words) != want {
		return nil, corrupt("%s has %d values, want %d", key, len(words), want)
	}
	out := make([]int, want)
	for i, w := range words {
		v, err := strconv.ParseInt(w, 10, 32)
		if err != nil {
			return nil, corrupt("%s[%d]=%q: not an int32", key, i, clip([]byte(w)))
		}
		out[i] = int(v)
	}
	return out, nil
}

// splitLines splits on \n and drops a trailing \r, so files written on
// Windows read the same.
func splitLines(data []byte) [][]byte {
	lines := bytes.Split(data, []byte("\n"))
	for i, l := range lines {
		lines[i] = bytes.TrimSuffix(l, []byte("\r"))
	}
	return lines
}

// clip shortens file text quoted in an error message.
func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
