package outlier

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/ferryserve/ferry/internal/detect/stats"
)

// MahalanobisConfig configures a Mahalanobis detector.
type MahalanobisConfig struct {
	// Reference rows seed the mean and covariance (at least width+1 rows).
	Reference [][]float64
	// Threshold on the squared distance. 0 derives it from FalseAlarm: the
	// chi-squared quantile with one degree of freedom per feature, the
	// squared distance's law for Gaussian data.
	Threshold float64
	// FalseAlarm is the target share of normal instances flagged when
	// Threshold is 0 (default 0.01).
	FalseAlarm float64
	// Online folds every scored instance that is not an outlier into the
	// mean and covariance (Welford), so the detector follows slow change
	// while outliers do not pull it towards themselves.
	Online bool
	// Ridge is added to the covariance's diagonal, relative to its mean
	// variance (default 1e-9), so that collinear features still invert.
	Ridge float64
}

// Mahalanobis scores instances by squared Mahalanobis distance.
type Mahalanobis struct {
	cfg   MahalanobisConfig
	width int

	mu   sync.Mutex // guards the running moments and the factor
	n    float64
	mean []float64
	co   []float64 // co-moment matrix, width×width
	chol []float64 // lower Cholesky factor of the regularised covariance
	dirt bool
}

var _ Detector = (*Mahalanobis)(nil)

// NewMahalanobis validates cfg and fits the reference.
func NewMahalanobis(cfg MahalanobisConfig) (*Mahalanobis, error) {
	if cfg.FalseAlarm == 0 {
		cfg.FalseAlarm = 0.01
	}
	if cfg.Ridge == 0 {
		cfg.Ridge = 1e-9
	}
	if !(cfg.FalseAlarm > 0 && cfg.FalseAlarm < 1) || cfg.Threshold < 0 || cfg.Ridge < 0 {
		return nil, fmt.Errorf("outlier: false-alarm rate %v, threshold %v, ridge %v: want rate in (0,1), others ≥ 0", cfg.FalseAlarm, cfg.Threshold, cfg.Ridge)
	}
	if len(cfg.Reference) == 0 || len(cfg.Reference[0]) == 0 {
		return nil, errors.New("outlier: empty reference")
	}
	w := len(cfg.Reference[0])
	if len(cfg.Reference) <= w {
		return nil, fmt.Errorf("outlier: %d reference rows for %d features: want more rows than features", len(cfg.Reference), w)
	}
	if err := checkRows(cfg.Reference, w); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = Chi2Quantile(1-cfg.FalseAlarm, float64(w))
	}
	m := &Mahalanobis{cfg: cfg, width: w, mean: make([]float64, w), co: make([]float64, w*w)}
	for _, r := range cfg.Reference {
		m.add(r)
	}
	if err := m.factor(); err != nil {
		return nil, err
	}
	return m, nil
}

// Features implements Detector.
func (m *Mahalanobis) Features() int { return m.width }

// add folds one row into the running mean and co-moment (Welford).
func (m *Mahalanobis) add(r []float64) {
	m.n++
	w := m.width
	delta := make([]float64, w)
	for i, v := range r {
		delta[i] = v - m.mean[i]
		m.mean[i] += delta[i] / m.n
	}
	for i := range w {
		after := r[i] - m.mean[i]
		for j := range w {
			m.co[i*w+j] += after * delta[j]
		}
	}
	m.dirt = true
}

// factor recomputes the Cholesky factor of cov + ridge·I.
func (m *Mahalanobis) factor() error {
	w := m.width
	cov := make([]float64, w*w)
	var tr float64
	for i := range w * w {
		cov[i] = m.co[i] / (m.n - 1)
	}
	for i := range w {
		tr += cov[i*w+i]
	}
	ridge := m.cfg.Ridge * max(tr/float64(w), 1e-300)
	for i := range w {
		cov[i*w+i] += ridge
	}
	l := make([]float64, w*w)
	for i := range w {
		for j := 0; j <= i; j++ {
			s := cov[i*w+j]
			for k := range j {
				s -= l[i*w+k] * l[j*w+k]
			}
			if i == j {
				if !(s > 0) {
					return errors.New("outlier: the covariance is singular; add rows or raise the ridge")
				}
				l[i*w+i] = math.Sqrt(s)
			} else {
				l[i*w+j] = s / l[j*w+j]
			}
		}
	}
	m.chol, m.dirt = l, false
	return nil
}

// distance2 is |L⁻¹(x-μ)|².
func (m *Mahalanobis) distance2(r, y []float64) float64 {
	w := m.width
	var d float64
	for i := range w {
		s := r[i] - m.mean[i]
		for k := range i {
			s -= m.chol[i*w+k] * y[k]
		}
		y[i] = s / m.chol[i*w+i]
		d += y[i] * y[i]
	}
	return d
}

// Score implements Detector.
func (m *Mahalanobis) Score(rows [][]float64) (Result, error) {
	if err := checkRows(rows, m.width); err != nil {
		return Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	res := Result{Name: "Mahalanobis", IsOutlier: make([]bool, len(rows)), InstanceScore: make([]float64, len(rows)), Threshold: m.cfg.Threshold}
	y := make([]float64, m.width)
	for i, r := range rows {
		if m.dirt {
			if err := m.factor(); err != nil {
				return Result{}, err
			}
		}
		d := m.distance2(r, y)
		res.InstanceScore[i] = d
		res.IsOutlier[i] = d > m.cfg.Threshold
		if m.cfg.Online && !res.IsOutlier[i] {
			m.add(r)
		}
	}
	return res, nil
}

// Chi2Quantile returns x with P(X <= x) = p for X chi-squared with k
// degrees of freedom, by bisection on the survival function.
func Chi2Quantile(p, k float64) float64 {
	lo, hi := 0.0, k+10*math.Sqrt(2*k)+50
	for stats.Chi2SF(hi, k) > 1-p {
		hi *= 2
	}
	for range 200 {
		mid := (lo + hi) / 2
		if stats.Chi2SF(mid, k) > 1-p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}
