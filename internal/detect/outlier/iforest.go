package outlier

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// IForestConfig configures an isolation forest.
type IForestConfig struct {
	// Reference rows the forest is grown on (taken as normal).
	Reference [][]float64
	// Trees in the forest (default 100) and rows drawn for each (default
	// 256), as in Liu, Ting and Zhou (2008).
	Trees, SampleSize int
	// Threshold on the anomaly score in (0, 1). 0 derives it from
	// Contamination: the score quantile of the reference rows.
	Threshold float64
	// Contamination is the share of reference rows taken to lie above the
	// threshold when Threshold is 0 (default 0.01).
	Contamination float64
	// Seed makes the forest reproducible.
	Seed uint64
}

// IForest is an isolation forest: instances that random axis-parallel
// splits isolate in few steps are anomalous. The score is
// 2^(-E[h(x)]/c(ψ)), near 1 for anomalies and below 0.5 for normal rows.
type IForest struct {
	cfg   IForestConfig
	width int
	trees [][]node
	norm  float64 // c(ψ)
}

var _ Detector = (*IForest)(nil)

// node is a split (feature ≥ 0) or a leaf (feature < 0, size rows).
type node struct {
	feature     int
	split       float64
	left, right int32
	size        int32
}

// NewIForest grows the forest and sets the threshold.
func NewIForest(cfg IForestConfig) (*IForest, error) {
	if cfg.Trees == 0 {
		cfg.Trees = 100
	}
	if cfg.SampleSize == 0 {
		cfg.SampleSize = 256
	}
	if cfg.Contamination == 0 {
		cfg.Contamination = 0.01
	}
	switch {
	case cfg.Trees < 1 || cfg.SampleSize < 2:
		return nil, fmt.Errorf("outlier: %d trees of %d rows: want ≥ 1 tree of ≥ 2 rows", cfg.Trees, cfg.SampleSize)
	case !(cfg.Contamination > 0 && cfg.Contamination < 0.5):
		return nil, fmt.Errorf("outlier: contamination %v: want (0, 0.5)", cfg.Contamination)
	case cfg.Threshold < 0 || cfg.Threshold >= 1:
		return nil, fmt.Errorf("outlier: threshold %v: want [0, 1)", cfg.Threshold)
	case len(cfg.Reference) < 2 || len(cfg.Reference[0]) == 0:
		return nil, errors.New("outlier: the reference needs at least two rows")
	}
	w := len(cfg.Reference[0])
	if err := checkRows(cfg.Reference, w); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	psi := min(cfg.SampleSize, len(cfg.Reference))
	f := &IForest{cfg: cfg, width: w, norm: avgPath(psi)}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x69666f72))
	limit := int(math.Ceil(math.Log2(float64(psi))))
	for range cfg.Trees {
		idx := rng.Perm(len(cfg.Reference))[:psi]
		var t []node
		grow(&t, cfg.Reference, idx, 0, limit, rng)
		f.trees = append(f.trees, t)
	}
	if cfg.Threshold == 0 {
		s := f.scores(cfg.Reference)
		slices.Sort(s)
		f.cfg.Threshold = s[int(math.Floor((1-cfg.Contamination)*float64(len(s)-1)))]
	}
	return f, nil
}

// grow appends the subtree over idx to t and returns its root's index.
func grow(t *[]node, rows [][]float64, idx []int, depth, limit int, rng *rand.Rand) int32 {
	self := int32(len(*t))
	*t = append(*t, node{feature: -1, size: int32(len(idx))})
	if depth >= limit || len(idx) <= 1 {
		return self
	}
	// Pick among features that still vary, so that no split is wasted.
	var cand []int
	lo := make([]float64, len(rows[0]))
	hi := make([]float64, len(rows[0]))
	for f := range lo {
		lo[f], hi[f] = math.Inf(1), math.Inf(-1)
		for _, i := range idx {
			lo[f] = math.Min(lo[f], rows[i][f])
			hi[f] = math.Max(hi[f], rows[i][f])
		}
		if hi[f] > lo[f] {
			cand = append(cand, f)
		}
	}
	if len(cand) == 0 {
		return self
	}
	f := cand[rng.IntN(len(cand))]
	split := lo[f] + rng.Float64()*(hi[f]-lo[f])
	var left, right []int
	for _, i := range idx {
		if rows[i][f] < split {
			left = append(left, i)
		} else {
			right = append(right, i)
		}
	}
	l := grow(t, rows, left, depth+1, limit, rng)
	r := grow(t, rows, right, depth+1, limit, rng)
	(*t)[self] = node{feature: f, split: split, left: l, right: r}
	return self
}

// avgPath is c(n), the mean path length of an unsuccessful search in a
// binary search tree of n keys: the normaliser for path lengths.
func avgPath(n int) float64 {
	switch {
	case n <= 1:
		return 0
	case n == 2:
		return 1
	}
	fn := float64(n)
	return 2*(math.Log(fn-1)+0.5772156649015329) - 2*(fn-1)/fn
}

func (f *IForest) pathLength(t []node, x []float64) float64 {
	var depth float64
	i := int32(0)
	for {
		nd := &t[i]
		if nd.feature < 0 {
			return depth + avgPath(int(nd.size))
		}
		if x[nd.feature] < nd.split {
			i = nd.left
		} else {
			i = nd.right
		}
		depth++
	}
}

func (f *IForest) scores(rows [][]float64) []float64 {
	out := make([]float64, len(rows))
	for k, x := range rows {
		var sum float64
		for _, t := range f.trees {
			sum += f.pathLength(t, x)
		}
		out[k] = math.Exp2(-sum / float64(len(f.trees)) / f.norm)
	}
	return out
}

// Threshold is the score above which an instance is an outlier.
func (f *IForest) Threshold() float64 { return f.cfg.Threshold }

// Features implements Detector.
func (f *IForest) Features() int { return f.width }

// Score implements Detector.
func (f *IForest) Score(rows [][]float64) (Result, error) {
	if err := checkRows(rows, f.width); err != nil {
		return Result{}, err
	}
	s := f.scores(rows)
	res := Result{Name: "IForest", IsOutlier: make([]bool, len(rows)), InstanceScore: s, Threshold: f.cfg.Threshold}
	for i, v := range s {
		res.IsOutlier[i] = v > f.cfg.Threshold
	}
	return res, nil
}
