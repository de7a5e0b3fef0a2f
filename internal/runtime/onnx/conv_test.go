package onnx

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestConvPathsAgree checks the im2col convolution against the direct
// loops (used for convolutions too large for im2col's scratch matrix)
// over strides, dilations, asymmetric pads and groups.
func TestConvPathsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tests := []struct {
		n, cin, m, grp, h, w int
		win                  window
		kh, kw               int
	}{
		{1, 3, 4, 1, 7, 6, window{autoPad: "NOTSET"}, 3, 3},
		{2, 4, 6, 2, 9, 9, window{autoPad: "NOTSET", strides: []int64{2, 1}, pads: []int64{1, 0, 2, 1}}, 3, 2},
		{1, 2, 2, 2, 8, 8, window{autoPad: "NOTSET", dilations: []int64{2, 2}, pads: []int64{2, 2, 2, 2}}, 3, 3},
		{1, 1, 3, 1, 5, 7, window{autoPad: "SAME_LOWER", strides: []int64{2, 2}}, 4, 4},
	}
	for i, tt := range tests {
		g, err := tt.win.resolve([]int{tt.h, tt.w}, []int{tt.kh, tt.kw})
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, tt.n*tt.cin*tt.h*tt.w)
		w := make([]float32, tt.m*(tt.cin/tt.grp)*tt.kh*tt.kw)
		bias := &value{dt: tFloat, shape: []int{tt.m}, f32: make([]float32, tt.m)}
		for _, s := range [][]float32{x, w, bias.f32} {
			for j := range s {
				s[j] = float32(r.NormFloat64())
			}
		}
		size := tt.n * tt.m * g.outH * g.outW
		direct, im2col := make([]float32, size), make([]float32, size)
		conv2dDirect(direct, x, w, bias, tt.n, tt.cin, tt.m, tt.grp, g)
		conv2dIm2col(im2col, x, w, bias, tt.n, tt.cin, tt.m, tt.grp, g, make([]float32, (tt.cin/tt.grp)*tt.kh*tt.kw*g.outH*g.outW))
		for j := range direct {
			if math.Abs(float64(direct[j]-im2col[j])) > 1e-4 {
				t.Fatalf("case %d: element %d: direct %g, im2col %g", i, j, direct[j], im2col[j])
			}
		}
	}
}
