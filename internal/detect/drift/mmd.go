package drift

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
)

// MMDConfig configures the kernel two-sample test.
type MMDConfig struct {
	Reference [][]float64
	// PVal is the test's level (default 0.05).
	PVal float64
	// Sigma is the RBF kernel's bandwidth; 0 picks the median heuristic on
	// the reference (sigma² = median squared distance / 2), fixed for the
	// detector's life so that every window is judged by one kernel.
	Sigma float64
	// Permutations drawn to estimate the p-value (default 100).
	Permutations int
	// MaxReference caps the reference rows the test uses (default 1000);
	// a larger reference is subsampled once, deterministically.
	MaxReference int
	// Seed makes the permutations reproducible.
	Seed uint64
}

// MMD is alibi-detect's MMDDrift: the unbiased MMD² estimate between the
// reference and the window with a Gaussian RBF kernel, and a permutation
// p-value (the share of permuted estimates at least as large).
type MMD struct {
	cfg   MMDConfig
	ref   [][]float64
	width int
	gamma float64 // 1 / (2 sigma²)

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

var _ Detector = (*MMD)(nil)

// NewMMD validates cfg and fixes the kernel.
func NewMMD(cfg MMDConfig) (*MMD, error) {
	if cfg.PVal == 0 {
		cfg.PVal = 0.05
	}
	if cfg.Permutations == 0 {
		cfg.Permutations = 100
	}
	if cfg.MaxReference == 0 {
		cfg.MaxReference = 1000
	}
	switch {
	case !(cfg.PVal > 0 && cfg.PVal < 1):
		return nil, fmt.Errorf("drift: p-value level %v: want (0, 1)", cfg.PVal)
	case cfg.Permutations < 10:
		return nil, fmt.Errorf("drift: %d permutations: want at least 10", cfg.Permutations)
	case cfg.Sigma < 0 || math.IsNaN(cfg.Sigma):
		return nil, fmt.Errorf("drift: sigma %v: want > 0, or 0 for the median heuristic", cfg.Sigma)
	case len(cfg.Reference) < 2 || len(cfg.Reference[0]) == 0:
		return nil, errors.New("drift: the reference needs at least two rows")
	}
	w := len(cfg.Reference[0])
	if err := checkRows(cfg.Reference, w); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6d6d64))
	ref := cfg.Reference
	if len(ref) > cfg.MaxReference {
		idx := rng.Perm(len(ref))[:cfg.MaxReference]
		slices.Sort(idx)
		sub := make([][]float64, len(idx))
		for i, j := range idx {
			sub[i] = ref[j]
		}
		ref = sub
	}
	sigma := cfg.Sigma
	if sigma == 0 {
		sigma = medianSigma(ref)
	}
	if !(sigma > 0) {
		return nil, errors.New("drift: the reference rows are all equal; set sigma")
	}
	return &MMD{cfg: cfg, ref: ref, width: w, gamma: 1 / (2 * sigma * sigma), rng: rng}, nil
}

// Sigma is the kernel bandwidth in use.
func (m *MMD) Sigma() float64 { return math.Sqrt(1 / (2 * m.gamma)) }

// Features implements Detector.
func (m *MMD) Features() int { return m.width }

// medianSigma is the median heuristic over pairs of (at most 500)
// reference rows.
func medianSigma(ref [][]float64) float64 {
	n := min(len(ref), 500)
	d := make([]float64, 0, n*(n-1)/2)
	for i := range n {
		for j := i + 1; j < n; j++ {
			d = append(d, sqDist(ref[i], ref[j]))
		}
	}
	slices.Sort(d)
	return math.Sqrt(d[len(d)/2] / 2)
}

func sqDist(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		t := v - b[i]
		s += t * t
	}
	return s
}

// Test implements Detector.
func (m *MMD) Test(rows [][]float64) (Result, error) {
	if err := checkRows(rows, m.width); err != nil {
		return Result{}, err
	}
	for i, r := range rows {
		for f, v := range r {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return Result{}, fmt.Errorf("drift: row %d feature %d is %v", i, f, v)
			}
		}
	}
	nx, ny := len(m.ref), len(rows)
	if ny < 2 {
		return Result{}, errors.New("drift: MMD needs at least two rows")
	}
	n := nx + ny
	all := make([][]float64, 0, n)
	all = append(append(all, m.ref...), rows...)
	k := make([]float64, n*n)
	rowSum := make([]float64, n)
	var total float64
	for i := range n {
		k[i*n+i] = 1
		for j := i + 1; j < n; j++ {
			v := math.Exp(-m.gamma * sqDist(all[i], all[j]))
			k[i*n+j], k[j*n+i] = v, v
		}
	}
	for i := range n {
		var s float64
		for _, v := range k[i*n : (i+1)*n] {
			s += v
		}
		rowSum[i] = s
		total += s
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	stat := mmd2(k, n, idx, nx, rowSum, total)
	m.mu.Lock()
	perms := make([][]int, m.cfg.Permutations)
	for p := range perms {
		perm := slices.Clone(idx)
		m.rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		slices.Sort(perm[:nx]) // walk the kernel matrix in order
		perms[p] = perm
	}
	m.mu.Unlock()
	var ge int
	for _, perm := range perms {
		if mmd2(k, n, perm, nx, rowSum, total) >= stat {
			ge++
		}
	}
	p := float64(ge) / float64(len(perms))
	return Result{Name: "MMDDrift", IsDrift: p < m.cfg.PVal, Distance: []float64{stat}, PVal: []float64{p}, Threshold: m.cfg.PVal, N: ny}, nil
}

// mmd2 is the unbiased MMD² between the first nx indices of idx and the
// rest. Only the X block is summed directly; the cross and Y blocks follow
// from the row sums and the total.
func mmd2(k []float64, n int, idx []int, nx int, rowSum []float64, total float64) float64 {
	ny := n - nx
	x := idx[:nx]
	var sxx, rx float64
	for _, i := range x {
		row := k[i*n : (i+1)*n]
		for _, j := range x {
			sxx += row[j]
		}
		rx += rowSum[i]
	}
	sxy := rx - sxx
	syy := total - sxx - 2*sxy
	fx, fy := float64(nx), float64(ny)
	return (sxx-fx)/(fx*(fx-1)) + (syy-fy)/(fy*(fy-1)) - 2*sxy/(fx*fy)
}
