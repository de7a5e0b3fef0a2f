package onnx

import (
	"fmt"
	"math"

	"github.com/ferryserve/ferry/internal/runtime"
)

// reshaped returns x viewed with a new shape; the data is shared, which is
// safe because kernels never write into their inputs.
func reshaped(x *value, shape []int) *value {
	v := *x
	v.shape = shape
	return &v
}

func buildIdentity(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	return func(rb *runBudget, in []*value) ([]*value, error) { return []*value{in[0]}, nil }, nil
}

func buildReshape(c *nodeCtx) (kernel, error) {
	if c.version < 5 {
		return nil, fmt.Errorf("%w: Reshape with a shape attribute (opset %d)", runtime.ErrUnsupported, c.version)
	}
	if err := c.wantInputs(2, 2); err != nil {
		return nil, err
	}
	allowZero := c.int("allowzero", 0) != 0
	return func(rb *runBudget, in []*value) ([]*value, error) {
		x := in[0]
		spec, err := in[1].ints()
		if err != nil {
			return nil, fmt.Errorf("%w: shape operand: %w", runtime.ErrInvalidInput, err)
		}
		shape := make([]int, len(spec))
		infer := -1
		known := 1
		for i, d := range spec {
			switch {
			case d == 0 && !allowZero:
				if i >= len(x.shape) {
					return nil, fmt.Errorf("%w: Reshape copies dimension %d of a rank-%d input", runtime.ErrInvalidInput, i, len(x.shape))
				}
				shape[i] = x.shape[i]
			case d == -1:
				if infer >= 0 {
					return nil, fmt.Errorf("%w: Reshape shape %v has two -1 dimensions", runtime.ErrInvalidInput, spec)
				}
				infer = i
				continue
			case d < 0 || d > maxElements:
				return nil, fmt.Errorf("%w: Reshape dimension %d", runtime.ErrInvalidInput, d)
			default:
				shape[i] = int(d)
			}
			if shape[i] != 0 && known > maxElements/shape[i] {
				return nil, fmt.Errorf("%w: Reshape shape %v is too large", runtime.ErrInvalidInput, spec)
			}
			known *= shape[i]
		}
		n := x.len()
		if infer >= 0 {
			if known == 0 || n%known != 0 {
				return nil, fmt.Errorf("%w: cannot reshape %v to %v", runtime.ErrInvalidInput, x.shape, spec)
			}
			shape[infer] = n / known
			known = n
		}
		if known != n {
			return nil, fmt.Errorf("%w: cannot reshape %v (%d elements) to %v", runtime.ErrInvalidInput, x.shape, n, spec)
		}
		return []*value{reshaped(x, shape)}, nil
	}, nil
}

func buildFlatten(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	axisAttr := c.int("axis", 1)
	return func(rb *runBudget, in []*value) ([]*value, error) {
		x := in[0]
		axis := int(axisAttr)
		if axis < 0 {
			axis += len(x.shape)
		}
		if axis < 0 || axis > len(x.shape) {
			return nil, fmt.Errorf("%w: Flatten axis %d for rank %d", runtime.ErrInvalidInput, axisAttr, len(x.shape))
		}
		outer, _ := numel(x.shape[:axis])
		inner, _ := numel(x.shape[axis:])
		return []*value{reshaped(x, []int{outer, inner})}, nil
	}, nil
}

func buildConcat(c *nodeCtx) (kernel, error) {
	if c.nIn < 1 {
		return nil, fmt.Errorf("%w: Concat has no inputs", runtime.ErrCorruptModel)
	}
	if !c.has("axis") && c.version >= 4 {
		return nil, fmt.Errorf("%w: Concat has no axis attribute", runtime.ErrCorruptModel)
	}
	axisAttr := c.int("axis", 1)
	return func(rb *runBudget, in []*value) ([]*value, error) {
		first := in[0]
		if first == nil {
			return nil, fmt.Errorf("%w: Concat input omitted", runtime.ErrInvalidInput)
		}
		axis, err := normAxis(axisAttr, len(first.shape))
		if err != nil {
			return nil, err
		}
		shape := append([]int(nil), first.shape...)
		shape[axis] = 0
		for _, v := range in {
			if v == nil || v.dt != first.dt || len(v.shape) != len(shape) {
				return nil, fmt.Errorf("%w: Concat inputs differ in type or rank", runtime.ErrInvalidInput)
			}
			for d := range shape {
				if d != axis && v.shape[d] != first.shape[d] {
					return nil, fmt.Errorf("%w: Concat inputs of shapes %v and %v differ outside axis %d", runtime.ErrInvalidInput, first.shape, v.shape, axis)
				}
			}
			shape[axis] += v.shape[axis]
		}
		out, err := rb.newValue(first.dt, shape)
		if err != nil {
			return nil, err
		}
		outer, _ := numel(shape[:axis])
		inner, _ := numel(shape[axis+1:])
		off := 0
		for _, v := range in {
			chunk := v.shape[axis] * inner
			for o := range outer {
				dst, src := o*shape[axis]*inner+off, o*chunk
				switch {
				case v.dt == tFloat:
					copy(out.f32[dst:dst+chunk], v.f32[src:src+chunk])
				case v.dt == tDouble:
					copy(out.f64[dst:dst+chunk], v.f64[src:src+chunk])
				case v.dt == tString:
					copy(out.str[dst:dst+chunk], v.str[src:src+chunk])
				default:
					copy(out.i64[dst:dst+chunk], v.i64[src:src+chunk])
				}
			}
			off += chunk
		}
		return []*value{out}, nil
	}, nil
}

func buildTranspose(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	permAttr := c.ints("perm")
	return func(rb *runBudget, in []*value) ([]*value, error) {
		x := in[0]
		rank := len(x.shape)
		perm := make([]int, rank)
		if permAttr == nil {
			for i := range perm {
				perm[i] = rank - 1 - i
			}
		} else {
			if len(permAttr) != rank {
				return nil, fmt.Errorf("%w: Transpose perm %v for rank %d", runtime.ErrInvalidInput, permAttr, rank)
			}
			seen := make([]bool, rank)
			for i, p := range permAttr {
				if p < 0 || p >= int64(rank) || seen[p] {
					return nil, fmt.Errorf("%w: Transpose perm %v is not a permutation", runtime.ErrInvalidInput, permAttr)
				}
				seen[p] = true
				perm[i] = int(p)
			}
		}
		shape := make([]int, rank)
		for i, p := range perm {
			shape[i] = x.shape[p]
		}
		out, err := rb.newValue(x.dt, shape)
		if err != nil {
			return nil, err
		}
		// stride in x of each output dimension
		xs := make([]int, rank)
		acc := 1
		for d := rank - 1; d >= 0; d-- {
			xs[d] = acc
			acc *= x.shape[d]
		}
		st := make([]int, rank)
		for i, p := range perm {
			st[i] = xs[p]
		}
		idx := make([]int, rank)
		src := 0
		for o := range out.len() {
			switch {
			case x.dt == tFloat:
				out.f32[o] = x.f32[src]
			case x.dt == tDouble:
				out.f64[o] = x.f64[src]
			case x.dt == tString:
				out.str[o] = x.str[src]
			default:
				out.i64[o] = x.i64[src]
			}
			for d := rank - 1; d >= 0; d-- {
				idx[d]++
				src += st[d]
				if idx[d] < shape[d] {
					break
				}
				src -= st[d] * shape[d]
				idx[d] = 0
			}
		}
		return []*value{out}, nil
	}, nil
}

func buildCast(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	to := elemType(c.int("to", 0))
	if to != tFloat && to != tDouble && !to.isInt() {
		return nil, fmt.Errorf("%w: Cast to %s", runtime.ErrUnsupported, to)
	}
	return func(rb *runBudget, in []*value) ([]*value, error) {
		x := in[0]
		if x.dt == tString {
			return nil, fmt.Errorf("%w: Cast from STRING", runtime.ErrUnsupported)
		}
		out, err := rb.newValue(to, x.shape)
		if err != nil {
			return nil, err
		}
		f, err := x.float64s()
		if err != nil {
			return nil, err
		}
		switch {
		case to == tFloat:
			if x.dt == tFloat {
				copy(out.f32, x.f32)
				break
			}
			for i, v := range f {
				out.f32[i] = float32(v)
			}
		case to == tDouble:
			copy(out.f64, f)
		case x.dt.isInt():
			for i, v := range x.i64 {
				out.i64[i] = wrapInt(to, v)
			}
		default:
			for i, v := range f {
				if math.IsNaN(v) {
					out.i64[i] = 0
					continue
				}
				out.i64[i] = wrapInt(to, int64(math.Trunc(v)))
			}
		}
		return []*value{out}, nil
	}, nil
}

// wrapInt narrows an int64 to the range of integer type t the way a C cast does.
func wrapInt(t elemType, v int64) int64 {
	switch t {
	case tBool:
		if v != 0 {
			return 1
		}
		return 0
	case tUint8:
		return int64(uint8(v))
	case tInt8:
		return int64(int8(v))
	case tUint16:
		return int64(uint16(v))
	case tInt16:
		return int64(int16(v))
	case tInt32:
		return int64(int32(v))
	case tUint32:
		return int64(uint32(v))
	}
	return v
}

func buildConstant(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(0, 0); err != nil {
		return nil, err
	}
	var v *value
	var err error
	switch {
	case c.has("value"):
		v, err = decodeTensor(c.attrs["value"].GetT())
	case c.has("value_float"):
		v = &value{dt: tFloat, shape: []int{}, f32: []float32{c.float("value_float", 0)}}
	case c.has("value_floats"):
		f := c.floats("value_floats")
		v = &value{dt: tFloat, shape: []int{len(f)}, f32: f}
	case c.has("value_int"):
		v = &value{dt: tInt64, shape: []int{}, i64: []int64{c.int("value_int", 0)}}
	case c.has("value_ints"):
		i := c.ints("value_ints")
		v = &value{dt: tInt64, shape: []int{len(i)}, i64: i}
	default:
		return nil, fmt.Errorf("%w: Constant without a supported value attribute", runtime.ErrUnsupported)
	}
	if err != nil {
		return nil, err
	}
	return func(*runBudget, []*value) ([]*value, error) { return []*value{v}, nil }, nil
}

func buildShape(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 1); err != nil {
		return nil, err
	}
	startAttr, endAttr := c.int("start", 0), c.int("end", math.MaxInt32)
	return func(rb *runBudget, in []*value) ([]*value, error) {
		rank := int64(len(in[0].shape))
		start, end := startAttr, endAttr
		if start < 0 {
			start += rank
		}
		if end < 0 {
			end += rank
		}
		start, end = min(max(start, 0), rank), min(max(end, 0), rank)
		out := &value{dt: tInt64, shape: []int{0}}
		for _, d := range in[0].shape[start:max(start, end)] {
			out.i64 = append(out.i64, int64(d))
		}
		out.shape[0] = len(out.i64)
		return []*value{out}, nil
	}, nil
}

// axesOf reads Unsqueeze/Squeeze axes from the attribute (before opset 13)
// or the second input.
func axesOf(c *nodeCtx, in []*value) ([]int64, error) {
	if c.version < 13 {
		return c.ints("axes"), nil
	}
	if len(in) < 2 || in[1] == nil {
		return nil, nil
	}
	return in[1].ints()
}

func buildUnsqueeze(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 2); err != nil {
		return nil, err
	}
	return func(rb *runBudget, in []*value) ([]*value, error) {
		axes, err := axesOf(c, in)
		if err != nil || len(axes) == 0 {
			return nil, fmt.Errorf("%w: Unsqueeze needs axes", runtime.ErrInvalidInput)
		}
		rank := len(in[0].shape) + len(axes)
		added := make([]bool, rank)
		for _, a := range axes {
			ax, err := normAxis(a, rank)
			if err != nil || added[ax] {
				return nil, fmt.Errorf("%w: Unsqueeze axes %v", runtime.ErrInvalidInput, axes)
			}
			added[ax] = true
		}
		shape := make([]int, 0, rank)
		j := 0
		for i := range rank {
			if added[i] {
				shape = append(shape, 1)
			} else {
				shape = append(shape, in[0].shape[j])
				j++
			}
		}
		return []*value{reshaped(in[0], shape)}, nil
	}, nil
}

func buildSqueeze(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 2); err != nil {
		return nil, err
	}
	return func(rb *runBudget, in []*value) ([]*value, error) {
		axes, err := axesOf(c, in)
		if err != nil {
			return nil, fmt.Errorf("%w: Squeeze axes: %w", runtime.ErrInvalidInput, err)
		}
		x := in[0]
		drop := make([]bool, len(x.shape))
		for _, a := range axes {
			ax, err := normAxis(a, len(x.shape))
			if err != nil || x.shape[ax] != 1 {
				return nil, fmt.Errorf("%w: Squeeze axes %v of shape %v", runtime.ErrInvalidInput, axes, x.shape)
			}
			drop[ax] = true
		}
		shape := []int{}
		for i, d := range x.shape {
			if drop[i] || (len(axes) == 0 && d == 1) {
				continue
			}
			shape = append(shape, d)
		}
		return []*value{reshaped(x, shape)}, nil
	}, nil
}

func buildGather(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(2, 2); err != nil {
		return nil, err
	}
	axisAttr := c.int("axis", 0)
	return func(rb *runBudget, in []*value) ([]*value, error) {
		x, iv := in[0], in[1]
		idx, err := iv.ints()
		if err != nil {
			return nil, fmt.Errorf("%w: Gather indices: %w", runtime.ErrInvalidInput, err)
		}
		axis, err := normAxis(axisAttr, len(x.shape))
		if err != nil {
			return nil, err
		}
		shape := append(append(append([]int{}, x.shape[:axis]...), iv.shape...), x.shape[axis+1:]...)
		out, err := rb.newValue(x.dt, shape)
		if err != nil {
			return nil, err
		}
		outer, _ := numel(x.shape[:axis])
		inner, _ := numel(x.shape[axis+1:])
		n := x.shape[axis]
		o := 0
		for b := range outer {
			for _, k := range idx {
				if k < 0 {
					k += int64(n)
				}
				if k < 0 || k >= int64(n) {
					return nil, fmt.Errorf("%w: Gather index %d out of range [0, %d)", runtime.ErrInvalidInput, k, n)
				}
				src := (b*n + int(k)) * inner
				switch {
				case x.dt == tFloat:
					copy(out.f32[o:o+inner], x.f32[src:src+inner])
				case x.dt == tDouble:
					copy(out.f64[o:o+inner], x.f64[src:src+inner])
				case x.dt == tString:
					copy(out.str[o:o+inner], x.str[src:src+inner])
				default:
					copy(out.i64[o:o+inner], x.i64[src:src+inner])
				}
				o += inner
			}
		}
		return []*value{out}, nil
	}, nil
}

func buildPad(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(1, 4); err != nil {
		return nil, err
	}
	if mode := c.str("mode", "constant"); mode != "constant" {
		return nil, fmt.Errorf("%w: Pad mode %q (only constant)", runtime.ErrUnsupported, mode)
	}
	legacy := c.version < 11
	attrPads, attrValue := c.ints("pads"), c.float("value", 0)
	if c.nIn > 3 {
		return nil, fmt.Errorf("%w: Pad with axes", runtime.ErrUnsupported)
	}
	return func(rb *runBudget, in []*value) ([]*value, error) {
		x := in[0]
		pads, fill := attrPads, float64(attrValue)
		if !legacy {
			if len(in) < 2 || in[1] == nil {
				return nil, fmt.Errorf("%w: Pad without pads", runtime.ErrInvalidInput)
			}
			p, err := in[1].ints()
			if err != nil {
				return nil, fmt.Errorf("%w: Pad pads: %w", runtime.ErrInvalidInput, err)
			}
			pads = p
			if len(in) > 2 && in[2] != nil && in[2].len() > 0 {
				f, err := in[2].float64s()
				if err != nil {
					return nil, fmt.Errorf("%w: Pad value: %w", runtime.ErrInvalidInput, err)
				}
				fill = f[0]
			}
		}
		rank := len(x.shape)
		if rank == 0 {
			return nil, fmt.Errorf("%w: Pad of a scalar", runtime.ErrInvalidInput)
		}
		if len(pads) != 2*rank {
			return nil, fmt.Errorf("%w: Pad pads %v for rank %d", runtime.ErrInvalidInput, pads, rank)
		}
		if x.dt != tFloat {
			return nil, fmt.Errorf("%w: Pad of %s", runtime.ErrUnsupported, x.dt)
		}
		shape := make([]int, rank)
		for d := range rank {
			b, e := pads[d], pads[d+rank]
			if b < 0 || e < 0 || b > maxElements || e > maxElements {
				return nil, fmt.Errorf("%w: Pad pads %v (negative pads are not supported)", runtime.ErrUnsupported, pads)
			}
			shape[d] = x.shape[d] + int(b) + int(e)
		}
		out, err := rb.newValue(tFloat, shape)
		if err != nil {
			return nil, err
		}
		f := float32(fill)
		for i := range out.f32 {
			out.f32[i] = f
		}
		if x.len() == 0 {
			return []*value{out}, nil
		}
		// copy x row by row (the last dimension is contiguous in both)
		last := x.shape[rank-1]
		idx := make([]int, rank)
		for src := 0; src < len(x.f32); src += last {
			dst := 0
			for d := range rank {
				dst = dst*shape[d] + idx[d] + int(pads[d])
			}
			copy(out.f32[dst:dst+last], x.f32[src:src+last])
			for d := rank - 2; d >= 0; d-- {
				idx[d]++
				if idx[d] < x.shape[d] {
					break
				}
				idx[d] = 0
			}
		}
		return []*value{out}, nil
	}, nil
}
