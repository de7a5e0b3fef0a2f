package onnx

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/onnx/onnxpb"
)

// Operator domains.
const (
	domainONNX = ""
	domainML   = "ai.onnx.ml"
)

// ioInfo describes one graph input or output as the model declares it.
type ioInfo struct {
	name string
	dt   elemType
	// shape has -1 for a dynamic dimension; nil with hasShape false when the
	// model declares no shape.
	shape    []int64
	hasShape bool
	// seqMap marks a sequence-of-maps output (ZipMap's); Ferry returns it
	// as a dense [rows, classes] FLOAT tensor.
	seqMap bool
}

// graph is a decoded ONNX model: its declared inputs and outputs, constant
// initializers and the nodes in execution order, each compiled to a kernel.
type graph struct {
	inputs  []ioInfo
	outputs []ioInfo
	// slot numbers: every value name maps to one index into a run's slots.
	inputSlots  []int
	outputSlots []int
	consts      []*value // indexed by slot; nil for computed values
	nodes       []compiledNode
	// makerOf is the node that computes each slot (-1 for inputs and
	// initializers); lastUse the last node that reads it (len(nodes) for
	// graph outputs, -1 for values no node reads).
	makerOf, lastUse []int
	// maxBytes bounds the intermediate tensors one run holds at once
	// (Options.MaxInferenceBytes); negative means no bound.
	maxBytes  int64
	opsets    map[string]int64
	producer  string
	irVersion int64
}

// compiledNode is one node, ready to run.
type compiledNode struct {
	name, op string
	in, out  []int // slots; -1 for an omitted optional input
	run      kernel
}

// kernel computes a node's outputs from its inputs (nil for omitted ones).
type kernel func(rb *runBudget, in []*value) ([]*value, error)

// errUnsupportedOp is wrapped by load errors for operators the interpreter
// does not implement.
var errUnsupportedOp = errors.New("operator not supported by the Go engine")

// decodeModel parses the protobuf bytes of an .onnx file.
func decodeModel(data []byte) (*onnxpb.ModelProto, error) {
	var m onnxpb.ModelProto
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: not an ONNX protobuf: %w", runtime.ErrCorruptModel, err)
	}
	if m.GetGraph() == nil {
		return nil, fmt.Errorf("%w: the model has no graph", runtime.ErrCorruptModel)
	}
	if m.GetIrVersion() <= 0 {
		return nil, fmt.Errorf("%w: ir_version %d is not valid", runtime.ErrCorruptModel, m.GetIrVersion())
	}
	return &m, nil
}

// describe reads the declared inputs and outputs of a model without
// compiling its nodes; both engines use it for metadata and validation.
func describe(m *onnxpb.ModelProto) (inputs, outputs []ioInfo, err error) {
	g := m.GetGraph()
	isInit := make(map[string]bool, len(g.GetInitializer()))
	for _, t := range g.GetInitializer() {
		isInit[t.GetName()] = true
	}
	for _, vi := range g.GetInput() {
		if isInit[vi.GetName()] {
			continue // an initializer listed as input (IR < 4 style): a constant
		}
		info, err := valueInfo(vi)
		if err != nil {
			return nil, nil, err
		}
		if info.seqMap {
			return nil, nil, fmt.Errorf("%w: input %q is not a tensor", runtime.ErrUnsupported, info.name)
		}
		inputs = append(inputs, info)
	}
	for _, vi := range g.GetOutput() {
		info, err := valueInfo(vi)
		if err != nil {
			return nil, nil, err
		}
		outputs = append(outputs, info)
	}
	if len(outputs) == 0 {
		return nil, nil, fmt.Errorf("%w: the graph has no outputs", runtime.ErrCorruptModel)
	}
	return inputs, outputs, nil
}

func valueInfo(vi *onnxpb.ValueInfoProto) (ioInfo, error) {
	info := ioInfo{name: vi.GetName()}
	if info.name == "" {
		return info, fmt.Errorf("%w: a graph input or output has no name", runtime.ErrCorruptModel)
	}
	tp := vi.GetType()
	switch {
	case tp.GetTensorType() != nil:
		tt := tp.GetTensorType()
		info.dt = elemType(tt.GetElemType())
		if tt.GetShape() != nil {
			info.hasShape = true
			for _, d := range tt.GetShape().GetDim() {
				if dv, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok && dv.DimValue > 0 {
					info.shape = append(info.shape, dv.DimValue)
				} else {
					info.shape = append(info.shape, -1)
				}
			}
		}
	case tp.GetSequenceType().GetElemType().GetMapType() != nil:
		info.seqMap = true
		info.dt = tFloat
		info.hasShape = true
		info.shape = []int64{-1, -1}
	default:
		return info, fmt.Errorf("%w: %q is neither a tensor nor a sequence of maps", runtime.ErrUnsupported, info.name)
	}
	if tensorType(info.dt) == 0 {
		return info, fmt.Errorf("%w: %q has element type %s", runtime.ErrUnsupported, info.name, info.dt)
	}
	return info, nil
}

// opsetVersions maps each imported domain to its version ("ai.onnx" is
// folded into "").
func opsetVersions(m *onnxpb.ModelProto) map[string]int64 {
	out := map[string]int64{}
	for _, o := range m.GetOpsetImport() {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = domainONNX
		}
		out[d] = o.GetVersion()
	}
	if _, ok := out[domainONNX]; !ok && len(m.GetOpsetImport()) == 0 {
		out[domainONNX] = 1 // IR version 1 and 2 models imply opset 1
	}
	return out
}

// compile builds the interpreter's graph. Every node's operator must be
// known; the first unknown one fails the load with its name and node.
func compile(m *onnxpb.ModelProto) (*graph, error) {
	inputs, outputs, err := describe(m)
	if err != nil {
		return nil, err
	}
	g := &graph{inputs: inputs, outputs: outputs, opsets: opsetVersions(m), producer: m.GetProducerName(), irVersion: m.GetIrVersion()}
	pg := m.GetGraph()
	slots := map[string]int{}
	define := func(name string) (int, error) {
		if _, dup := slots[name]; dup {
			return 0, fmt.Errorf("%w: value %q is defined twice", runtime.ErrCorruptModel, name)
		}
		slots[name] = len(slots)
		g.consts = append(g.consts, nil)
		return slots[name], nil
	}
	for _, t := range pg.GetInitializer() {
		s, err := define(t.GetName())
		if err != nil {
			return nil, err
		}
		v, err := decodeTensor(t)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", t.GetName(), err)
		}
		g.consts[s] = v
	}
	for _, in := range inputs {
		s, err := define(in.name)
		if err != nil {
			return nil, err
		}
		g.inputSlots = append(g.inputSlots, s)
	}
	for i, n := range pg.GetNode() {
		name := n.GetName()
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		cn := compiledNode{name: name, op: n.GetOpType()}
		for _, in := range n.GetInput() {
			if in == "" {
				cn.in = append(cn.in, -1)
				continue
			}
			s, ok := slots[in]
			if !ok {
				return nil, fmt.Errorf("%w: node %s (%s) reads %q, which no earlier node, input or initializer defines", runtime.ErrCorruptModel, name, cn.op, in)
			}
			cn.in = append(cn.in, s)
		}
		domain := n.GetDomain()
		if domain == "ai.onnx" {
			domain = domainONNX
		}
		version, ok := g.opsets[domain]
		if !ok {
			return nil, fmt.Errorf("%w: node %s (%s) uses domain %q, which the model does not import", runtime.ErrCorruptModel, name, cn.op, domain)
		}
		c := &nodeCtx{node: n, name: name, version: version, nIn: len(n.GetInput()), nOut: len(n.GetOutput()), consts: g.constInputs(cn.in)}
		if c.attrs, err = attrMap(n); err != nil {
			return nil, fmt.Errorf("node %s (%s): %w", name, cn.op, err)
		}
		build, ok := lookupOp(domain, cn.op)
		if !ok {
			d := domain
			if d == "" {
				d = "ai.onnx"
			}
			return nil, fmt.Errorf("%w: node %s uses %s (domain %s, opset %d); %w", runtime.ErrUnsupported, name, cn.op, d, version, errUnsupportedOp)
		}
		if cn.run, err = build(c); err != nil {
			return nil, fmt.Errorf("node %s (%s): %w", name, cn.op, err)
		}
		for _, out := range n.GetOutput() {
			if out == "" {
				cn.out = append(cn.out, -1)
				continue
			}
			s, err := define(out)
			if err != nil {
				return nil, err
			}
			cn.out = append(cn.out, s)
		}
		g.nodes = append(g.nodes, cn)
	}
	for _, out := range outputs {
		s, ok := slots[out.name]
		if !ok {
			return nil, fmt.Errorf("%w: graph output %q is never computed", runtime.ErrCorruptModel, out.name)
		}
		g.outputSlots = append(g.outputSlots, s)
	}
	g.makerOf = make([]int, len(g.consts))
	g.lastUse = make([]int, len(g.consts))
	for s := range g.consts {
		g.makerOf[s], g.lastUse[s] = -1, -1
	}
	for i, n := range g.nodes {
		for _, s := range n.in {
			if s >= 0 {
				g.lastUse[s] = i
			}
		}
		for _, s := range n.out {
			if s >= 0 {
				g.makerOf[s] = i
			}
		}
	}
	for _, s := range g.outputSlots {
		g.lastUse[s] = len(g.nodes)
	}
	g.maxBytes = DefaultMaxInferenceBytes
	return g, nil
}

// constInputs returns the initializer values among a node's inputs (nil
// where an input is computed), so kernels can check and pre-process
// constant weights at load time.
func (g *graph) constInputs(slots []int) []*value {
	out := make([]*value, len(slots))
	for i, s := range slots {
		if s >= 0 {
			out[i] = g.consts[s]
		}
	}
	return out
}

// run evaluates the graph on inputs given in the order of g.inputs and
// returns the outputs in the order of g.outputs.
func (g *graph) run(ctx context.Context, inputs []*value) ([]*value, error) {
	slots := make([]*value, len(g.consts))
	copy(slots, g.consts)
	for i, s := range g.inputSlots {
		slots[s] = inputs[i]
	}
	var rb *runBudget
	if g.maxBytes >= 0 {
		rb = &runBudget{limit: g.maxBytes}
	}
	// reserved is what each node's kernel reserved; alive counts its
	// outputs still to be read. A node's reservation is released when
	// the last of its outputs has been read for the last time, and the
	// slots are cleared so the collector can take the tensors early.
	reserved := make([]int64, len(g.nodes))
	alive := make([]int, len(g.nodes))
	kill := func(s int) {
		p := g.makerOf[s]
		if p < 0 || slots[s] == nil {
			return
		}
		slots[s] = nil
		if alive[p]--; alive[p] == 0 && rb != nil {
			rb.live -= reserved[p]
		}
	}
	args := make([]*value, 0, 8)
	for i, n := range g.nodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		args = args[:0]
		for _, s := range n.in {
			if s < 0 {
				args = append(args, nil)
			} else {
				args = append(args, slots[s])
			}
		}
		var before int64
		if rb != nil {
			before = rb.live
		}
		outs, err := n.run(rb, args)
		if err != nil {
			return nil, fmt.Errorf("node %s (%s): %w", n.name, n.op, err)
		}
		if rb != nil {
			reserved[i] = rb.live - before
		}
		for j, s := range n.out {
			if s >= 0 && j < len(outs) && outs[j] != nil {
				slots[s] = outs[j]
				alive[i]++
			}
		}
		if alive[i] == 0 && rb != nil {
			rb.live -= reserved[i]
		}
		for _, s := range n.in {
			if s >= 0 && g.lastUse[s] == i {
				kill(s)
			}
		}
		for _, s := range n.out {
			if s >= 0 && g.lastUse[s] < i {
				kill(s) // computed but never read
			}
		}
	}
	res := make([]*value, len(g.outputSlots))
	for i, s := range g.outputSlots {
		if slots[s] == nil {
			return nil, fmt.Errorf("graph output %q was not produced", g.outputs[i].name)
		}
		res[i] = slots[s]
	}
	return res, nil
}

// nodeCtx is what an operator's builder sees of its node.
type nodeCtx struct {
	node      *onnxpb.NodeProto
	name      string
	version   int64
	nIn, nOut int
	attrs     map[string]*onnxpb.AttributeProto
	consts    []*value
}

func attrMap(n *onnxpb.NodeProto) (map[string]*onnxpb.AttributeProto, error) {
	m := make(map[string]*onnxpb.AttributeProto, len(n.GetAttribute()))
	for _, a := range n.GetAttribute() {
		if a.GetRefAttrName() != "" {
			return nil, fmt.Errorf("%w: attribute %q refers to a function attribute", runtime.ErrUnsupported, a.GetName())
		}
		m[a.GetName()] = a
	}
	return m, nil
}

func (c *nodeCtx) has(name string) bool { _, ok := c.attrs[name]; return ok }

func (c *nodeCtx) int(name string, def int64) int64 {
	if a, ok := c.attrs[name]; ok {
		return a.GetI()
	}
	return def
}

func (c *nodeCtx) float(name string, def float32) float32 {
	if a, ok := c.attrs[name]; ok {
		return a.GetF()
	}
	return def
}

func (c *nodeCtx) str(name, def string) string {
	if a, ok := c.attrs[name]; ok {
		return string(a.GetS())
	}
	return def
}

func (c *nodeCtx) ints(name string) []int64 { return c.attrs[name].GetInts() }

func (c *nodeCtx) floats(name string) []float32 { return c.attrs[name].GetFloats() }

func (c *nodeCtx) strs(name string) []string {
	raw := c.attrs[name].GetStrings()
	if len(raw) == 0 {
		return nil
	}
	out := make([]string, len(raw))
	for i, s := range raw {
		out[i] = string(s)
	}
	return out
}

// floats64 reads a FLOATS attribute, or its *_as_tensor twin (ai.onnx.ml
// opset 3 stores doubles that way), as float64.
func (c *nodeCtx) floats64(name string) ([]float64, error) {
	if a, ok := c.attrs[name+"_as_tensor"]; ok {
		v, err := decodeTensor(a.GetT())
		if err != nil {
			return nil, err
		}
		return v.float64s()
	}
	f := c.floats(name)
	out := make([]float64, len(f))
	for i, x := range f {
		out[i] = float64(x)
	}
	return out, nil
}

// wantInputs checks the node's input count.
func (c *nodeCtx) wantInputs(lo, hi int) error {
	if c.nIn < lo || c.nIn > hi {
		if lo == hi {
			return fmt.Errorf("%w: has %d inputs, want %d", runtime.ErrCorruptModel, c.nIn, lo)
		}
		return fmt.Errorf("%w: has %d inputs, want %d to %d", runtime.ErrCorruptModel, c.nIn, lo, hi)
	}
	return nil
}

// wantOutputs checks the node's output count; extra outputs are optional
// outputs Ferry does not compute.
func (c *nodeCtx) wantOutputs(max int) error {
	if c.nOut < 1 {
		return fmt.Errorf("%w: the node has no outputs", runtime.ErrCorruptModel)
	}
	if c.nOut > max {
		for _, o := range c.node.GetOutput()[max:] {
			if o != "" {
				return fmt.Errorf("%w: optional output %q is not computed by the Go engine", runtime.ErrUnsupported, o)
			}
		}
	}
	return nil
}

// checkInt narrows an attribute to a positive-or-zero int within limit.
func checkInt(what string, x int64, lo, hi int64) (int, error) {
	if x < lo || x > hi {
		return 0, fmt.Errorf("%w: %s %d is out of range [%d, %d]", runtime.ErrCorruptModel, what, x, lo, hi)
	}
	return int(x), nil
}
