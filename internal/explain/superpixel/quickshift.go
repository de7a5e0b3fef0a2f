package superpixel

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// QuickshiftConfig holds scikit-image quickshift's parameters. Zero
// values take the ones KServe's AIX explainer passes (kernel_size 1,
// max_dist 200, ratio 0.2), not scikit-image's own (5, 10, 1).
type QuickshiftConfig struct {
	KernelSize float64 // width of the Gaussian density kernel (1)
	MaxDist    float64 // links longer than this start a new segment (200)
	Ratio      float64 // weight of colour against space, in (0, 1] (0.2)
	Sigma      float64 // Gaussian smoothing before segmenting (0: none)
	NoLab      bool    // keep a 3-channel image's values rather than CIELAB
	Seed       uint64  // of the noise that breaks density ties
}

// Defaults fills zero fields.
func (c QuickshiftConfig) Defaults() QuickshiftConfig {
	if c.KernelSize == 0 {
		c.KernelSize = 1
	}
	if c.MaxDist == 0 {
		c.MaxDist = 200
	}
	if c.Ratio == 0 {
		c.Ratio = 0.2
	}
	return c
}

// Validate names the first field out of range.
func (c QuickshiftConfig) Validate() error {
	switch {
	case !(c.KernelSize > 0 && c.KernelSize <= 20):
		return fmt.Errorf("kernel_size %v not in (0, 20]", c.KernelSize)
	case !(c.MaxDist > 0) || math.IsInf(c.MaxDist, 0):
		return fmt.Errorf("max_dist %v must be positive", c.MaxDist)
	case !(c.Ratio > 0 && c.Ratio <= 1):
		return fmt.Errorf("ratio %v not in (0, 1]", c.Ratio)
	case c.Sigma < 0 || c.Sigma > 100 || math.IsNaN(c.Sigma):
		return fmt.Errorf("sigma %v not in [0, 100]", c.Sigma)
	}
	return nil
}

// Quickshift segments im by quick shift mode seeking (Vedaldi and
// Soatto), as scikit-image's quickshift: each pixel's density is the sum
// of exp(-d²/(2·KernelSize²)) over the pixels within 3·KernelSize, d² =
// |Ratio·colour difference|² + |position difference|²; each pixel links
// to the nearest pixel of higher density in that window, unless it is
// farther than MaxDist; the trees of links are the segments. Segments
// need not be 4-connected (links may jump).
func Quickshift(im Image, cfg QuickshiftConfig) (*Segments, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := im.Validate(); err != nil {
		return nil, err
	}
	work := im
	if work.C == 3 && !cfg.NoLab {
		work = toLab(work)
	}
	if cfg.Sigma > 0 {
		work = blur(work, cfg.Sigma)
	}
	h, w, c := work.H, work.W, work.C
	pix := make([]float64, len(work.Pix))
	for i, v := range work.Pix {
		pix[i] = v * cfg.Ratio
	}
	kw := int(math.Ceil(3 * cfg.KernelSize))
	inv := -0.5 / (cfg.KernelSize * cfg.KernelSize)
	dist := func(p, q int) float64 {
		dy, dx := float64(p/w-q/w), float64(p%w-q%w)
		d := dy*dy + dx*dx
		for ch := range c {
			e := pix[p*c+ch] - pix[q*c+ch]
			d += e * e
		}
		return d
	}
	window := func(p int, fn func(q int)) {
		y, x := p/w, p%w
		for yy := max(0, y-kw); yy < min(h, y+kw+1); yy++ {
			for xx := max(0, x-kw); xx < min(w, x+kw+1); xx++ {
				fn(yy*w + xx)
			}
		}
	}
	density := make([]float64, h*w)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x95))
	for p := range density {
		window(p, func(q int) { density[p] += math.Exp(dist(p, q) * inv) })
		density[p] += rng.NormFloat64() * 1e-5 // breaks ties, as scikit-image does
	}
	parent := make([]int, h*w)
	maxSq := cfg.MaxDist * cfg.MaxDist
	for p := range parent {
		parent[p] = p
		closest := math.Inf(1)
		window(p, func(q int) {
			if density[q] > density[p] {
				if d := dist(p, q); d < closest {
					closest, parent[p] = d, q
				}
			}
		})
		if closest > maxSq {
			parent[p] = p
		}
	}
	// Links go to strictly higher densities, so following them ends.
	seg := &Segments{H: h, W: w, Labels: make([]int32, h*w)}
	number := map[int]int32{}
	for p := range parent {
		r := p
		for parent[r] != r {
			r = parent[r]
		}
		parent[p] = r
		k, ok := number[r]
		if !ok {
			k = int32(len(number))
			number[r] = k
		}
		seg.Labels[p] = k
	}
	seg.N = len(number)
	return seg, nil
}
