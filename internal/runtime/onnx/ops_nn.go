package onnx

import (
	"fmt"
	"math"

	"github.com/ferryserve/ferry/internal/runtime"
)

// window holds the spatial attributes shared by Conv and the pools, for one
// or two spatial dimensions (1-D is handled as 2-D with height 1).
type window struct {
	autoPad   string
	kernel    []int64 // from the attribute; nil when taken from the weights
	strides   []int64
	dilations []int64
	pads      []int64
	ceil      bool
}

func readWindow(c *nodeCtx) (window, error) {
	w := window{
		autoPad:   c.str("auto_pad", "NOTSET"),
		kernel:    c.ints("kernel_shape"),
		strides:   c.ints("strides"),
		dilations: c.ints("dilations"),
		pads:      c.ints("pads"),
		ceil:      c.int("ceil_mode", 0) != 0,
	}
	switch w.autoPad {
	case "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER":
	default:
		return w, fmt.Errorf("%w: auto_pad %q", runtime.ErrCorruptModel, w.autoPad)
	}
	for _, list := range [][]int64{w.kernel, w.strides, w.dilations, w.pads} {
		if len(list) > 4 {
			return w, fmt.Errorf("%w: only 1-D and 2-D windows are supported", runtime.ErrUnsupported)
		}
		for _, x := range list {
			if x < 0 || x > 1<<16 {
				return w, fmt.Errorf("%w: window attribute value %d", runtime.ErrCorruptModel, x)
			}
		}
	}
	for _, list := range [][]int64{w.strides, w.dilations, w.kernel} {
		for _, x := range list {
			if x == 0 {
				return w, fmt.Errorf("%w: zero kernel, stride or dilation", runtime.ErrCorruptModel)
			}
		}
	}
	return w, nil
}

// geometry is one resolved 2-D window over an input.
type geometry struct {
	inH, inW   int
	kH, kW     int
	sH, sW     int
	dH, dW     int
	padT, padL int
	padB, padR int
	outH, outW int
}

// resolve fixes the geometry for a spatial input shape (1 or 2 dims) and a
// kernel shape.
func (w window) resolve(spatial []int, kernel []int) (geometry, error) {
	nd := len(spatial)
	if nd != 1 && nd != 2 {
		return geometry{}, fmt.Errorf("%w: %d spatial dimensions; only 1-D and 2-D are supported", runtime.ErrUnsupported, nd)
	}
	if len(kernel) != nd {
		return geometry{}, fmt.Errorf("%w: kernel rank %d for %d spatial dimensions", runtime.ErrInvalidInput, len(kernel), nd)
	}
	at := func(list []int64, i int, def int) (int, error) {
		if list == nil {
			return def, nil
		}
		if len(list) <= i {
			return 0, fmt.Errorf("%w: window attribute %v too short for %d spatial dimensions", runtime.ErrInvalidInput, list, nd)
		}
		return int(list[i]), nil
	}
	// promote 1-D to 2-D with a unit height
	in := []int{1, 0}
	k := []int{1, 0}
	var s, d, pb, pe [2]int
	s[0], d[0] = 1, 1
	off := 2 - nd
	for i := range nd {
		j := i + off
		in[j], k[j] = spatial[i], kernel[i]
		var err error
		if s[j], err = at(w.strides, i, 1); err != nil {
			return geometry{}, err
		}
		if d[j], err = at(w.dilations, i, 1); err != nil {
			return geometry{}, err
		}
		if w.pads != nil {
			if len(w.pads) != 2*nd {
				return geometry{}, fmt.Errorf("%w: pads %v for %d spatial dimensions", runtime.ErrInvalidInput, w.pads, nd)
			}
			pb[j], pe[j] = int(w.pads[i]), int(w.pads[i+nd])
		}
	}
	g := geometry{inH: in[0], inW: in[1], kH: k[0], kW: k[1], sH: s[0], sW: s[1], dH: d[0], dW: d[1]}
	out := [2]int{}
	for j := range 2 {
		ext := (k[j]-1)*d[j] + 1
		switch w.autoPad {
		case "VALID":
			pb[j], pe[j] = 0, 0
			out[j] = (in[j]-ext)/s[j] + 1
			if in[j] < ext {
				out[j] = 0
			}
		case "SAME_UPPER", "SAME_LOWER":
			out[j] = (in[j] + s[j] - 1) / s[j]
			total := max(0, (out[j]-1)*s[j]+ext-in[j])
			if w.autoPad == "SAME_UPPER" {
				pb[j], pe[j] = total/2, total-total/2
			} else {
				pb[j], pe[j] = total-total/2, total/2
			}
		default:
			span := in[j] + pb[j] + pe[j] - ext
			if span < 0 {
				return geometry{}, fmt.Errorf("%w: input of size %d is smaller than the window %d", runtime.ErrInvalidInput, in[j], ext)
			}
			if w.ceil {
				out[j] = (span+s[j]-1)/s[j] + 1
				// the last window must start inside the input or its left padding
				if (out[j]-1)*s[j] >= in[j]+pb[j] {
					out[j]--
				}
			} else {
				out[j] = span/s[j] + 1
			}
		}
	}
	g.padT, g.padL, g.padB, g.padR = pb[0], pb[1], pe[0], pe[1]
	g.outH, g.outW = out[0], out[1]
	return g, nil
}

func outShape(x []int, channels int, g geometry) []int {
	if len(x) == 3 {
		return []int{x[0], channels, g.outW}
	}
	return []int{x[0], channels, g.outH, g.outW}
}

func buildConv(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(2, 3); err != nil {
		return nil, err
	}
	if err := c.wantOutputs(1); err != nil {
		return nil, err
	}
	win, err := readWindow(c)
	if err != nil {
		return nil, err
	}
	group := c.int("group", 1)
	if group < 1 || group > 1<<16 {
		return nil, fmt.Errorf("%w: group %d", runtime.ErrCorruptModel, group)
	}
	return func(rb *runBudget, in []*value) ([]*value, error) {
		x, w := in[0], in[1]
		var b *value
		if len(in) > 2 {
			b = in[2]
		}
		if x.dt != tFloat || w.dt != tFloat || (b != nil && b.dt != tFloat) {
			return nil, fmt.Errorf("%w: Conv takes FLOAT tensors", runtime.ErrInvalidInput)
		}
		if len(x.shape) < 3 || len(w.shape) != len(x.shape) {
			return nil, fmt.Errorf("%w: Conv input %v and weights %v", runtime.ErrInvalidInput, x.shape, w.shape)
		}
		grp := int(group)
		n, cin := x.shape[0], x.shape[1]
		m, cpg := w.shape[0], w.shape[1]
		if cin != cpg*grp || m%grp != 0 {
			return nil, fmt.Errorf("%w: Conv input has %d channels, weights %v with group %d", runtime.ErrInvalidInput, cin, w.shape, grp)
		}
		if b != nil && b.len() != m {
			return nil, fmt.Errorf("%w: Conv bias has %d elements for %d output channels", runtime.ErrInvalidInput, b.len(), m)
		}
		kernel := w.shape[2:]
		if win.kernel != nil {
			for i, k := range win.kernel {
				if i >= len(kernel) || int(k) != kernel[i] {
					return nil, fmt.Errorf("%w: kernel_shape %v does not match weights %v", runtime.ErrInvalidInput, win.kernel, w.shape)
				}
			}
		}
		g, err := win.resolve(x.shape[2:], kernel)
		if err != nil {
			return nil, err
		}
		out, err := rb.newValue(tFloat, outShape(x.shape, m, g))
		if err != nil {
			return nil, err
		}
		conv2d(out.f32, x.f32, w.f32, b, n, cin, m, grp, g)
		return []*value{out}, nil
	}, nil
}

// maxIm2col bounds the scratch matrix of the im2col path (in elements);
// larger convolutions use the direct loops, which need no scratch memory.
const maxIm2col = 1 << 22

func conv2d(out, x, w []float32, b *value, n, cin, m, grp int, g geometry) {
	cpg := cin / grp
	if k, p := cpg*g.kH*g.kW, g.outH*g.outW; k*p <= maxIm2col {
		conv2dIm2col(out, x, w, b, n, cin, m, grp, g, make([]float32, k*p))
		return
	}
	conv2dDirect(out, x, w, b, n, cin, m, grp, g)
}

// conv2dIm2col lays each image's receptive fields out as the columns of a
// [cpg·kH·kW, outH·outW] matrix, so each group's convolution becomes one
// matrix product with its weights, which reads memory sequentially.
func conv2dIm2col(out, x, w []float32, b *value, n, cin, m, grp int, g geometry, col []float32) {
	cpg, mpg := cin/grp, m/grp
	plane, oplane := g.inH*g.inW, g.outH*g.outW
	k := cpg * g.kH * g.kW
	for img := range n {
		for gi := range grp {
			for ic := range cpg {
				src := x[(img*cin+gi*cpg+ic)*plane : (img*cin+gi*cpg+ic+1)*plane]
				for kh := range g.kH {
					for kw := range g.kW {
						dst := col[((ic*g.kH+kh)*g.kW+kw)*oplane:][:oplane]
						for oh := range g.outH {
							h := oh*g.sH - g.padT + kh*g.dH
							row := dst[oh*g.outW : (oh+1)*g.outW]
							if h < 0 || h >= g.inH {
								clear(row)
								continue
							}
							for ow := range row {
								ww := ow*g.sW - g.padL + kw*g.dW
								if ww < 0 || ww >= g.inW {
									row[ow] = 0
								} else {
									row[ow] = src[h*g.inW+ww]
								}
							}
						}
					}
				}
			}
			o := out[(img*m+gi*mpg)*oplane : (img*m+(gi+1)*mpg)*oplane]
			matmul2(o, w[gi*mpg*k:(gi+1)*mpg*k], col, mpg, k, oplane, false, false)
			if b != nil {
				for oc := range mpg {
					bias := b.f32[gi*mpg+oc]
					for j := range o[oc*oplane : (oc+1)*oplane] {
						o[oc*oplane+j] += bias
					}
				}
			}
		}
	}
}

func conv2dDirect(out, x, w []float32, b *value, n, cin, m, grp int, g geometry) {
	cpg, mpg := cin/grp, m/grp
	plane := g.inH * g.inW
	oplane := g.outH * g.outW
	ksize := g.kH * g.kW
	for img := range n {
		for oc := range m {
			gi := oc / mpg
			var bias float32
			if b != nil {
				bias = b.f32[oc]
			}
			dst := out[(img*m+oc)*oplane : (img*m+oc+1)*oplane]
			for oh := range g.outH {
				for ow := range g.outW {
					sum := bias
					h0, w0 := oh*g.sH-g.padT, ow*g.sW-g.padL
					for ic := range cpg {
						src := x[(img*cin+gi*cpg+ic)*plane:]
						wk := w[(oc*cpg+ic)*ksize:]
						for kh := range g.kH {
							h := h0 + kh*g.dH
							if h < 0 || h >= g.inH {
								continue
							}
							for kw := range g.kW {
								ww := w0 + kw*g.dW
								if ww < 0 || ww >= g.inW {
									continue
								}
								sum += src[h*g.inW+ww] * wk[kh*g.kW+kw]
							}
						}
					}
					dst[oh*g.outW+ow] = sum
				}
			}
		}
	}
}

func buildPool(isMax bool) builder {
	return func(c *nodeCtx) (kernel, error) {
		if err := c.wantInputs(1, 1); err != nil {
			return nil, err
		}
		if err := c.wantOutputs(1); err != nil {
			return nil, err
		}
		win, err := readWindow(c)
		if err != nil {
			return nil, err
		}
		if win.kernel == nil {
			return nil, fmt.Errorf("%w: pooling without kernel_shape", runtime.ErrCorruptModel)
		}
		if c.int("storage_order", 0) != 0 {
			return nil, fmt.Errorf("%w: storage_order 1", runtime.ErrUnsupported)
		}
		if !isMax && win.dilations != nil {
			for _, d := range win.dilations {
				if d != 1 {
					return nil, fmt.Errorf("%w: AveragePool with dilations", runtime.ErrUnsupported)
				}
			}
		}
		includePad := c.int("count_include_pad", 0) != 0
		kernel := make([]int, len(win.kernel))
		for i, k := range win.kernel {
			kernel[i] = int(k)
		}
		return func(rb *runBudget, in []*value) ([]*value, error) {
			x := in[0]
			if x.dt != tFloat {
				return nil, fmt.Errorf("%w: pooling takes FLOAT tensors, got %s", runtime.ErrInvalidInput, x.dt)
			}
			if len(x.shape) < 3 {
				return nil, fmt.Errorf("%w: pooling input shape %v", runtime.ErrInvalidInput, x.shape)
			}
			g, err := win.resolve(x.shape[2:], kernel)
			if err != nil {
				return nil, err
			}
			out, err := rb.newValue(tFloat, outShape(x.shape, x.shape[1], g))
			if err != nil {
				return nil, err
			}
			pool2d(out.f32, x.f32, x.shape[0]*x.shape[1], g, isMax, includePad)
			return []*value{out}, nil
		}, nil
	}
}

func pool2d(out, x []float32, planes int, g geometry, isMax, includePad bool) {
	plane, oplane := g.inH*g.inW, g.outH*g.outW
	for p := range planes {
		src := x[p*plane : (p+1)*plane]
		dst := out[p*oplane : (p+1)*oplane]
		for oh := range g.outH {
			for ow := range g.outW {
				h0, w0 := oh*g.sH-g.padT, ow*g.sW-g.padL
				if isMax {
					m := float32(math.Inf(-1))
					for kh := range g.kH {
						h := h0 + kh*g.dH
						if h < 0 || h >= g.inH {
							continue
						}
						for kw := range g.kW {
							w := w0 + kw*g.dW
							if w < 0 || w >= g.inW {
								continue
							}
							if v := src[h*g.inW+w]; v > m || v != v {
								m = v
							}
						}
					}
					dst[oh*g.outW+ow] = m
					continue
				}
				// The padded extent counts toward the divisor only with
				// count_include_pad, and never beyond the end padding.
				h1, w1 := min(h0+g.kH, g.inH+g.padB), min(w0+g.kW, g.inW+g.padR)
				padded := (h1 - h0) * (w1 - w0)
				hs, ws, he, we := max(h0, 0), max(w0, 0), min(h1, g.inH), min(w1, g.inW)
				var sum float32
				for h := hs; h < he; h++ {
					for w := ws; w < we; w++ {
						sum += src[h*g.inW+w]
					}
				}
				count := (he - hs) * (we - ws)
				if includePad {
					count = padded
				}
				if count > 0 {
					dst[oh*g.outW+ow] = sum / float32(count)
				}
			}
		}
	}
}

func buildBatchNorm(c *nodeCtx) (kernel, error) {
	if err := c.wantInputs(5, 5); err != nil {
		return nil, err
	}
	if err := c.wantOutputs(1); err != nil {
		return nil, err
	}
	if c.int("training_mode", 0) != 0 {
		return nil, fmt.Errorf("%w: BatchNormalization in training mode", runtime.ErrUnsupported)
	}
	if c.version < 7 && c.int("spatial", 1) == 0 {
		return nil, fmt.Errorf("%w: BatchNormalization with spatial=0", runtime.ErrUnsupported)
	}
	eps := float64(c.float("epsilon", 1e-5))
	return func(rb *runBudget, in []*value) ([]*value, error) {
		x := in[0]
		if x.dt != tFloat || len(x.shape) < 2 {
			return nil, fmt.Errorf("%w: BatchNormalization takes a FLOAT tensor of rank ≥ 2, got %s %v", runtime.ErrInvalidInput, x.dt, x.shape)
		}
		ch := x.shape[1]
		var params [4][]float64
		for i := range params {
			p := in[i+1]
			if p == nil || p.len() != ch {
				return nil, fmt.Errorf("%w: BatchNormalization parameter %d does not have %d elements", runtime.ErrInvalidInput, i+1, ch)
			}
			params[i], _ = p.float64s()
		}
		scale, bias, mean, variance := params[0], params[1], params[2], params[3]
		out, _ := rb.newValue(tFloat, x.shape)
		inner, _ := numel(x.shape[2:])
		if inner == 0 {
			return []*value{out}, nil
		}
		for i := 0; i < len(x.f32); i += inner {
			cidx := (i / inner) % ch
			a := scale[cidx] / math.Sqrt(variance[cidx]+eps)
			b := bias[cidx] - mean[cidx]*a
			af, bf := float32(a), float32(b)
			for j := i; j < i+inner; j++ {
				out.f32[j] = x.f32[j]*af + bf
			}
		}
		return []*value{out}, nil
	}, nil
}
