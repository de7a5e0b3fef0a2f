package xgboost

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ferryserve/ferry/internal/runtime"
)

// Sizes of the fixed structs of XGBoost's legacy binary format (what 1.x
// save_model writes for a name not ending in .json or .ubj, and save_raw).
// All little-endian.
const (
	learnerParamSize = 136 // LearnerModelParamLegacy
	gbtreeParamSize  = 160 // GBTreeModelParam
	treeParamSize    = 148 // TreeParam
	nodeSize         = 20  // RegTree::Node
	nodeStatSize     = 16  // RTreeNodeStat
	linearParamSize  = 136 // GBLinearModelParam
)

type binReader struct {
	b   []byte
	pos int
	err error
}

func (r *binReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.pos {
		r.err = corrupt("binary model truncated at byte %d", r.pos)
		return nil
	}
	b := r.b[r.pos : r.pos+n]
	r.pos += n
	return b
}

func (r *binReader) u32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func (r *binReader) i32(b []byte, off int) int32  { return int32(binary.LittleEndian.Uint32(b[off:])) }

// count reads a uint64 element count for elements of size bytes each.
func (r *binReader) count(size int) int {
	b := r.take(8)
	if b == nil {
		return 0
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(len(r.b)-r.pos)/uint64(size) {
		r.err = corrupt("binary model: count %d at byte %d exceeds the data", n, r.pos-8)
		return 0
	}
	return int(n)
}

func (r *binReader) str() string { return string(r.take(r.count(1))) }

func (r *binReader) floats() []float32 {
	n := r.count(4)
	b := r.take(4 * n)
	if b == nil {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// parseBinary parses the legacy binary format.
func parseBinary(data []byte) (*rawModel, error) {
	r := &binReader{b: data}
	switch {
	case len(data) >= 4 && string(data[:4]) == "binf":
		r.pos = 4
	case len(data) >= 4 && string(data[:4]) == "bs64":
		return nil, fmt.Errorf("%w: base64-encoded binary xgboost model", runtime.ErrUnsupported)
	}
	lp := r.take(learnerParamSize)
	m := &rawModel{}
	m.objective = r.str()
	m.booster = r.str()
	if r.err != nil {
		return nil, r.err
	}
	m.baseScore = []float32{math.Float32frombits(r.u32(lp, 0))}
	m.numFeature = int64(r.u32(lp, 4))
	m.numClass = int64(r.i32(lp, 8))
	m.numTarget = int64(r.u32(lp, 28))
	if major, minor := r.u32(lp, 20), r.u32(lp, 24); major != 0 || minor != 0 {
		m.version = fmt.Sprintf("%d.%d", major, minor)
	}
	switch m.booster {
	case "gbtree", "dart":
		parseBinaryTrees(r, m)
	case "gblinear":
		r.take(linearParamSize)
		m.linear = r.floats()
	default:
		return nil, fmt.Errorf("%w: xgboost booster %q", runtime.ErrUnsupported, m.booster)
	}
	// What follows (attributes, eval metrics) does not affect prediction.
	return m, r.err
}

func parseBinaryTrees(r *binReader, m *rawModel) {
	gp := r.take(gbtreeParamSize)
	if gp == nil {
		return
	}
	numTrees := int(r.i32(gp, 0))
	if r.i32(gp, 28) != 0 {
		r.err = fmt.Errorf("%w: vector leaves (size_leaf_vector=%d)", runtime.ErrUnsupported, r.i32(gp, 28))
		return
	}
	if numTrees < 0 || numTrees > (len(r.b)-r.pos)/treeParamSize {
		r.err = corrupt("binary model: num_trees %d out of range", numTrees)
		return
	}
	m.trees = make([]rawTree, numTrees)
	for i := range m.trees {
		readBinaryTree(r, &m.trees[i])
		if r.err != nil {
			r.err = fmt.Errorf("tree %d: %w", i, r.err)
			return
		}
	}
	info := r.take(4 * numTrees)
	if info == nil {
		return
	}
	m.treeInfo = make([]int64, numTrees)
	for i := range m.treeInfo {
		m.treeInfo[i] = int64(r.i32(info, 4*i))
	}
	if m.booster == "dart" && numTrees > 0 {
		m.weightDrop = r.floats()
	}
}

func readBinaryTree(r *binReader, t *rawTree) {
	tp := r.take(treeParamSize)
	if tp == nil {
		return
	}
	n := int(r.i32(tp, 4))
	if slv := r.i32(tp, 20); slv != 0 {
		r.err = fmt.Errorf("%w: vector leaves (size_leaf_vector=%d)", runtime.ErrUnsupported, slv)
		return
	}
	if n <= 0 || n > (len(r.b)-r.pos)/(nodeSize+nodeStatSize) {
		r.err = corrupt("num_nodes %d out of range", n)
		return
	}
	nodes := r.take(n * nodeSize)
	stats := r.take(n * nodeStatSize)
	if r.err != nil {
		return
	}
	t.left = make([]int64, n)
	t.right = make([]int64, n)
	t.splitIndex = make([]int64, n)
	t.cond = make([]float32, n)
	t.defaultLeft = make([]bool, n)
	t.cover = make([]float32, n)
	for i := range n {
		t.cover[i] = math.Float32frombits(r.u32(stats[i*nodeStatSize:], 4)) // sum_hess
		b := nodes[i*nodeSize:]
		t.left[i] = int64(r.i32(b, 4))
		t.right[i] = int64(r.i32(b, 8))
		sindex := r.u32(b, 12)
		t.splitIndex[i] = int64(sindex & (1<<31 - 1))
		t.defaultLeft[i] = sindex>>31 != 0
		t.cond[i] = math.Float32frombits(r.u32(b, 16))
	}
}
