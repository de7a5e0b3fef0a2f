// Package onnx owns Ferry's ONNX runtime: it reads .onnx model files
// (protobuf, decoded with the schema subset in onnxpb), validates requests
// against the graph's declared inputs, and evaluates the graph with one of
// two engines: ONNX Runtime's C library (built only with the onnxruntime
// build tag and cgo) or a pure-Go interpreter that covers the common
// ai.onnx neural-network operators and the ai.onnx.ml classical-ML ones.
package onnx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/onnx/onnxpb"
	"github.com/ferryserve/ferry/internal/tensor"
)

// Engine names, as --onnx-engine takes them.
const (
	EngineAuto   = "auto"   // ONNX Runtime when available, else the Go interpreter
	EngineGo     = "go"     // the pure-Go interpreter
	EngineNative = "native" // ONNX Runtime's C library; fails when unavailable
)

// Options configure how ONNX models are loaded.
type Options struct {
	// Engine is EngineAuto (the default when empty), EngineGo or EngineNative.
	Engine string
	// LibraryPath is the path of libonnxruntime.so for the native engine
	// (--onnxruntime-lib); empty means DefaultLibraryPath.
	LibraryPath string
	// IntraOpThreads and InterOpThreads size ONNX Runtime's thread pools;
	// 0 keeps its defaults. The Go engine runs each request on the
	// caller's goroutine and ignores them.
	IntraOpThreads, InterOpThreads int
	// OptimizationLevel is ONNX Runtime's graph optimisation level:
	// "disable", "basic", "extended" or "all" (the default when empty).
	OptimizationLevel string
	// MaxInferenceBytes bounds the intermediate tensors the Go engine holds
	// at once during one inference (--max-inference-bytes): an operator
	// whose output would cross it fails the request with runtime.ErrBudget
	// before allocating. Zero means DefaultMaxInferenceBytes, negative no
	// bound. ONNX Runtime manages its own memory and ignores it.
	MaxInferenceBytes int64
}

// DefaultLibraryPath is where the native engine looks for ONNX Runtime
// when Options.LibraryPath is empty.
const DefaultLibraryPath = "/usr/local/lib/libonnxruntime.so"

// Validate checks the options.
func (o Options) Validate() error {
	switch o.Engine {
	case "", EngineAuto, EngineGo, EngineNative:
	default:
		return fmt.Errorf("onnx: unknown engine %q (want %s, %s or %s)", o.Engine, EngineAuto, EngineGo, EngineNative)
	}
	switch o.OptimizationLevel {
	case "", "disable", "basic", "extended", "all":
	default:
		return fmt.Errorf("onnx: unknown optimization level %q (want disable, basic, extended or all)", o.OptimizationLevel)
	}
	if o.IntraOpThreads < 0 || o.InterOpThreads < 0 {
		return errors.New("onnx: thread counts must not be negative")
	}
	return nil
}

// Format detects ONNX models (files named *.onnx) and loads them with
// default options.
var Format = FormatWith(Options{})

// FormatWith returns a Format whose models use opts.
func FormatWith(opts Options) runtime.Format {
	return runtime.Format{
		Name:  "onnx",
		Match: match,
		Load: func(ctx context.Context, path string) (runtime.Model, error) {
			return LoadFile(ctx, path, opts)
		},
	}
}

func match(name string, _ []byte) bool {
	return strings.HasSuffix(strings.ToLower(name), ".onnx")
}

// engine evaluates a loaded graph. Inputs come in the order of the graph's
// declared inputs; outputs are returned in the order of its outputs.
type engine interface {
	run(ctx context.Context, inputs []*value) ([]*value, error)
	name() string
	close() error
}

// goEngine adapts the interpreter to engine.
type goEngine struct{ g *graph }

func (e goEngine) run(ctx context.Context, in []*value) ([]*value, error) { return e.g.run(ctx, in) }
func (goEngine) name() string                                             { return EngineGo }
func (goEngine) close() error                                             { return nil }

// Model is a loaded ONNX model. It is safe for concurrent use.
type Model struct {
	inputs  []ioInfo
	outputs []ioInfo
	meta    runtime.Metadata
	eng     engine
}

var _ runtime.Model = (*Model)(nil)

// LoadFile reads and loads an .onnx file.
func LoadFile(ctx context.Context, path string, opts Options) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Load(ctx, data, opts)
}

// Load parses a serialised ONNX model and prepares the chosen engine.
// Malformed files return errors wrapping runtime.ErrCorruptModel; models
// using operators or features the engine lacks wrap runtime.ErrUnsupported.
func Load(_ context.Context, data []byte, opts Options) (*Model, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	pm, err := decodeModel(data)
	if err != nil {
		return nil, err
	}
	inputs, outputs, err := describe(pm)
	if err != nil {
		return nil, err
	}
	eng, err := newEngine(pm, data, opts)
	if err != nil {
		return nil, err
	}
	m := &Model{inputs: inputs, outputs: outputs, eng: eng}
	m.meta = metadata(pm, inputs, outputs, eng.name())
	return m, nil
}

// newEngine picks the engine: native when asked or (for auto) when it is
// built in and its library loads; otherwise the Go interpreter.
func newEngine(pm *onnxpb.ModelProto, data []byte, opts Options) (engine, error) {
	switch opts.Engine {
	case EngineNative:
		return newNativeEngine(pm, data, opts)
	case EngineGo:
	default:
		if nativeBuilt {
			if e, err := newNativeEngine(pm, data, opts); err == nil {
				return e, nil
			}
		}
	}
	g, err := compile(pm)
	if err != nil {
		return nil, err
	}
	if opts.MaxInferenceBytes != 0 {
		g.maxBytes = opts.MaxInferenceBytes
	}
	return goEngine{g}, nil
}

// metadata reports the graph's inputs and outputs; ZipMap outputs appear as
// FP32 [-1, classes] tensors, as Predict returns them.
func metadata(pm *onnxpb.ModelProto, inputs, outputs []ioInfo, engine string) runtime.Metadata {
	md := runtime.Metadata{
		Platform: "onnx",
		Properties: map[string]string{
			"engine":           engine,
			"ir_version":       strconv.FormatInt(pm.GetIrVersion(), 10),
			"producer_name":    pm.GetProducerName(),
			"producer_version": pm.GetProducerVersion(),
		},
	}
	var opsets []string
	for d, v := range opsetVersions(pm) {
		if d == "" {
			d = "ai.onnx"
		}
		opsets = append(opsets, d+"="+strconv.FormatInt(v, 10))
	}
	slices.Sort(opsets)
	md.Properties["opset_import"] = strings.Join(opsets, ",")
	zipClasses := zipMapClasses(pm)
	for _, in := range inputs {
		md.Inputs = append(md.Inputs, runtime.TensorMeta{Name: in.name, Datatype: tensorType(in.dt), Shape: metaShape(in)})
	}
	for _, out := range outputs {
		shape := metaShape(out)
		if out.seqMap {
			shape = []int64{-1, int64(zipClasses[out.name])}
			if shape[1] == 0 {
				shape[1] = -1
			}
		}
		md.Outputs = append(md.Outputs, runtime.TensorMeta{Name: out.name, Datatype: tensorType(out.dt), Shape: shape})
	}
	return md
}

func metaShape(io ioInfo) []int64 {
	if !io.hasShape {
		return []int64{-1}
	}
	return slices.Clone(io.shape)
}

// zipMapClasses maps each ZipMap output to its number of class labels.
func zipMapClasses(pm *onnxpb.ModelProto) map[string]int {
	out := map[string]int{}
	for _, n := range pm.GetGraph().GetNode() {
		if n.GetOpType() != "ZipMap" || len(n.GetOutput()) == 0 {
			continue
		}
		for _, a := range n.GetAttribute() {
			switch a.GetName() {
			case "classlabels_int64s":
				out[n.GetOutput()[0]] = len(a.GetInts())
			case "classlabels_strings":
				out[n.GetOutput()[0]] = len(a.GetStrings())
			}
		}
	}
	return out
}

// Metadata implements runtime.Model.
func (m *Model) Metadata() runtime.Metadata { return m.meta }

// Engine names the engine evaluating the model (EngineGo or EngineNative).
func (m *Model) Engine() string { return m.eng.name() }

// Close implements runtime.Model.
func (m *Model) Close() error { return m.eng.close() }

// Predict implements runtime.Model. Request inputs map to graph inputs by
// name; a graph with one input accepts any single input name, and one with
// a single [rows, features] numeric input also accepts the layouts of
// runtime.FeatureMatrix32 (one tensor per feature). Outputs keep their graph
// names; all are returned unless the request names some.
func (m *Model) Predict(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	want, err := m.wantedOutputs(req)
	if err != nil {
		return nil, err
	}
	inputs, err := m.bindInputs(req)
	if err != nil {
		return nil, err
	}
	outs, err := m.eng.run(ctx, inputs)
	if err != nil {
		if errors.Is(err, runtime.ErrInvalidInput) || ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("onnx: %w", err)
	}
	res := &runtime.Response{}
	for i, o := range m.outputs {
		if want[i] {
			res.Outputs = append(res.Outputs, toTensor(o.name, outs[i]))
		}
	}
	return res, nil
}

func (m *Model) wantedOutputs(req *runtime.Request) ([]bool, error) {
	want := make([]bool, len(m.outputs))
	if len(req.Outputs) == 0 {
		for i := range want {
			want[i] = true
		}
		return want, nil
	}
	for _, name := range req.Outputs {
		i := slices.IndexFunc(m.outputs, func(o ioInfo) bool { return o.name == name })
		if i < 0 {
			return nil, fmt.Errorf("%w: requested output %q; the model has %s", runtime.ErrInvalidInput, name, m.outputNames())
		}
		want[i] = true
	}
	return want, nil
}

func (m *Model) outputNames() string {
	names := make([]string, len(m.outputs))
	for i, o := range m.outputs {
		names[i] = strconv.Quote(o.name)
	}
	return strings.Join(names, ", ")
}

// bindInputs converts the request's tensors to engine values in graph input
// order, checking names, datatypes and shapes against the declarations.
func (m *Model) bindInputs(req *runtime.Request) ([]*value, error) {
	for _, t := range req.Inputs {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", runtime.ErrInvalidInput, err)
		}
	}
	if len(m.inputs) == 1 {
		in := m.inputs[0]
		if cols, ok := tabular(in); ok {
			return m.bindTabular(req, in, cols)
		}
		if len(req.Inputs) != 1 {
			return nil, fmt.Errorf("%w: the model takes one input %q, got %d tensors", runtime.ErrInvalidInput, in.name, len(req.Inputs))
		}
		v, err := bindOne(req.Inputs[0], in)
		if err != nil {
			return nil, err
		}
		return []*value{v}, nil
	}
	out := make([]*value, len(m.inputs))
	for _, t := range req.Inputs {
		i := slices.IndexFunc(m.inputs, func(io ioInfo) bool { return io.name == t.Name })
		if i < 0 {
			return nil, fmt.Errorf("%w: input %q is not one of the model's inputs (%s)", runtime.ErrInvalidInput, t.Name, m.inputNames())
		}
		if out[i] != nil {
			return nil, fmt.Errorf("%w: input %q given twice", runtime.ErrInvalidInput, t.Name)
		}
		v, err := bindOne(t, m.inputs[i])
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	for i, v := range out {
		if v == nil {
			return nil, fmt.Errorf("%w: missing input %q", runtime.ErrInvalidInput, m.inputs[i].name)
		}
	}
	return out, nil
}

func (m *Model) inputNames() string {
	names := make([]string, len(m.inputs))
	for i, o := range m.inputs {
		names[i] = strconv.Quote(o.name)
	}
	return strings.Join(names, ", ")
}

// tabular reports whether an input is a numeric [rows, features] matrix with
// a fixed feature count.
func tabular(in ioInfo) (int, bool) {
	if !in.hasShape || len(in.shape) != 2 || in.shape[1] <= 0 {
		return 0, false
	}
	return int(in.shape[1]), in.dt == tFloat || in.dt == tDouble
}

func (m *Model) bindTabular(req *runtime.Request, in ioInfo, cols int) ([]*value, error) {
	var v *value
	if in.dt == tFloat {
		x, err := runtime.FeatureMatrix32(req, cols)
		if err != nil {
			return nil, err
		}
		v = &value{dt: tFloat, shape: []int{x.Rows, x.Cols}, f32: x.Data}
	} else {
		x, err := runtime.FeatureMatrix64(req, cols)
		if err != nil {
			return nil, err
		}
		v = &value{dt: tDouble, shape: []int{x.Rows, x.Cols}, f64: x.Data}
	}
	if in.shape[0] > 0 && int64(v.shape[0]) != in.shape[0] {
		return nil, fmt.Errorf("%w: input %q has %d rows; the model takes exactly %d", runtime.ErrInvalidInput, in.name, v.shape[0], in.shape[0])
	}
	return []*value{v}, nil
}

// bindOne converts one request tensor for graph input in.
func bindOne(t *tensor.Tensor, in ioInfo) (*value, error) {
	if in.hasShape {
		ok := len(t.Shape) == len(in.shape)
		for i := 0; ok && i < len(in.shape); i++ {
			ok = in.shape[i] < 0 || in.shape[i] == t.Shape[i]
		}
		if !ok {
			return nil, fmt.Errorf("%w: input %q has shape %v; the model expects %v (-1 is any size)", runtime.ErrInvalidInput, in.name, t.Shape, in.shape)
		}
	}
	v, err := fromTensor(t, in.dt)
	if err != nil {
		return nil, fmt.Errorf("%w: input %q: %w", runtime.ErrInvalidInput, in.name, err)
	}
	return v, nil
}
