package onnx

import (
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime"
)

// matmul2 computes c = op(a) × op(b) for one m×k by k×n product, where
// op transposes when asked. c must be zeroed and hold m*n elements.
func matmul2[T float32 | float64](c, a, b []T, m, k, n int, transA, transB bool) {
	switch {
	case !transA && !transB:
		for i := range m {
			crow := c[i*n : (i+1)*n]
			for p := range k {
				aip := a[i*k+p]
				if aip == 0 {
					continue
				}
				brow := b[p*n : (p+1)*n]
				for j, bv := range brow {
					crow[j] += aip * bv
				}
			}
		}
	case !transA && transB:
		for i := range m {
			arow := a[i*k : (i+1)*k]
			crow := c[i*n : (i+1)*n]
			j := 0
			// Four output columns at a time: each element of the row
			// is loaded once for four independent accumulators.
			for ; j+4 <= n; j += 4 {
				b0 := b[j*k : (j+1)*k][:len(arow)]
				b1 := b[(j+1)*k : (j+2)*k][:len(arow)]
				b2 := b[(j+2)*k : (j+3)*k][:len(arow)]
				b3 := b[(j+3)*k : (j+4)*k][:len(arow)]
				var s0, s1, s2, s3 T
				for p, av := range arow {
					s0 += av * b0[p]
					s1 += av * b1[p]
					s2 += av * b2[p]
					s3 += av * b3[p]
				}
				crow[j], crow[j+1], crow[j+2], crow[j+3] = s0, s1, s2, s3
			}
			for ; j < n; j++ {
				crow[j] = dot(arow, b[j*k:(j+1)*k])
			}
		}
	default:
		for i := range m {
			for j := range n {
				var s T
				for p := range k {
					av := a[p*m+i]
					var bv T
					if transB {
						bv = b[j*k+p]
					} else {
						bv = b[p*n+j]
					}
					s += av * bv
				}
				c[i*n+j] = s
			}
		}
	}
}

// dot is an inner product with four accumulators, which lets the compiler
// keep them in registers and pipeline the multiplies.
func dot[T float32 | float64](x, y []T) T {
	y = y[:len(x)]
	var s0, s1, s2, s3 T
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func buildMatMul(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(2, 2); err != nil {
		return nil, err
	}
	if err := c.wantOutputs(1); err != nil {
		return nil, err
	}
	return func(rb *runBudget, in []*value) ([]*value, error) {
		return matmul(rb, in[0], in[1])
	}, nil
}

func matmul(rb *runBudget, a, b *value) ([]*value, error) {
	if a.dt != b.dt || (a.dt != tFloat && a.dt != tDouble) {
		return nil, fmt.Errorf("%w: MatMul of %s and %s; want two FLOAT or two DOUBLE tensors", runtime.ErrInvalidInput, a.dt, b.dt)
	}
	if len(a.shape) == 0 || len(b.shape) == 0 {
		return nil, fmt.Errorf("%w: MatMul of a scalar", runtime.ErrInvalidInput)
	}
	as, bs := a.shape, b.shape
	dropM, dropN := len(as) == 1, len(bs) == 1
	if dropM {
		as = []int{1, as[0]}
	}
	if dropN {
		bs = []int{bs[0], 1}
	}
	m, k := as[len(as)-2], as[len(as)-1]
	k2, n := bs[len(bs)-2], bs[len(bs)-1]
	if k != k2 {
		return nil, fmt.Errorf("%w: MatMul shapes %v and %v: inner dimensions %d and %d differ", runtime.ErrInvalidInput, a.shape, b.shape, k, k2)
	}
	batch, err := broadcastShape(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, err
	}
	shape := append(append([]int{}, batch...), m, n)
	out, err := rb.newValue(a.dt, shape)
	if err != nil {
		return nil, err
	}
	nb, _ := numel(batch)
	sa := broadcastStrides(as[:len(as)-2], batch)
	sb := broadcastStrides(bs[:len(bs)-2], batch)
	idx := make([]int, len(batch))
	for bi := range nb {
		ia, ib := 0, 0
		for d, x := range idx {
			ia += x * sa[d]
			ib += x * sb[d]
		}
		if a.dt == tFloat {
			matmul2(out.f32[bi*m*n:(bi+1)*m*n], a.f32[ia*m*k:(ia+1)*m*k], b.f32[ib*k*n:(ib+1)*k*n], m, k, n, false, false)
		} else {
			matmul2(out.f64[bi*m*n:(bi+1)*m*n], a.f64[ia*m*k:(ia+1)*m*k], b.f64[ib*k*n:(ib+1)*k*n], m, k, n, false, false)
		}
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < batch[d] {
				break
			}
			idx[d] = 0
		}
	}
	// Drop the dimensions a 1-D operand added.
	switch {
	case dropM && dropN:
		out.shape = shape[:len(shape)-2]
	case dropM:
		out.shape = append(shape[:len(shape)-2], n)
	case dropN:
		out.shape = shape[:len(shape)-1]
	}
	return []*value{out}, nil
}

func buildGemm(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(2, 3); err != nil {
		return nil, err
	}
	if err := c.wantOutputs(1); err != nil {
		return nil, err
	}
	if c.version < 7 && c.int("broadcast", 1) == 0 {
		return nil, fmt.Errorf("%w: Gemm without broadcast (opset %d)", runtime.ErrUnsupported, c.version)
	}
	alpha, beta := c.float("alpha", 1), c.float("beta", 1)
	transA, transB := c.int("transA", 0) != 0, c.int("transB", 0) != 0
	return func(rb *runBudget, in []*value) ([]*value, error) {
		a, b := in[0], in[1]
		var cv *value
		if len(in) > 2 {
			cv = in[2]
		}
		if a.dt != b.dt || (a.dt != tFloat && a.dt != tDouble) || (cv != nil && cv.dt != a.dt) {
			return nil, fmt.Errorf("%w: Gemm operands must all be FLOAT or all DOUBLE, got %s and %s", runtime.ErrInvalidInput, a.dt, b.dt)
		}
		if len(a.shape) != 2 || len(b.shape) != 2 {
			return nil, fmt.Errorf("%w: Gemm needs 2-D operands, got shapes %v and %v", runtime.ErrInvalidInput, a.shape, b.shape)
		}
		m, k := a.shape[0], a.shape[1]
		if transA {
			m, k = k, m
		}
		k2, n := b.shape[0], b.shape[1]
		if transB {
			k2, n = n, k2
		}
		if k != k2 {
			return nil, fmt.Errorf("%w: Gemm shapes %v and %v (transA=%v, transB=%v) do not multiply", runtime.ErrInvalidInput, a.shape, b.shape, transA, transB)
		}
		shape := []int{m, n}
		if cv != nil {
			bs, err := broadcastShape(shape, cv.shape)
			if err != nil || len(cv.shape) > 2 || bs[0] != m || bs[1] != n {
				return nil, fmt.Errorf("%w: Gemm bias of shape %v does not broadcast to %v", runtime.ErrInvalidInput, cv.shape, shape)
			}
		}
		out, err := rb.newValue(a.dt, shape)
		if err != nil {
			return nil, err
		}
		if a.dt == tFloat {
			gemm(out.f32, a.f32, b.f32, cv, m, k, n, transA, transB, alpha, beta, func(v *value) []float32 { return v.f32 })
		} else {
			gemm(out.f64, a.f64, b.f64, cv, m, k, n, transA, transB, alpha, beta, func(v *value) []float64 { return v.f64 })
		}
		return []*value{out}, nil
	}, nil
}

func gemm[T float32 | float64](out, a, b []T, cv *value, m, k, n int, transA, transB bool, alpha, beta float32, data func(*value) []T) {
	matmul2(out, a, b, m, k, n, transA, transB)
	if alpha != 1 {
		for i := range out {
			out[i] *= T(alpha)
		}
	}
	if cv == nil || beta == 0 {
		return
	}
	cd := data(cv)
	// C broadcasts to [m, n]: a scalar, a row [n] or [1, n], a column [m, 1], or the full matrix.
	var rs, cs int // strides of C along rows and columns
	switch len(cv.shape) {
	case 0:
	case 1:
		if cv.shape[0] == n {
			cs = 1
		}
	default:
		if cv.shape[0] == m && m != 1 {
			rs = cv.shape[1]
		}
		if cv.shape[1] == n && n != 1 {
			cs = 1
		}
	}
	bt := T(beta)
	for i := range m {
		row := out[i*n : (i+1)*n]
		for j := range row {
			row[j] += bt * cd[i*rs+j*cs]
		}
	}
}
