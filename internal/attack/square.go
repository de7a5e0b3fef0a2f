package attack

import (
	"context"
	"math"
	"math/rand/v2"
)

// layout reads a flat input as an image for SquareAttack's squares: h×w
// pixels of c channels. A 1-D input (tabular) has no pixels; its "square"
// is a random subset of features.
type layout struct {
	h, w, c  int
	chFirst  bool
	tabular  bool
	features int
}

func newLayout(shape []int, channelsFirst bool) layout {
	n := 1
	for _, d := range shape {
		n *= d
	}
	switch len(shape) {
	case 2:
		return layout{h: shape[0], w: shape[1], c: 1, features: n}
	case 3:
		if channelsFirst {
			return layout{c: shape[0], h: shape[1], w: shape[2], chFirst: true, features: n}
		}
		return layout{h: shape[0], w: shape[1], c: shape[2], features: n}
	}
	return layout{tabular: true, features: n}
}

func (l layout) index(i, j, ch int) int {
	if l.chFirst {
		return (ch*l.h+i)*l.w + j
	}
	return (i*l.w+j)*l.c + ch
}

// pSchedule is the paper's schedule for the share of the input changed
// per step: p_init, halved at fixed fractions of the budget (rescaled to
// 10 000 iterations).
func pSchedule(pInit float64, it, maxIter int) float64 {
	i := int(float64(it) / float64(maxIter) * 10000)
	p := pInit
	for _, t := range []int{10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000} {
		if i > t {
			p /= 2
		}
	}
	return p
}

// squareState is one instance under attack.
type squareState struct {
	idx  int
	x    []float64
	y    int
	best []float64 // current point (x + delta, clipped)
	loss float64   // margin at best
	done bool      // adversarial
}

// squareAttack runs SquareAttack on all inputs together: each step sends
// one candidate per unfinished instance in one batch of calls.
func squareAttack(ctx context.Context, o *oracle, cfg Config, lay layout, xs [][]float64, ys, pred []int, rng *rand.Rand) ([][]float64, error) {
	st := make([]*squareState, len(xs))
	for i, x := range xs {
		st[i] = &squareState{idx: i, x: x, y: ys[i], best: append([]float64(nil), x...), done: pred[i] != ys[i]}
	}
	for restart := 0; restart < cfg.NbRestarts; restart++ {
		var live []*squareState
		for _, s := range st {
			if !s.done {
				live = append(live, s)
			}
		}
		if len(live) == 0 {
			break
		}
		cands := make([][]float64, len(live))
		for k, s := range live {
			cands[k] = squareInit(cfg, lay, s.x, rng)
		}
		if err := squareEval(ctx, o, live, cands, true); err != nil {
			return nil, err
		}
		for it := 0; it < cfg.MaxIter; it++ {
			live = live[:0]
			for _, s := range st {
				if !s.done {
					live = append(live, s)
				}
			}
			if len(live) == 0 {
				break
			}
			p := pSchedule(cfg.PInit, it, cfg.MaxIter)
			cands = cands[:0]
			for _, s := range live {
				cands = append(cands, squareStep(cfg, lay, s, p, rng))
			}
			if err := squareEval(ctx, o, live, cands, false); err != nil {
				return nil, err
			}
		}
	}
	out := make([][]float64, len(st))
	for i, s := range st {
		out[i] = s.best
	}
	return out, nil
}

// squareEval scores candidates and keeps each one that lowers its
// instance's margin (always, for the initial point of a restart).
func squareEval(ctx context.Context, o *oracle, live []*squareState, cands [][]float64, init bool) error {
	who := make([]int, len(live))
	for k, s := range live {
		who[k] = s.idx
	}
	scores, err := o.scores(ctx, cands, who)
	if err != nil {
		return err
	}
	for k, s := range live {
		m := margin(scores[k], s.y)
		if init || m < s.loss {
			s.best, s.loss = cands[k], m
			if argmax(scores[k]) != s.y {
				s.done = true
			}
		}
	}
	return nil
}

func sign(rng *rand.Rand) float64 {
	if rng.IntN(2) == 0 {
		return -1
	}
	return 1
}

// squareInit is a restart's first point. L∞: vertical stripes of ±eps
// (one sign per column and channel; per feature for tabular inputs). L2:
// a grid of pseudo-Gaussian blocks of random sign, scaled to norm eps.
func squareInit(cfg Config, lay layout, x []float64, rng *rand.Rand) []float64 {
	p := make([]float64, len(x))
	switch {
	case cfg.Norm == NormInf && lay.tabular:
		for i := range p {
			p[i] = x[i] + sign(rng)*cfg.Eps
		}
	case cfg.Norm == NormInf:
		for j := 0; j < lay.w; j++ {
			for ch := 0; ch < lay.c; ch++ {
				s := sign(rng) * cfg.Eps
				for i := 0; i < lay.h; i++ {
					k := lay.index(i, j, ch)
					p[k] = x[k] + s
				}
			}
		}
	case lay.tabular:
		for i := range p {
			p[i] = x[i] + sign(rng)
		}
		scaleTo(p, x, cfg.Eps)
	default:
		b := max(1, min(lay.h, lay.w)/5)
		for i0 := 0; i0 < lay.h; i0 += b {
			for j0 := 0; j0 < lay.w; j0 += b {
				bh, bw := min(b, lay.h-i0), min(b, lay.w-j0)
				pat := pseudoGaussian(bh, bw, rng)
				for ch := 0; ch < lay.c; ch++ {
					s := sign(rng)
					for i := 0; i < bh; i++ {
						for j := 0; j < bw; j++ {
							k := lay.index(i0+i, j0+j, ch)
							p[k] = x[k] + s*pat[i*bw+j]
						}
					}
				}
			}
		}
		scaleTo(p, x, cfg.Eps)
	}
	project(p, x, cfg.Norm, cfg.Eps, cfg.ClipMin, cfg.ClipMax)
	return p
}

// scaleTo rescales p - x to L2 norm r.
func scaleTo(p, x []float64, r float64) {
	n := l2(p, x)
	if n == 0 {
		return
	}
	for i := range p {
		p[i] = x[i] + (p[i]-x[i])*r/n
	}
}

// pseudoGaussian is an h×w bump: concentric rings whose weight grows
// towards the centre as Σ 1/(k+1)², with one half of the window negated
// at random (the paper's meta pseudo-Gaussian), normalised to L2 norm 1.
func pseudoGaussian(h, w int, rng *rand.Rand) []float64 {
	pat := make([]float64, h*w)
	ci, cj := float64(h-1)/2, float64(w-1)/2
	rings := int(math.Ceil(max(ci, cj))) + 1
	for i := 0; i < h; i++ {
		for j := 0; j < w; j++ {
			r := int(math.Ceil(max(math.Abs(float64(i)-ci), math.Abs(float64(j)-cj))))
			var v float64
			for k := r; k < rings; k++ {
				v += 1 / float64((k+1)*(k+1))
			}
			pat[i*w+j] = v
		}
	}
	if rng.IntN(2) == 0 { // split: one half of opposite sign
		vertical := rng.IntN(2) == 0
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				if (vertical && float64(j) > cj) || (!vertical && float64(i) > ci) {
					pat[i*w+j] = -pat[i*w+j]
				}
			}
		}
	}
	var n float64
	for _, v := range pat {
		n += v * v
	}
	n = math.Sqrt(n)
	for i := range pat {
		pat[i] /= n
	}
	return pat
}

// squareStep proposes one candidate for s with share p of the input
// changed.
func squareStep(cfg Config, lay layout, s *squareState, p float64, rng *rand.Rand) []float64 {
	c := append([]float64(nil), s.best...)
	if cfg.Norm == NormInf {
		// Resample a few times if the square would change nothing (all its
		// values already at the chosen corner).
		for try := 0; try < 10; try++ {
			changed := false
			for _, k := range window(lay, p, rng) {
				v := min(max(s.x[k.i]+k.sign*cfg.Eps, cfg.ClipMin), cfg.ClipMax)
				if math.Abs(v-c[k.i]) > 1e-12 {
					changed = true
				}
				c[k.i] = v
			}
			if changed {
				break
			}
		}
		project(c, s.x, cfg.Norm, cfg.Eps, cfg.ClipMin, cfg.ClipMax)
		return c
	}
	return squareStepL2(cfg, lay, s, c, p, rng)
}

// cell is one coordinate of a window and the sign proposed for it.
type cell struct {
	i    int
	sign float64
}

// window picks the coordinates of one random square (one sign per
// channel), or of a random feature subset (one sign each) for tabular
// inputs, covering about share p of the input.
func window(lay layout, p float64, rng *rand.Rand) []cell {
	if lay.tabular {
		k := min(max(1, int(math.Round(p*float64(lay.features)))), lay.features)
		out := make([]cell, 0, k)
		for _, i := range rng.Perm(lay.features)[:k] {
			out = append(out, cell{i, sign(rng)})
		}
		return out
	}
	sz := min(max(1, int(math.Round(math.Sqrt(p*float64(lay.h*lay.w))))), lay.h, lay.w)
	i0, j0 := rng.IntN(lay.h-sz+1), rng.IntN(lay.w-sz+1)
	out := make([]cell, 0, sz*sz*lay.c)
	for ch := 0; ch < lay.c; ch++ {
		sg := sign(rng)
		for i := i0; i < i0+sz; i++ {
			for j := j0; j < j0+sz; j++ {
				out = append(out, cell{lay.index(i, j, ch), sg})
			}
		}
	}
	return out
}

// squareStepL2 moves the perturbation's mass from a second window into
// the first, adds a pseudo-Gaussian bump of random sign there, and keeps
// the total within the ball (unused budget goes into the first window).
func squareStepL2(cfg Config, lay layout, s *squareState, c []float64, p float64, rng *rand.Rand) []float64 {
	d := make([]float64, len(c))
	var used float64
	for i := range c {
		d[i] = c[i] - s.x[i]
		used += d[i] * d[i]
	}
	w1, w2 := window(lay, p, rng), window(lay, p, rng)
	in1 := make(map[int]bool, len(w1))
	for _, k := range w1 {
		in1[k.i] = true
	}
	var e1, e2 float64
	for _, k := range w1 {
		e1 += d[k.i] * d[k.i]
	}
	for _, k := range w2 {
		if !in1[k.i] {
			e2 += d[k.i] * d[k.i]
			d[k.i] = 0
		}
	}
	budget := math.Sqrt(e1 + e2 + max(0, cfg.Eps*cfg.Eps-used))
	var bump []float64
	if !lay.tabular {
		sz := int(math.Round(math.Sqrt(float64(len(w1) / lay.c))))
		bump = pseudoGaussian(sz, sz, rng)
	}
	var n float64
	for m, k := range w1 {
		b := k.sign
		if bump != nil {
			b *= bump[m%len(bump)] * math.Sqrt(float64(len(bump)))
		}
		d[k.i] += b * budget / math.Sqrt(float64(len(w1)))
		n += d[k.i] * d[k.i]
	}
	if n > 0 {
		for _, k := range w1 {
			d[k.i] *= budget / math.Sqrt(n)
		}
	}
	for i := range c {
		c[i] = s.x[i] + d[i]
	}
	project(c, s.x, cfg.Norm, cfg.Eps, cfg.ClipMin, cfg.ClipMax)
	return c
}
