package anchor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// maxRows bounds the rows one explanation may send to the model, so a
// precision that hovers at the threshold cannot keep the search going.
const maxRows = 2_000_000

// epsStop is Alibi's tolerance when verifying that a candidate reaches
// the threshold: its lower bound must be above Threshold - epsStop and its
// mean at least Threshold.
const epsStop = 0.05

// Space is what the search perturbs: an instance with Features()
// features (tabular columns, the words of a text) and a way to draw
// samples in which the anchored features keep the instance's values.
type Space interface {
	Features() int
	// Sample draws n samples that keep the instance's anchored features
	// (sorted), labels them with the model and returns the labels and the
	// samples themselves (kept as covered examples).
	Sample(ctx context.Context, rng *rand.Rand, anchor []int, n int) ([]int, []any, error)
	// CoverageSample draws one sample with no anchor and reports, per
	// feature, whether it agrees with the instance: the coverage of an
	// anchor is the share of such samples that agree on all its features.
	CoverageSample(rng *rand.Rand) []bool
}

// Found is what Search returns: the anchor's features in the order they
// were added, its estimated precision and coverage, covered examples the
// model labels like the instance and otherwise, the rows the model was
// asked about, and whether the precision reached the threshold.
type Found struct {
	Features                  []int
	Precision, Coverage       float64
	CoveredTrue, CoveredFalse []any
	Samples                   int
	Reached                   bool
}

// Search runs the KL-LUCB beam search over sp for an instance the model
// labels label. cfg takes Alibi's defaults for zero fields.
func Search(ctx context.Context, sp Space, label int, cfg Config) (*Found, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &search{sp: sp, cfg: cfg, label: label, rng: rand.New(rand.NewPCG(cfg.Seed, 0xa4c4))}
	for range cfg.CoverageSamples {
		s.cov = append(s.cov, sp.CoverageSample(s.rng))
	}
	best, err := s.beam(ctx)
	if err != nil {
		return nil, err
	}
	res := &Found{Samples: s.rows}
	if best == nil {
		// The empty anchor: the model predicts the label almost everywhere.
		res.Precision, res.Coverage, res.Reached = 1, 1, true
		return res, nil
	}
	res.Features = best.added
	res.Precision = best.mean()
	res.Coverage = best.coverage
	res.CoveredTrue, res.CoveredFalse = best.cTrue, best.cFalse
	res.Reached = best.mean() >= cfg.Threshold
	return res, nil
}

// candidate is an anchor being estimated.
type candidate struct {
	features []int // sorted
	added    []int // in the order added
	n, pos   int
	coverage float64
	cTrue    []any
	cFalse   []any
}

func (c *candidate) mean() float64 { return float64(c.pos) / float64(max(c.n, 1)) }

// search is one explanation's state.
type search struct {
	sp    Space
	cfg   Config
	label int
	rng   *rand.Rand
	cov   [][]bool // coverage samples' agreement with the instance
	rows  int      // rows sent to the model
}

// tabular is the Space of one tabular instance.
type tabular struct {
	x    *Explainer
	row  []float64
	bins []int
}

func (t *tabular) Features() int { return len(t.row) }

func (t *tabular) Sample(ctx context.Context, rng *rand.Rand, anchor []int, n int) ([]int, []any, error) {
	rows := t.x.Sample(rng, t.row, anchor, n)
	labels, err := t.x.classify(ctx, rows)
	if err != nil {
		return nil, nil, err
	}
	ex := make([]any, len(rows))
	for i, r := range rows {
		ex[i] = r
	}
	return labels, ex, nil
}

// CoverageSample draws a training row: it agrees on the features whose
// bin (or category) is the instance's.
func (t *tabular) CoverageSample(rng *rand.Rand) []bool {
	b := t.x.bins[rng.IntN(len(t.x.data.Rows))]
	out := make([]bool, len(b))
	for f := range b {
		out[f] = b[f] == t.bins[f]
	}
	return out
}

// Explain finds an anchor for row.
func (x *Explainer) Explain(ctx context.Context, row []float64) (*Result, error) {
	m := len(x.data.FeatureNames)
	if len(row) != m {
		return nil, fmt.Errorf("instance has %d features, want %d", len(row), m)
	}
	labels, err := x.classify(ctx, [][]float64{row})
	if err != nil {
		return nil, err
	}
	if len(labels) != 1 {
		return nil, fmt.Errorf("model returned %d labels for 1 row", len(labels))
	}
	sp := &tabular{x: x, row: row, bins: x.discretize(row)}
	f, err := Search(ctx, sp, labels[0], x.cfg)
	if err != nil {
		return nil, err
	}
	res := &Result{Label: labels[0], Samples: f.Samples, Features: f.Features, Precision: f.Precision,
		Coverage: f.Coverage, Reached: f.Reached, CoveredTrue: floatRows(f.CoveredTrue), CoveredFalse: floatRows(f.CoveredFalse)}
	for _, ft := range f.Features {
		res.Anchor = append(res.Anchor, x.condition(ft, sp.bins[ft]))
	}
	return res, nil
}

func floatRows(ex []any) [][]float64 {
	if ex == nil {
		return nil
	}
	out := make([][]float64, len(ex))
	for i, e := range ex {
		out[i] = e.([]float64)
	}
	return out
}

// beam grows anchors one condition at a time, keeping BeamSize candidates
// per size chosen by KL-LUCB, and returns the verified anchor of best
// coverage (the first, with StopOnFirst), or the most precise candidate
// seen when none reaches the threshold.
func (s *search) beam(ctx context.Context) (*candidate, error) {
	cfg := s.cfg
	m := s.sp.Features()
	maxSize := m
	if cfg.MaxAnchorSize > 0 {
		maxSize = min(m, cfg.MaxAnchorSize)
	}
	// Does the empty anchor already hold?
	empty := &candidate{coverage: 1}
	if err := s.sample(ctx, empty, cfg.MinSamplesStart); err != nil {
		return nil, err
	}
	if empty.mean() >= cfg.Threshold {
		if ok, err := s.verify(ctx, empty); err != nil || ok {
			return nil, err
		}
	}
	beam := []*candidate{empty}
	var best, mostPrecise *candidate
	for size := 1; size <= maxSize; size++ {
		var cands []*candidate
		seen := map[string]bool{}
		for _, b := range beam {
			for f := range m {
				if slices.Contains(b.features, f) {
					continue
				}
				c := &candidate{features: append(slices.Clone(b.features), f), added: append(slices.Clone(b.added), f)}
				slices.Sort(c.features)
				key := fmt.Sprint(c.features)
				if seen[key] {
					continue
				}
				seen[key] = true
				c.coverage = s.coverage(c.features)
				if best != nil && c.coverage <= best.coverage {
					continue // cannot beat the anchor already found
				}
				cands = append(cands, c)
			}
		}
		if len(cands) == 0 {
			break
		}
		for _, c := range cands {
			if err := s.sample(ctx, c, cfg.MinSamplesStart); err != nil {
				return nil, err
			}
		}
		chosen, err := s.klLUCB(ctx, cands, cfg.BeamSize)
		if err != nil {
			return nil, err
		}
		for _, c := range chosen {
			ok, err := s.verify(ctx, c)
			if err != nil {
				return nil, err
			}
			if mostPrecise == nil || c.mean() > mostPrecise.mean() {
				mostPrecise = c
			}
			if ok && (best == nil || c.coverage > best.coverage) {
				best = c
				if cfg.StopOnFirst {
					return best, nil
				}
			}
		}
		if best != nil {
			return best, nil
		}
		beam = chosen
	}
	if best != nil {
		return best, nil
	}
	return mostPrecise, nil
}

// verify samples c until its bounds settle on either side of the
// threshold (Alibi's acceptance test), and reports whether it holds.
func (s *search) verify(ctx context.Context, c *candidate) (bool, error) {
	cfg := s.cfg
	beta := math.Log(1 / (cfg.Delta / float64(1+(cfg.BeamSize-1)*s.sp.Features())))
	thr := cfg.Threshold
	for s.rows < maxRows {
		mean := c.mean()
		lb := klLower(mean, beta/float64(c.n))
		ub := klUpper(mean, beta/float64(c.n))
		if !((mean >= thr && lb < thr-epsStop) || (mean < thr && ub >= thr+epsStop)) {
			return mean >= thr && lb > thr-epsStop, nil
		}
		if err := s.sample(ctx, c, cfg.BatchSize); err != nil {
			return false, err
		}
	}
	return false, nil
}

// klLUCB returns the top candidates by precision, sampling the most
// ambiguous pair until the gap between the best excluded upper bound and
// the worst included lower bound is below Tau.
func (s *search) klLUCB(ctx context.Context, cands []*candidate, top int) ([]*candidate, error) {
	if len(cands) <= top {
		return cands, nil
	}
	cfg := s.cfg
	order := func() []*candidate {
		o := slices.Clone(cands)
		slices.SortStableFunc(o, func(a, b *candidate) int {
			switch ma, mb := a.mean(), b.mean(); {
			case ma > mb:
				return -1
			case ma < mb:
				return 1
			}
			return 0
		})
		return o
	}
	for t := 1; ; t++ {
		o := order()
		in, out := o[:top], o[top:]
		beta := klBeta(len(cands), t, cfg.Delta)
		ut, lt := out[0], in[0]
		ubMax, lbMin := -1.0, 2.0
		for _, c := range out {
			if ub := klUpper(c.mean(), beta/float64(c.n)); ub > ubMax {
				ubMax, ut = ub, c
			}
		}
		for _, c := range in {
			if lb := klLower(c.mean(), beta/float64(c.n)); lb < lbMin {
				lbMin, lt = lb, c
			}
		}
		if ubMax-lbMin <= cfg.Tau || s.rows >= maxRows {
			return in, nil
		}
		for _, c := range []*candidate{ut, lt} {
			if err := s.sample(ctx, c, cfg.BatchSize); err != nil {
				return nil, err
			}
		}
	}
}

// klBeta is the exploration rate of KL-LUCB at round t (Alibi's
// constants).
func klBeta(arms, t int, delta float64) float64 {
	v := math.Log(405.5 * float64(arms) * math.Pow(float64(t), 1.1) / delta)
	return v + math.Log(v)
}

// kl is the Kullback-Leibler divergence of Bernoulli(q) from Bernoulli(p).
func kl(p, q float64) float64 {
	const eps = 1e-15
	p = min(max(p, eps), 1-eps)
	q = min(max(q, eps), 1-eps)
	return p*math.Log(p/q) + (1-p)*math.Log((1-p)/(1-q))
}

// klUpper is the largest q ≥ p with kl(p, q) ≤ level.
func klUpper(p, level float64) float64 {
	lo, hi := p, min(1, p+math.Sqrt(level/2))
	for range 17 {
		q := (lo + hi) / 2
		if kl(p, q) > level {
			hi = q
		} else {
			lo = q
		}
	}
	return hi
}

// klLower is the smallest q ≤ p with kl(p, q) ≤ level.
func klLower(p, level float64) float64 {
	lo, hi := max(0, p-math.Sqrt(level/2)), p
	for range 17 {
		q := (lo + hi) / 2
		if kl(p, q) > level {
			lo = q
		} else {
			hi = q
		}
	}
	return lo
}

// coverage is the share of the coverage samples that agree with the
// instance on every anchored feature.
func (s *search) coverage(features []int) float64 {
	hit := 0
	for _, agree := range s.cov {
		ok := true
		for _, f := range features {
			if !agree[f] {
				ok = false
				break
			}
		}
		if ok {
			hit++
		}
	}
	return float64(hit) / float64(len(s.cov))
}

// sample draws n samples that satisfy c's anchor, labels them and adds
// them to c's counts.
func (s *search) sample(ctx context.Context, c *candidate, n int) error {
	if s.rows+n > maxRows {
		return errors.New("anchor search exceeded its sample budget")
	}
	labels, ex, err := s.sp.Sample(ctx, s.rng, c.features, n)
	if err != nil {
		return err
	}
	if len(labels) != n || len(ex) != n {
		return fmt.Errorf("model returned %d labels for %d samples", len(labels), n)
	}
	s.rows += n
	for i, l := range labels {
		c.n++
		if l == s.label {
			c.pos++
			if len(c.cTrue) < s.cfg.NCoveredEx {
				c.cTrue = append(c.cTrue, ex[i])
			}
		} else if len(c.cFalse) < s.cfg.NCoveredEx {
			c.cFalse = append(c.cFalse, ex[i])
		}
	}
	return nil
}

// Sample draws n rows from the training data conditioned on the anchor
// over features holding for row: a random training row whose anchored
// features are replaced, categorical ones by row's category and numeric
// ones by a training value from row's quartile bin.
func (x *Explainer) Sample(rng *rand.Rand, row []float64, features []int, n int) [][]float64 {
	bins := x.discretize(row)
	out := make([][]float64, n)
	for i := range out {
		r := slices.Clone(x.data.Rows[rng.IntN(len(x.data.Rows))])
		for _, f := range features {
			if _, cat := x.data.CategoryNames[f]; cat {
				r[f] = row[f]
				continue
			}
			var vals []float64
			if b := bins[f]; b < len(x.byBin[f]) {
				vals = x.byBin[f][b]
			}
			if len(vals) == 0 {
				r[f] = row[f]
				continue
			}
			r[f] = vals[rng.IntN(len(vals))]
		}
		out[i] = r
	}
	return out
}
