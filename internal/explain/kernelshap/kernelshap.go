// Package kernelshap estimates SHAP values of any model with Kernel SHAP
// (Lundberg and Lee, "A unified approach to interpreting model
// predictions", 2017): a weighted linear regression over feature
// coalitions, where an absent feature takes its values from a background
// set. Small problems are enumerated completely and then give the exact
// Shapley values of that value function; larger ones enumerate the
// heaviest coalition sizes and sample the rest, as the shap library does.
package kernelshap

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// PredictFunc evaluates a batch of rows and returns one slice of outputs
// per row, each of the same length. It is the model as a black box.
type PredictFunc func(ctx context.Context, rows [][]float64) ([][]float64, error)

// Config tunes an explainer. The zero value of each field means its
// default.
type Config struct {
	// NSamples is the number of coalitions evaluated; 0 means 2M+2048 for
	// M varying features (enough to enumerate up to 11 features).
	NSamples int
	// L1 selects features before the regression: 0 for none, > 0 a Lasso
	// penalty, or set MaxFeatures to keep that many features.
	L1          float64
	MaxFeatures int
	// BatchSize is the number of rows per call to the model; 0 means 10000.
	BatchSize int
	// Seed seeds the coalition sampler; explanations are reproducible.
	Seed uint64
}

// Validate reports the first bad field by name.
func (c Config) Validate() error {
	switch {
	case c.NSamples < 0:
		return fmt.Errorf("nsamples %d is negative", c.NSamples)
	case c.L1 < 0 || math.IsNaN(c.L1):
		return fmt.Errorf("l1_reg %v is negative", c.L1)
	case c.MaxFeatures < 0:
		return fmt.Errorf("l1_reg num_features(%d) is negative", c.MaxFeatures)
	case c.BatchSize < 0:
		return fmt.Errorf("batch_size %d is negative", c.BatchSize)
	}
	return nil
}

// Explainer holds a model and its background data. Safe for concurrent
// use.
type Explainer struct {
	predict    PredictFunc
	background [][]float64
	cfg        Config
	expected   []float64 // mean output over the background
}

// New evaluates the background once to learn the expected outputs.
func New(ctx context.Context, predict PredictFunc, background [][]float64, cfg Config) (*Explainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(background) == 0 {
		return nil, errors.New("background data is empty")
	}
	for i, r := range background {
		if len(r) != len(background[0]) {
			return nil, fmt.Errorf("background row %d has %d features, row 0 has %d", i, len(r), len(background[0]))
		}
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 10000
	}
	x := &Explainer{predict: predict, background: background, cfg: cfg}
	out, err := x.eval(ctx, background)
	if err != nil {
		return nil, err
	}
	x.expected = mean(out)
	return x, nil
}

// ExpectedValue is the mean model output over the background.
func (x *Explainer) ExpectedValue() []float64 { return x.expected }

// NumFeatures is the width of a row.
func (x *Explainer) NumFeatures() int { return len(x.background[0]) }

// Explain returns the SHAP values of row: one slice per model output, one
// value per feature. Each output's values sum to f(row) minus the expected
// value.
func (x *Explainer) Explain(ctx context.Context, row []float64) ([][]float64, error) {
	m := x.NumFeatures()
	if len(row) != m {
		return nil, fmt.Errorf("row has %d features, want %d", len(row), m)
	}
	fx, err := x.eval(ctx, [][]float64{row})
	if err != nil {
		return nil, err
	}
	k := len(x.expected)
	if len(fx[0]) != k {
		return nil, fmt.Errorf("model returned %d outputs for the row and %d for the background", len(fx[0]), k)
	}
	phi := make([][]float64, k)
	for o := range phi {
		phi[o] = make([]float64, m)
	}
	varying := x.varying(row)
	switch len(varying) {
	case 0:
		return phi, nil
	case 1:
		for o := range k {
			phi[o][varying[0]] = fx[0][o] - x.expected[o]
		}
		return phi, nil
	}
	coal := x.coalitions(len(varying))
	v, err := x.values(ctx, row, varying, coal)
	if err != nil {
		return nil, err
	}
	for o := range k {
		y := make([]float64, len(coal))
		for s := range coal {
			y[s] = v[s][o] - x.expected[o]
		}
		sol, err := solve(coal, y, fx[0][o]-x.expected[o], x.cfg)
		if err != nil {
			return nil, fmt.Errorf("output %d: %w", o, err)
		}
		for i, f := range varying {
			phi[o][f] = sol[i]
		}
	}
	return phi, nil
}

// varying lists the features where row differs from some background row;
// the others cannot change the output and get zero.
func (x *Explainer) varying(row []float64) []int {
	var out []int
	for f, v := range row {
		for _, b := range x.background {
			if b[f] != v && !(b[f] != b[f] && v != v) {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// coalition is a set of present features (indices into varying) and its
// regression weight.
type coalition struct {
	present []bool
	weight  float64
}

// coalitions chooses the coalitions to evaluate for m features: whole
// subset sizes, from the heaviest (1 and m-1) inwards, while the budget
// covers them, then paired random draws from the remaining sizes.
func (x *Explainer) coalitions(m int) []coalition {
	budget := x.cfg.NSamples
	if budget == 0 {
		budget = 2*m + 2048
	}
	if m < 63 {
		budget = min(budget, 1<<m-2)
	}
	sizes := (m - 1 + 1) / 2 // sizes 1..ceil((m-1)/2), each with its complement
	paired := (m - 1) / 2
	w := make([]float64, sizes+1)
	for s := 1; s <= sizes; s++ {
		w[s] = float64(m-1) / float64(s*(m-s))
		if s <= paired {
			w[s] *= 2
		}
	}
	normalize(w)
	var out []coalition
	left := budget
	done := 0
	remaining := slices.Clone(w)
	for s := 1; s <= sizes; s++ {
		n := binomial(m, s)
		if s <= paired {
			n *= 2
		}
		if float64(left)*remaining[s] < n-1e-9 || n > float64(left) {
			break
		}
		done = s
		left -= int(n)
		per := w[s] / n
		enumerate(m, s, func(p []bool) {
			out = append(out, coalition{present: p, weight: per})
			if s <= paired {
				out = append(out, coalition{present: complement(p), weight: per})
			}
		})
		if s < sizes {
			remaining[s] = 0
			normalize(remaining)
		}
	}
	if done == sizes || left < 2 {
		return out
	}
	// Sample the rest: sizes in proportion to their weight, members
	// uniformly, each draw with its complement; repeats add up.
	rng := rand.New(rand.NewPCG(x.cfg.Seed, 0x5eed))
	massLeft := 0.0
	for s := done + 1; s <= sizes; s++ {
		massLeft += w[s]
	}
	sampled := map[string]int{}
	start := len(out)
	for draws := 0; left >= 2 && draws < budget*10; draws++ {
		u := rng.Float64() * massLeft
		s := done + 1
		for ; s < sizes && u >= w[s]; s++ {
			u -= w[s]
		}
		p := make([]bool, m)
		for _, i := range rng.Perm(m)[:s] {
			p[i] = true
		}
		for _, q := range [][]bool{p, complement(p)} {
			key := string(boolKey(q))
			if i, ok := sampled[key]; ok {
				out[i].weight++
				continue
			}
			sampled[key] = len(out)
			out = append(out, coalition{present: q, weight: 1})
			left--
		}
	}
	total := 0.0
	for _, c := range out[start:] {
		total += c.weight
	}
	for i := range out[start:] {
		out[start+i].weight *= massLeft / total
	}
	return out
}

// values evaluates each coalition: the mean output over the background
// with the present features taken from row.
func (x *Explainer) values(ctx context.Context, row []float64, varying []int, coal []coalition) ([][]float64, error) {
	nb := len(x.background)
	rows := make([][]float64, 0, len(coal)*nb)
	for _, c := range coal {
		for _, b := range x.background {
			r := slices.Clone(b)
			for i, f := range varying {
				if c.present[i] {
					r[f] = row[f]
				}
			}
			rows = append(rows, r)
		}
	}
	out, err := x.eval(ctx, rows)
	if err != nil {
		return nil, err
	}
	v := make([][]float64, len(coal))
	for s := range coal {
		v[s] = mean(out[s*nb : (s+1)*nb])
	}
	return v, nil
}

// eval calls the model in batches and checks the shape of its answers.
func (x *Explainer) eval(ctx context.Context, rows [][]float64) ([][]float64, error) {
	out := make([][]float64, 0, len(rows))
	for lo := 0; lo < len(rows); lo += x.cfg.BatchSize {
		hi := min(len(rows), lo+x.cfg.BatchSize)
		got, err := x.predict(ctx, rows[lo:hi])
		if err != nil {
			return nil, err
		}
		if len(got) != hi-lo {
			return nil, fmt.Errorf("model returned %d predictions for %d rows", len(got), hi-lo)
		}
		for _, g := range got {
			if len(g) == 0 || (len(out) > 0 && len(g) != len(out[0])) {
				return nil, fmt.Errorf("model returned rows of %d outputs", len(g))
			}
			out = append(out, g)
		}
	}
	return out, nil
}

func mean(rows [][]float64) []float64 {
	m := make([]float64, len(rows[0]))
	for _, r := range rows {
		for i, v := range r {
			m[i] += v
		}
	}
	for i := range m {
		m[i] /= float64(len(rows))
	}
	return m
}

func normalize(w []float64) {
	s := 0.0
	for _, v := range w {
		s += v
	}
	if s > 0 {
		for i := range w {
			w[i] /= s
		}
	}
}

func binomial(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return math.Round(r)
}

// enumerate calls fn with every subset of size k of m items.
func enumerate(m, k int, fn func([]bool)) {
	idx := make([]int, k)
	for i := range idx {
		idx[i] = i
	}
	for {
		p := make([]bool, m)
		for _, i := range idx {
			p[i] = true
		}
		fn(p)
		i := k - 1
		for i >= 0 && idx[i] == m-k+i {
			i--
		}
		if i < 0 {
			return
		}
		idx[i]++
		for j := i + 1; j < k; j++ {
			idx[j] = idx[j-1] + 1
		}
	}
}

func complement(p []bool) []bool {
	q := make([]bool, len(p))
	for i, v := range p {
		q[i] = !v
	}
	return q
}

func boolKey(p []bool) []byte {
	b := make([]byte, len(p))
	for i, v := range p {
		if v {
			b[i] = 1
		}
	}
	return b
}
