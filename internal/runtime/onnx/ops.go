package onnx

import (
	"fmt"
	"math"

	"github.com/ferryserve/ferry/internal/runtime"
)

// builder checks a node's attributes and constant inputs at load time and
// returns its kernel.
type builder func(c *nodeCtx) (kernel, error)

// lookupOp finds the builder for an operator. The switch is the list of
// operators the Go engine implements.
func lookupOp(domain, op string) (builder, bool) {
	if domain == domainML {
		switch op {
		case "TreeEnsembleRegressor":
			return buildTreeRegressor, true
		case "TreeEnsembleClassifier":
			return buildTreeClassifier, true
		case "LinearRegressor":
			return buildLinearRegressor, true
		case "LinearClassifier":
			return buildLinearClassifier, true
		case "Scaler":
			return buildScaler, true
		case "Normalizer":
			return buildNormalizer, true
		case "ZipMap":
			return buildZipMap, true
		}
		return nil, false
	}
	if domain != domainONNX {
		return nil, false
	}
	switch op {
	case "Add":
		return arith(func(a, b float32) float32 { return a + b }, func(a, b float64) float64 { return a + b }, func(a, b int64) (int64, bool) { return a + b, true }), true
	case "Sub":
		return arith(func(a, b float32) float32 { return a - b }, func(a, b float64) float64 { return a - b }, func(a, b int64) (int64, bool) { return a - b, true }), true
	case "Mul":
		return arith(func(a, b float32) float32 { return a * b }, func(a, b float64) float64 { return a * b }, func(a, b int64) (int64, bool) { return a * b, true }), true
	case "Div":
		return arith(func(a, b float32) float32 { return a / b }, func(a, b float64) float64 { return a / b }, func(a, b int64) (int64, bool) {
			if b == 0 {
				return 0, false
			}
			return a / b, true
		}), true
	case "Relu":
		return unary(func(x float64) float64 { return max(x, 0) }, func(x float32) float32 { return max(x, 0) }), true
	case "Sigmoid":
		return unary(sigmoid, func(x float32) float32 { return float32(sigmoid(float64(x))) }), true
	case "Tanh":
		return unary(math.Tanh, func(x float32) float32 { return float32(math.Tanh(float64(x))) }), true
	case "Softmax":
		return buildSoftmax, true
	case "LeakyRelu":
		return buildLeakyRelu, true
	case "Exp":
		return unary(math.Exp, func(x float32) float32 { return float32(math.Exp(float64(x))) }), true
	case "Log":
		return unary(math.Log, func(x float32) float32 { return float32(math.Log(float64(x))) }), true
	case "Sqrt":
		return unary(math.Sqrt, func(x float32) float32 { return float32(math.Sqrt(float64(x))) }), true
	case "Abs":
		return unary(math.Abs, func(x float32) float32 { return float32(math.Abs(float64(x))) }), true
	case "Neg":
		return unary(func(x float64) float64 { return -x }, func(x float32) float32 { return -x }), true
	case "Clip":
		return buildClip, true
	case "Dropout":
		return buildDropout, true
	case "MatMul":
		return buildMatMul, true
	case "Gemm":
		return buildGemm, true
	case "Reshape":
		return buildReshape, true
	case "Flatten":
		return buildFlatten, true
	case "Concat":
		return buildConcat, true
	case "Transpose":
		return buildTranspose, true
	case "Identity":
		return buildIdentity, true
	case "Cast":
		return buildCast, true
	case "Constant":
		return buildConstant, true
	case "Shape":
		return buildShape, true
	case "Unsqueeze":
		return buildUnsqueeze, true
	case "Squeeze":
		return buildSqueeze, true
	case "Gather":
		return buildGather, true
	case "Pad":
		return buildPad, true
	case "Conv":
		return buildConv, true
	case "MaxPool":
		return buildPool(true), true
	case "AveragePool":
		return buildPool(false), true
	case "BatchNormalization":
		return buildBatchNorm, true
	}
	return nil, false
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// unary builds an element-wise float operator.
func unary(f64 func(float64) float64, f32 func(float32) float32) builder {
	return func(c *nodeCtx) (kernel, error) {
		if err := c.wantInputs(1, 1); err != nil {
			return nil, err
		}
		if err := c.wantOutputs(1); err != nil {
			return nil, err
		}
		return func(rb *runBudget, in []*value) ([]*value, error) {
			x := in[0]
			out := &value{dt: x.dt, shape: x.shape}
			if err := rb.reserve(len(x.f32)+len(x.f64), elemBytes(x.dt), x.shape); err != nil {
				return nil, err
			}
			switch x.dt {
			case tFloat:
				out.f32 = make([]float32, len(x.f32))
				for i, v := range x.f32 {
					out.f32[i] = f32(v)
				}
			case tDouble:
				out.f64 = make([]float64, len(x.f64))
				for i, v := range x.f64 {
					out.f64[i] = f64(v)
				}
			default:
				return nil, fmt.Errorf("%w: input type %s; want FLOAT or DOUBLE", runtime.ErrInvalidInput, x.dt)
			}
			return []*value{out}, nil
		}, nil
	}
}

// broadcastShape applies ONNX's multidirectional (numpy) broadcasting.
func broadcastShape(a, b []int) ([]int, error) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := range n {
		da, db := 1, 1
		if j := i - (n - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (n - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("%w: shapes %v and %v do not broadcast", runtime.ErrInvalidInput, a, b)
		}
	}
	return out, nil
}

// broadcastStrides returns, for each output dimension, the stride of a
// tensor of shape s broadcast to out (0 where it repeats).
func broadcastStrides(s, out []int) []int {
	st := make([]int, len(out))
	acc := 1
	for i := len(s) - 1; i >= 0; i-- {
		j := i + len(out) - len(s)
		if s[i] != 1 {
			st[j] = acc
		}
		acc *= s[i]
	}
	return st
}

// broadcast2 fills out[i] = f(a[ia], b[ib]) over the broadcast shape.
func broadcast2[T any](out, a, b []T, oshape, ashape, bshape []int, f func(T, T) T) {
	switch {
	case len(a) == len(out) && len(b) == len(out):
		for i := range out {
			out[i] = f(a[i], b[i])
		}
		return
	case len(b) == 1 && len(a) == len(out):
		for i := range out {
			out[i] = f(a[i], b[0])
		}
		return
	case len(a) == 1 && len(b) == len(out):
		for i := range out {
			out[i] = f(a[0], b[i])
		}
		return
	}
	if len(out) == 0 {
		return
	}
	sa, sb := broadcastStrides(ashape, oshape), broadcastStrides(bshape, oshape)
	rank := len(oshape)
	idx := make([]int, rank)
	ia, ib := 0, 0
	last := oshape[rank-1]
	la, lb := sa[rank-1], sb[rank-1]
	for o := 0; o < len(out); o += last {
		for k := range last {
			out[o+k] = f(a[ia+k*la], b[ib+k*lb])
		}
		// advance the outer index (all dims but the last)
		for d := rank - 2; d >= 0; d-- {
			idx[d]++
			ia += sa[d]
			ib += sb[d]
			if idx[d] < oshape[d] {
				break
			}
			ia -= sa[d] * oshape[d]
			ib -= sb[d] * oshape[d]
			idx[d] = 0
		}
	}
}

// arith builds Add, Sub, Mul and Div.
func arith(f32 func(a, b float32) float32, f64 func(a, b float64) float64, i64 func(a, b int64) (int64, bool)) builder {
	return func(c *nodeCtx) (kernel, error) {
		if err := c.wantInputs(2, 2); err != nil {
			return nil, err
		}
		if err := c.wantOutputs(1); err != nil {
			return nil, err
		}
		if c.version < 7 && c.has("broadcast") {
			return nil, fmt.Errorf("%w: legacy broadcast attribute (opset %d)", runtime.ErrUnsupported, c.version)
		}
		return func(rb *runBudget, in []*value) ([]*value, error) {
			a, b := in[0], in[1]
			if a.dt != b.dt {
				return nil, fmt.Errorf("%w: operand types differ: %s and %s", runtime.ErrInvalidInput, a.dt, b.dt)
			}
			shape, err := broadcastShape(a.shape, b.shape)
			if err != nil {
				return nil, err
			}
			out, err := rb.newValue(a.dt, shape)
			if err != nil {
				return nil, err
			}
			switch {
			case a.dt == tFloat:
				broadcast2(out.f32, a.f32, b.f32, shape, a.shape, b.shape, f32)
			case a.dt == tDouble:
				broadcast2(out.f64, a.f64, b.f64, shape, a.shape, b.shape, f64)
			case a.dt.isInt() && a.dt != tBool:
				ok := true
				broadcast2(out.i64, a.i64, b.i64, shape, a.shape, b.shape, func(x, y int64) int64 {
					r, good := i64(x, y)
					ok = ok && good
					return r
				})
				if !ok {
					return nil, fmt.Errorf("%w: integer division by zero", runtime.ErrInvalidInput)
				}
				if a.dt != tInt64 {
					for i, v := range out.i64 {
						out.i64[i] = wrapInt(a.dt, v)
					}
				}
			default:
				return nil, fmt.Errorf("%w: operand type %s is not supported", runtime.ErrInvalidInput, a.dt)
			}
			return []*value{out}, nil
		}, nil
	}
}

// normAxis resolves a possibly negative axis against a rank.
func normAxis(axis int64, rank int) (int, error) {
	if axis < 0 {
		axis += int64(rank)
	}
	if axis < 0 || axis >= int64(rank) {
		return 0, fmt.Errorf("%w: axis %d out of range for rank %d", runtime.ErrInvalidInput, axis, rank)
	}
	return int(axis), nil
}

func buildSoftmax(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	if err := c.wantOutputs(1); err != nil {
		return nil, err
	}
	legacy := c.version < 13 // before opset 13 the input is coerced to 2-D at axis
	axisAttr := c.int("axis", map[bool]int64{true: 1, false: -1}[legacy])
	return func(rb *runBudget, in []*value) ([]*value, error) {
		x := in[0]
		if x.dt != tFloat && x.dt != tDouble {
			return nil, fmt.Errorf("%w: input type %s; want FLOAT or DOUBLE", runtime.ErrInvalidInput, x.dt)
		}
		axis, err := normAxis(axisAttr, max(len(x.shape), 1))
		if err != nil {
			return nil, err
		}
		outer, n, inner := 1, 1, 1
		for i, d := range x.shape {
			switch {
			case i < axis:
				outer *= d
			case i == axis || legacy:
				n *= d
			default:
				inner *= d
			}
		}
		out, _ := rb.newValue(x.dt, x.shape)
		if x.dt == tFloat {
			softmax(out.f32, x.f32, outer, n, inner)
		} else {
			softmax(out.f64, x.f64, outer, n, inner)
		}
		return []*value{out}, nil
	}, nil
}

func softmax[T float32 | float64](out, x []T, outer, n, inner int) {
	for o := range outer {
		for k := range inner {
			base := o*n*inner + k
			m := math.Inf(-1)
			for j := range n {
				m = max(m, float64(x[base+j*inner]))
			}
			var sum float64
			for j := range n {
				e := math.Exp(float64(x[base+j*inner]) - m)
				out[base+j*inner] = T(e)
				sum += e
			}
			for j := range n {
				out[base+j*inner] = T(float64(out[base+j*inner]) / sum)
			}
		}
	}
}

func buildLeakyRelu(c *nodeCtx) (kernel, error) {
	alpha := float64(c.float("alpha", 0.01))
	return unary(func(x float64) float64 {
		if x < 0 {
			return alpha * x
		}
		return x
	}, func(x float32) float32 {
		if x < 0 {
			return float32(alpha) * x
		}
		return x
	})(c)
}

// buildClip limits values to [min, max]: attributes before opset 11,
// optional scalar inputs from then on.
func buildClip(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 3); err != nil {
		return nil, err
	}
	if err := c.wantOutputs(1); err != nil {
		return nil, err
	}
	legacy := c.version < 11
	attrLo, attrHi := float64(c.float("min", float32(math.Inf(-1)))), float64(c.float("max", float32(math.Inf(1))))
	return func(rb *runBudget, in []*value) ([]*value, error) {
		x := in[0]
		lo, hi := math.Inf(-1), math.Inf(1)
		if legacy {
			lo, hi = attrLo, attrHi
		}
		for i, bound := range []*float64{&lo, &hi} {
			if legacy || len(in) <= i+1 || in[i+1] == nil {
				continue
			}
			f, err := in[i+1].float64s()
			if err != nil || len(f) != 1 {
				return nil, fmt.Errorf("%w: Clip bounds must be numeric scalars", runtime.ErrInvalidInput)
			}
			*bound = f[0]
		}
		out, err := rb.newValue(x.dt, x.shape)
		if err != nil {
			return nil, err
		}
		switch {
		case x.dt == tFloat:
			l, h := float32(lo), float32(hi)
			for i, v := range x.f32 {
				out.f32[i] = min(max(v, l), h)
			}
		case x.dt == tDouble:
			for i, v := range x.f64 {
				out.f64[i] = min(max(v, lo), hi)
			}
		case x.dt.isInt():
			for i, v := range x.i64 {
				f := min(max(float64(v), lo), hi)
				out.i64[i] = int64(f)
			}
		default:
			return nil, fmt.Errorf("%w: Clip of %s", runtime.ErrInvalidInput, x.dt)
		}
		return []*value{out}, nil
	}, nil
}

// buildDropout is the identity at inference; training mode and the mask
// output are not supported.
func buildDropout(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 3); err != nil {
		return nil, err
	}
	if err := c.wantOutputs(1); err != nil {
		return nil, err
	}
	if c.version < 7 && c.int("is_test", 0) == 0 {
		return nil, fmt.Errorf("%w: Dropout in training mode (is_test=0)", runtime.ErrUnsupported)
	}
	return func(rb *runBudget, in []*value) ([]*value, error) {
		if len(in) > 2 && in[2] != nil {
			if t, err := in[2].ints(); err != nil || len(t) != 1 || t[0] != 0 {
				return nil, fmt.Errorf("%w: Dropout in training mode", runtime.ErrUnsupported)
			}
		}
		return []*value{in[0]}, nil
	}, nil
}
