//go:build onnxruntime && cgo

package onnx

import (
	"context"
	"errors"
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/onnx/onnxpb"
)

// nativeBuilt reports whether this binary contains the ONNX Runtime engine.
const nativeBuilt = true

// ortEnv reference-counts ONNX Runtime's environment. The C library keeps
// one environment per process (onnxruntime_go holds it in package state),
// so this is the one piece of package-level mutable state in the runtime:
// the first native model initialises it with its library path, the last
// one closed destroys it.
var ortEnv struct {
	mu   sync.Mutex
	path string
	refs int
}

func acquireORT(path string) error {
	ortEnv.mu.Lock()
	defer ortEnv.mu.Unlock()
	if ortEnv.refs > 0 {
		if path != ortEnv.path {
			return fmt.Errorf("onnx: ONNX Runtime is already loaded from %s; one process can use only one library (asked for %s)", ortEnv.path, path)
		}
		ortEnv.refs++
		return nil
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(); err != nil {
		return fmt.Errorf("%w: load ONNX Runtime from %s (set --onnxruntime-lib, or fetch it with internal/runtime/onnx/fetch-ort.sh): %w", runtime.ErrUnsupported, path, err)
	}
	ortEnv.path, ortEnv.refs = path, 1
	return nil
}

func releaseORT() error {
	ortEnv.mu.Lock()
	defer ortEnv.mu.Unlock()
	if ortEnv.refs == 0 {
		return nil
	}
	if ortEnv.refs--; ortEnv.refs == 0 {
		return ort.DestroyEnvironment()
	}
	return nil
}

// nativeEngine runs a model in an ONNX Runtime session.
type nativeEngine struct {
	sess    *ort.DynamicAdvancedSession
	inputs  []ioInfo
	outputs []ioInfo
	// zipLabels holds, for each sequence-of-maps output, the class labels
	// in the order the dense [rows, classes] result uses.
	zipLabels map[string]classLabels
	closeOnce sync.Once
}

func newNativeEngine(pm *onnxpb.ModelProto, data []byte, opts Options) (engine, error) {
	inputs, outputs, err := describe(pm)
	if err != nil {
		return nil, err
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("%w: the native engine needs a model with at least one input", runtime.ErrUnsupported)
	}
	path := opts.LibraryPath
	if path == "" {
		path = DefaultLibraryPath
	}
	if err := acquireORT(path); err != nil {
		return nil, err
	}
	so, err := sessionOptions(opts)
	if err != nil {
		releaseORT()
		return nil, err
	}
	defer so.Destroy()
	names := func(ios []ioInfo) []string {
		out := make([]string, len(ios))
		for i, io := range ios {
			out[i] = io.name
		}
		return out
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, names(inputs), names(outputs), so)
	if err != nil {
		releaseORT()
		return nil, fmt.Errorf("%w: ONNX Runtime rejected the model: %w", runtime.ErrCorruptModel, err)
	}
	return &nativeEngine{sess: sess, inputs: inputs, outputs: outputs, zipLabels: zipMapLabels(pm)}, nil
}

func sessionOptions(opts Options) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnx: session options: %w", err)
	}
	if opts.IntraOpThreads > 0 {
		err = errors.Join(err, so.SetIntraOpNumThreads(opts.IntraOpThreads))
	}
	if opts.InterOpThreads > 0 {
		err = errors.Join(err, so.SetInterOpNumThreads(opts.InterOpThreads))
	}
	var level ort.GraphOptimizationLevel = ort.GraphOptimizationLevelEnableAll
	switch opts.OptimizationLevel {
	case "disable":
		level = ort.GraphOptimizationLevelDisableAll
	case "basic":
		level = ort.GraphOptimizationLevelEnableBasic
	case "extended":
		level = ort.GraphOptimizationLevelEnableExtended
	}
	err = errors.Join(err, so.SetGraphOptimizationLevel(level))
	if err != nil {
		so.Destroy()
		return nil, fmt.Errorf("onnx: session options: %w", err)
	}
	return so, nil
}

// zipMapLabels reads each ZipMap node's class labels by output name.
func zipMapLabels(pm *onnxpb.ModelProto) map[string]classLabels {
	out := map[string]classLabels{}
	for _, n := range pm.GetGraph().GetNode() {
		if n.GetOpType() != "ZipMap" || len(n.GetOutput()) == 0 {
			continue
		}
		var l classLabels
		for _, a := range n.GetAttribute() {
			switch a.GetName() {
			case "classlabels_int64s":
				l.ints = a.GetInts()
			case "classlabels_strings":
				for _, s := range a.GetStrings() {
					l.strs = append(l.strs, string(s))
				}
			}
		}
		out[n.GetOutput()[0]] = l
	}
	return out
}

func (*nativeEngine) name() string { return EngineNative }

func (e *nativeEngine) close() error {
	var err error
	e.closeOnce.Do(func() {
		err = errors.Join(e.sess.Destroy(), releaseORT())
	})
	return err
}

func (e *nativeEngine) run(ctx context.Context, in []*value) ([]*value, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ins := make([]ort.Value, 0, len(in))
	defer func() {
		for _, v := range ins {
			v.Destroy()
		}
	}()
	for i, v := range in {
		ov, err := toORT(v)
		if err != nil {
			return nil, fmt.Errorf("%w: input %q: %w", runtime.ErrInvalidInput, e.inputs[i].name, err)
		}
		ins = append(ins, ov)
	}
	outs := make([]ort.Value, len(e.outputs))
	defer func() {
		for _, v := range outs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	if err := e.sess.Run(ins, outs); err != nil {
		// ONNX Runtime reports shape and type mismatches here; the
		// inputs were already checked against the declarations, so
		// what remains is most often a request the graph cannot take.
		return nil, fmt.Errorf("%w: ONNX Runtime: %w", runtime.ErrInvalidInput, err)
	}
	res := make([]*value, len(outs))
	for i, ov := range outs {
		var err error
		if e.outputs[i].seqMap {
			res[i], err = fromORTZipMap(ov, e.zipLabels[e.outputs[i].name])
		} else {
			res[i], err = fromORT(ov)
		}
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", e.outputs[i].name, err)
		}
	}
	return res, nil
}

func ortShape(shape []int) ort.Shape {
	s := make(ort.Shape, len(shape))
	for i, d := range shape {
		s[i] = int64(d)
	}
	return s
}

func toORT(v *value) (ort.Value, error) {
	if len(v.shape) == 0 && v.len() == 1 {
		// onnxruntime_go's tensors need a dimension; scalars have their own type.
		switch v.dt {
		case tFloat:
			return ort.NewScalar(v.f32[0])
		case tDouble:
			return ort.NewScalar(v.f64[0])
		case tInt64:
			return ort.NewScalar(v.i64[0])
		case tInt32:
			return ort.NewScalar(int32(v.i64[0]))
		case tInt16:
			return ort.NewScalar(int16(v.i64[0]))
		case tInt8:
			return ort.NewScalar(int8(v.i64[0]))
		case tUint8:
			return ort.NewScalar(uint8(v.i64[0]))
		case tUint16:
			return ort.NewScalar(uint16(v.i64[0]))
		case tUint32:
			return ort.NewScalar(uint32(v.i64[0]))
		case tUint64:
			return ort.NewScalar(uint64(v.i64[0]))
		case tBool:
			return ort.NewScalar(v.i64[0] != 0)
		}
	}
	s := ortShape(v.shape)
	switch v.dt {
	case tFloat:
		return ort.NewTensor(s, v.f32)
	case tDouble:
		return ort.NewTensor(s, v.f64)
	case tInt64:
		return ort.NewTensor(s, v.i64)
	case tInt32:
		return ort.NewTensor(s, convertInts[int32](v.i64))
	case tInt16:
		return ort.NewTensor(s, convertInts[int16](v.i64))
	case tInt8:
		return ort.NewTensor(s, convertInts[int8](v.i64))
	case tUint8:
		return ort.NewTensor(s, convertInts[uint8](v.i64))
	case tUint16:
		return ort.NewTensor(s, convertInts[uint16](v.i64))
	case tUint32:
		return ort.NewTensor(s, convertInts[uint32](v.i64))
	case tUint64:
		return ort.NewTensor(s, convertInts[uint64](v.i64))
	case tBool:
		b := make([]bool, len(v.i64))
		for i, x := range v.i64 {
			b[i] = x != 0
		}
		return ort.NewTensor(s, b)
	case tString:
		t, err := ort.NewStringTensor(s)
		if err != nil {
			return nil, err
		}
		if err := t.SetContents(v.str); err != nil {
			t.Destroy()
			return nil, err
		}
		return t, nil
	}
	return nil, fmt.Errorf("element type %s is not supported", v.dt)
}

func fromShape(s ort.Shape) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out
}

func widen[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64](x []T) []int64 {
	out := make([]int64, len(x))
	for i, v := range x {
		out[i] = int64(v)
	}
	return out
}

// fromORT copies an ONNX Runtime tensor into a value.
func fromORT(ov ort.Value) (*value, error) {
	v := &value{shape: fromShape(ov.GetShape())}
	switch t := ov.(type) {
	case *ort.Tensor[float32]:
		v.dt, v.f32 = tFloat, append([]float32(nil), t.GetData()...)
	case *ort.Tensor[float64]:
		v.dt, v.f64 = tDouble, append([]float64(nil), t.GetData()...)
	case *ort.Tensor[int64]:
		v.dt, v.i64 = tInt64, append([]int64(nil), t.GetData()...)
	case *ort.Tensor[int32]:
		v.dt, v.i64 = tInt32, widen(t.GetData())
	case *ort.Tensor[int16]:
		v.dt, v.i64 = tInt16, widen(t.GetData())
	case *ort.Tensor[int8]:
		v.dt, v.i64 = tInt8, widen(t.GetData())
	case *ort.Tensor[uint8]:
		v.dt, v.i64 = tUint8, widen(t.GetData())
	case *ort.Tensor[uint16]:
		v.dt, v.i64 = tUint16, widen(t.GetData())
	case *ort.Tensor[uint32]:
		v.dt, v.i64 = tUint32, widen(t.GetData())
	case *ort.Tensor[uint64]:
		v.dt, v.i64 = tUint64, widen(t.GetData())
	case *ort.Tensor[bool]:
		v.dt = tBool
		for _, b := range t.GetData() {
			if b {
				v.i64 = append(v.i64, 1)
			} else {
				v.i64 = append(v.i64, 0)
			}
		}
	case *ort.Scalar[float32]:
		v.dt, v.f32 = tFloat, []float32{t.GetData()}
	case *ort.Scalar[float64]:
		v.dt, v.f64 = tDouble, []float64{t.GetData()}
	case *ort.Scalar[int64]:
		v.dt, v.i64 = tInt64, []int64{t.GetData()}
	case *ort.StringTensor:
		s, err := t.GetContents()
		if err != nil {
			return nil, err
		}
		v.dt, v.str = tString, s
	default:
		return nil, fmt.Errorf("%w: ONNX Runtime returned a %T", runtime.ErrUnsupported, ov)
	}
	return v, nil
}

// fromORTZipMap turns ZipMap's sequence of maps into the dense [rows,
// classes] FLOAT value the Go engine returns, with classes in label order.
func fromORTZipMap(ov ort.Value, labels classLabels) (*value, error) {
	seq, ok := ov.(*ort.Sequence)
	if !ok {
		return nil, fmt.Errorf("%w: want a sequence of maps, got %T", runtime.ErrUnsupported, ov)
	}
	rows, err := seq.GetValues()
	if err != nil {
		return nil, err
	}
	classes := labels.len()
	out := &value{dt: tFloat, shape: []int{len(rows), classes}, f32: make([]float32, len(rows)*classes), zipmap: true}
	for r, rv := range rows {
		m, ok := rv.(*ort.Map)
		if !ok {
			return nil, fmt.Errorf("%w: sequence element is a %T, not a map", runtime.ErrUnsupported, rv)
		}
		kv, vv, err := m.GetKeysAndValues()
		if err != nil {
			return nil, err
		}
		keys, err := fromORT(kv)
		if err != nil {
			return nil, err
		}
		vals, err := fromORT(vv)
		if err != nil {
			return nil, err
		}
		f, err := vals.float32s()
		if err != nil {
			return nil, err
		}
		for i, x := range f {
			col := -1
			switch {
			case keys.dt == tString && labels.strs != nil:
				col = indexOf(labels.strs, keys.str[i])
			case keys.dt != tString && labels.ints != nil:
				col = indexOf(labels.ints, keys.i64[i])
			}
			if col < 0 {
				return nil, fmt.Errorf("ZipMap key %d is not a class label", i)
			}
			out.f32[r*classes+col] = x
		}
	}
	return out, nil
}

func indexOf[T comparable](s []T, x T) int {
	for i, v := range s {
		if v == x {
			return i
		}
	}
	return -1
}
