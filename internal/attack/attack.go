package attack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
)

// ErrPredictor wraps a failed or malformed predictor call.
var ErrPredictor = errors.New("predictor failed")

// Classifier is the model as a black box. Predict returns one row of
// outputs per input: class scores (probabilities or logits), or a single
// number (a class label when whole, else the probability of class 1). Each
// input is flat, row-major in the shape the caller gave Run. Predict must
// not keep inputs after it returns; it is called from one goroutine at a
// time per Run.
type Classifier interface {
	Predict(ctx context.Context, inputs [][]float64) ([][]float64, error)
}

// Result is one instance's outcome.
type Result struct {
	// Adversarial is the example returned: inside the norm ball of the
	// input and within the clip values. When the attack failed it is the
	// best point found (SquareAttack) or the input itself (HopSkipJump).
	Adversarial []float64
	// Prediction is the predictor's class for the input, AdvPrediction
	// its class for Adversarial (asked after the attack, not remembered).
	Prediction, AdvPrediction int
	// Success: AdvPrediction differs from the label.
	Success bool
	// Queries counts the rows sent to the predictor for this instance,
	// the two verification rows included.
	Queries int
	// L2 and LInf are the distances of Adversarial from the input.
	L2, LInf float64
}

// Run attacks each input (flat, all of shape) away from its label; a
// negative label means "the predictor's own class for the input", as ART
// does when no labels are given.
func Run(ctx context.Context, clf Classifier, cfg Config, shape []int, inputs [][]float64, labels []int, log *slog.Logger) ([]Result, error) {
	if len(inputs) != len(labels) {
		return nil, fmt.Errorf("attack: %d inputs, %d labels", len(inputs), len(labels))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for i, x := range inputs {
		for j, v := range x {
			if math.IsNaN(v) || v < cfg.ClipMin || v > cfg.ClipMax {
				return nil, fmt.Errorf("%w: instance %d feature %d is %v, outside the clip values [%v, %v]", ErrBadRequest, i, j, v, cfg.ClipMin, cfg.ClipMax)
			}
		}
	}
	o := &oracle{clf: clf, cfg: cfg, queries: make([]int, len(inputs))}
	orig := make([]int, len(inputs))
	for i := range inputs {
		orig[i] = i
	}
	pred, err := o.classes(ctx, inputs, orig)
	if err != nil {
		return nil, err
	}
	ys := make([]int, len(labels))
	for i, y := range labels {
		ys[i] = y
		if y < 0 {
			ys[i] = pred[i]
		}
		if o.width > 0 && ys[i] >= o.width {
			return nil, fmt.Errorf("%w: label %d of instance %d: the predictor has %d classes", ErrBadRequest, ys[i], i, o.width)
		}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	var adv [][]float64
	switch cfg.Type {
	case TypeSquareAttack:
		adv, err = squareAttack(ctx, o, cfg, newLayout(shape, cfg.ChannelsFirst), inputs, ys, pred, rng)
	case TypeHopSkipJump:
		adv, err = hopSkipJump(ctx, o, cfg, inputs, ys, pred, rng)
	default:
		err = fmt.Errorf("%w: type %q", ErrConfig, cfg.Type)
	}
	if err != nil {
		return nil, err
	}
	advPred, err := o.classes(ctx, adv, orig)
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(inputs))
	for i := range inputs {
		r := Result{Adversarial: adv[i], Prediction: pred[i], AdvPrediction: advPred[i], Success: advPred[i] != ys[i], Queries: o.queries[i]}
		r.L2, r.LInf = l2(adv[i], inputs[i]), linf(adv[i], inputs[i])
		out[i] = r
		if cfg.Verbose {
			log.Info("attack done", "type", cfg.Type, "instance", i, "success", r.Success, "queries", r.Queries, "l2", r.L2, "linf", r.LInf)
		}
	}
	return out, nil
}

// ErrBadRequest marks an attack request that cannot be served (400).
var ErrBadRequest = errors.New("invalid attack request")

// oracle wraps the classifier: it splits calls into batches, turns outputs
// into scores, and counts queries per instance.
type oracle struct {
	clf     Classifier
	cfg     Config
	width   int // classes, once known
	queries []int
}

// scores asks for inputs, which belong to instances who[i], and returns
// one score vector per input.
func (o *oracle) scores(ctx context.Context, inputs [][]float64, who []int) ([][]float64, error) {
	out := make([][]float64, 0, len(inputs))
	for start := 0; start < len(inputs); start += o.cfg.BatchSize {
		end := min(start+o.cfg.BatchSize, len(inputs))
		rows, err := o.clf.Predict(ctx, inputs[start:end])
		if err != nil {
			return nil, err
		}
		if len(rows) != end-start {
			return nil, fmt.Errorf("%w: %d outputs for %d inputs", ErrPredictor, len(rows), end-start)
		}
		for k, r := range rows {
			s, err := o.toScores(r)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
			o.queries[who[start+k]]++
		}
	}
	return out, nil
}

func (o *oracle) classes(ctx context.Context, inputs [][]float64, who []int) ([]int, error) {
	s, err := o.scores(ctx, inputs, who)
	if err != nil {
		return nil, err
	}
	c := make([]int, len(s))
	for i, r := range s {
		c[i] = argmax(r)
	}
	return c, nil
}

// toScores reads one output row: several numbers are scores; one whole
// number is a class (one-hot over nb_classes); one fraction is the
// probability of class 1.
func (o *oracle) toScores(r []float64) ([]float64, error) {
	for _, v := range r {
		if math.IsNaN(v) {
			return nil, fmt.Errorf("%w: output is NaN", ErrPredictor)
		}
	}
	var s []float64
	switch {
	case len(r) == 0:
		return nil, fmt.Errorf("%w: empty output", ErrPredictor)
	case len(r) > 1:
		s = r
	case r[0] == math.Trunc(r[0]):
		n := max(o.cfg.NbClasses, 2)
		if r[0] < 0 || int(r[0]) >= n {
			return nil, fmt.Errorf("%w: class %v outside [0, %d) (set nb_classes)", ErrPredictor, r[0], n)
		}
		s = make([]float64, n)
		s[int(r[0])] = 1
	default:
		s = []float64{1 - r[0], r[0]}
	}
	if o.cfg.NbClasses > 0 && len(s) != o.cfg.NbClasses {
		return nil, fmt.Errorf("%w: %d scores per instance, nb_classes is %d", ErrPredictor, len(s), o.cfg.NbClasses)
	}
	if o.width == 0 {
		o.width = len(s)
	} else if len(s) != o.width {
		return nil, fmt.Errorf("%w: %d scores per instance, earlier %d", ErrPredictor, len(s), o.width)
	}
	return s, nil
}

func argmax(s []float64) int {
	best := 0
	for k, v := range s {
		if v > s[best] {
			best = k
		}
	}
	return best
}

// margin is the score of y minus the best other score: negative once the
// class is no longer y (ties aside).
func margin(s []float64, y int) float64 {
	other := math.Inf(-1)
	for k, v := range s {
		if k != y && v > other {
			other = v
		}
	}
	return s[y] - other
}

func l2(a, b []float64) float64 {
	var s float64
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return math.Sqrt(s)
}

func linf(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// project moves p into the norm ball of radius eps around x (eps ≤ 0:
// no ball) and into [lo, hi], in place, so that the distance computed by
// l2 or linf never exceeds eps, rounding included.
func project(p, x []float64, n Norm, eps, lo, hi float64) {
	if eps > 0 {
		switch n {
		case NormInf:
			for i := range p {
				a, b := x[i]-eps, x[i]+eps
				for x[i]-a > eps {
					a = math.Nextafter(a, x[i])
				}
				for b-x[i] > eps {
					b = math.Nextafter(b, x[i])
				}
				p[i] = min(max(p[i], a), b)
			}
		case NormL2:
			for k := 0; k < 60 && l2(p, x) > eps; k++ {
				f := eps / l2(p, x) * (1 - 1e-12*float64(k+1))
				for i := range p {
					p[i] = x[i] + (p[i]-x[i])*f
				}
			}
		}
	}
	for i := range p {
		p[i] = min(max(p[i], lo), hi)
	}
}
