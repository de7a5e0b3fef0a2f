package attack

import (
	"context"
	"math"
	"math/rand/v2"
)

// hsj is HopSkipJump on one instance: a decision-based walk along the
// boundary between the label's region and the rest.
type hsj struct {
	o    *oracle
	cfg  Config
	rng  *rand.Rand
	idx  int
	x    []float64
	y    int
	d    int
	span float64 // scale of the input domain, for thresholds
}

// hopSkipJump attacks each input in turn.
func hopSkipJump(ctx context.Context, o *oracle, cfg Config, xs [][]float64, ys, pred []int, rng *rand.Rand) ([][]float64, error) {
	out := make([][]float64, len(xs))
	for i, x := range xs {
		if pred[i] != ys[i] { // already misclassified: nothing to do
			out[i] = append([]float64(nil), x...)
			continue
		}
		h := &hsj{o: o, cfg: cfg, rng: rng, idx: i, x: x, y: ys[i], d: len(x)}
		h.span = cfg.ClipMax - cfg.ClipMin
		if math.IsInf(h.span, 0) {
			h.span = 1 + linf(x, make([]float64, len(x)))
		}
		adv, err := h.run(ctx)
		if err != nil {
			return nil, err
		}
		out[i] = adv
	}
	return out, nil
}

// adversarial asks whether each point is classified other than y.
func (h *hsj) adversarial(ctx context.Context, pts [][]float64) ([]bool, error) {
	who := make([]int, len(pts))
	for k := range who {
		who[k] = h.idx
	}
	c, err := h.o.classes(ctx, pts, who)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(c))
	for k, v := range c {
		out[k] = v != h.y
	}
	return out, nil
}

func (h *hsj) dist(p []float64) float64 {
	if h.cfg.Norm == NormL2 {
		return l2(p, h.x)
	}
	return linf(p, h.x)
}

func (h *hsj) clip(p []float64) {
	for i := range p {
		p[i] = min(max(p[i], h.cfg.ClipMin), h.cfg.ClipMax)
	}
}

func (h *hsj) run(ctx context.Context) ([]float64, error) {
	start, err := h.initial(ctx)
	if err != nil || start == nil {
		return append([]float64(nil), h.x...), err
	}
	// θ: the binary search's resolution, d^-3/2 (L2) or d^-2 (L∞) of the
	// domain, as in the paper.
	theta := h.span / (float64(h.d) * math.Sqrt(float64(h.d)))
	if h.cfg.Norm == NormInf {
		theta = h.span / float64(h.d*h.d)
	}
	xb, err := h.boundary(ctx, start, theta)
	if err != nil {
		return nil, err
	}
	dist := h.dist(xb)
	for t := 1; t <= h.cfg.MaxIter && dist > 0; t++ {
		delta := math.Sqrt(float64(h.d)) * theta * dist / h.span
		if h.cfg.Norm == NormInf {
			delta = float64(h.d) * theta * dist / h.span
		}
		delta = max(delta, 1e-9*h.span)
		n := min(int(float64(h.cfg.InitEval)*math.Sqrt(float64(t))), h.cfg.MaxEval)
		v, err := h.direction(ctx, xb, n, delta)
		if err != nil {
			return nil, err
		}
		if v == nil {
			break
		}
		// Geometric step search: halve the step until the point is
		// adversarial again.
		eps := dist / math.Sqrt(float64(t))
		var next []float64
		for k := 0; k < 30; k++ {
			p := make([]float64, h.d)
			for i := range p {
				p[i] = xb[i] + eps*v[i]
			}
			h.clip(p)
			ok, err := h.adversarial(ctx, [][]float64{p})
			if err != nil {
				return nil, err
			}
			if ok[0] {
				next = p
				break
			}
			eps /= 2
		}
		if next == nil {
			break
		}
		nb, err := h.boundary(ctx, next, theta)
		if err != nil {
			return nil, err
		}
		if d := h.dist(nb); d < dist {
			xb, dist = nb, d
		}
	}
	if h.cfg.Eps > 0 && dist > h.cfg.Eps {
		return append([]float64(nil), h.x...), nil // no example inside the ball
	}
	project(xb, h.x, h.cfg.Norm, 0, h.cfg.ClipMin, h.cfg.ClipMax)
	return xb, nil
}

// initial finds an adversarial starting point: random points of the
// domain (uniform when clip values bound it, else Gaussian around the
// input at growing scales), the nearest adversarial one of the first
// batch that has any. nil when init_size points find none.
func (h *hsj) initial(ctx context.Context) ([]float64, error) {
	bounded := !math.IsInf(h.cfg.ClipMin, 0) && !math.IsInf(h.cfg.ClipMax, 0)
	scale := 0.1 * h.span
	for tried := 0; tried < h.cfg.InitSize; {
		n := min(h.cfg.BatchSize, h.cfg.InitSize-tried)
		pts := make([][]float64, n)
		for k := range pts {
			p := make([]float64, h.d)
			for i := range p {
				if bounded {
					p[i] = h.cfg.ClipMin + h.rng.Float64()*(h.cfg.ClipMax-h.cfg.ClipMin)
				} else {
					p[i] = h.x[i] + h.rng.NormFloat64()*scale
				}
			}
			pts[k] = p
		}
		ok, err := h.adversarial(ctx, pts)
		if err != nil {
			return nil, err
		}
		var best []float64
		for k, a := range ok {
			if a && (best == nil || h.dist(pts[k]) < h.dist(best)) {
				best = pts[k]
			}
		}
		if best != nil {
			return best, nil
		}
		tried += n
		scale *= 2
	}
	return nil, nil
}

// boundary binary-searches the segment (L2) or the shrinking box (L∞)
// between the input and adv for the adversarial point closest to the
// input, to resolution theta.
func (h *hsj) boundary(ctx context.Context, adv []float64, theta float64) ([]float64, error) {
	full := h.dist(adv)
	at := func(a float64) []float64 {
		p := make([]float64, h.d)
		for i := range p {
			if h.cfg.Norm == NormL2 {
				p[i] = h.x[i] + a*(adv[i]-h.x[i])
			} else {
				r := a * full
				p[i] = min(max(adv[i], h.x[i]-r), h.x[i]+r)
			}
		}
		return p
	}
	lo, hi := 0.0, 1.0
	for k := 0; k < 60 && (hi-lo)*full > theta; k++ {
		mid := (lo + hi) / 2
		ok, err := h.adversarial(ctx, [][]float64{at(mid)})
		if err != nil {
			return nil, err
		}
		if ok[0] {
			hi = mid
		} else {
			lo = mid
		}
	}
	if hi == 1 {
		return adv, nil
	}
	return at(hi), nil
}

// direction estimates the gradient of "is adversarial" at the boundary
// point xb from n random probes at radius delta (Monte Carlo with the
// mean as baseline), returned as a unit L2 vector, or its sign for L∞.
// nil when every probe is clipped away.
func (h *hsj) direction(ctx context.Context, xb []float64, n int, delta float64) ([]float64, error) {
	us := make([][]float64, n)
	pts := make([][]float64, n)
	for k := range us {
		u := make([]float64, h.d)
		var nu float64
		for i := range u {
			if h.cfg.Norm == NormL2 {
				u[i] = h.rng.NormFloat64()
			} else {
				u[i] = 2*h.rng.Float64() - 1
			}
			nu += u[i] * u[i]
		}
		nu = math.Sqrt(nu)
		p := make([]float64, h.d)
		for i := range u {
			p[i] = xb[i] + delta*u[i]/nu
		}
		h.clip(p)
		for i := range u { // the direction actually probed, after clipping
			u[i] = (p[i] - xb[i]) / delta
		}
		us[k], pts[k] = u, p
	}
	ok, err := h.adversarial(ctx, pts)
	if err != nil {
		return nil, err
	}
	phi := make([]float64, n)
	var mean float64
	for k, a := range ok {
		phi[k] = -1
		if a {
			phi[k] = 1
		}
		mean += phi[k] / float64(n)
	}
	if math.Abs(mean) == 1 {
		mean = 0 // all probes agree: no baseline to subtract
	}
	g := make([]float64, h.d)
	for k, u := range us {
		for i := range g {
			g[i] += (phi[k] - mean) * u[i]
		}
	}
	var ng float64
	for _, v := range g {
		ng += v * v
	}
	if ng == 0 {
		return nil, nil
	}
	ng = math.Sqrt(ng)
	for i := range g {
		if h.cfg.Norm == NormInf {
			g[i] = math.Copysign(1, g[i])
			if g[i] == 0 {
				g[i] = 0
			}
		} else {
			g[i] /= ng
		}
	}
	return g, nil
}
