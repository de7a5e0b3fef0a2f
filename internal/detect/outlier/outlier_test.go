package outlier

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// labelled returns n normal rows (N(0, I)) and n outliers: normal rows
// moved 5 standard deviations along a random direction.
func labelled(rng *rand.Rand, n, d int) (normal, outliers [][]float64) {
	for range n {
		a := make([]float64, d)
		b := make([]float64, d)
		var norm float64
		u := make([]float64, d)
		for j := range d {
			a[j] = rng.NormFloat64()
			b[j] = rng.NormFloat64()
			u[j] = rng.NormFloat64()
			norm += u[j] * u[j]
		}
		for j := range d {
			b[j] += 5 * u[j] / math.Sqrt(norm)
		}
		normal = append(normal, a)
		outliers = append(outliers, b)
	}
	return normal, outliers
}

func rate(flags []bool) float64 {
	var k int
	for _, f := range flags {
		if f {
			k++
		}
	}
	return float64(k) / float64(len(flags))
}

func TestDetectionPowerAndFalseAlarms(t *testing.T) {
	const d = 5
	rng := rand.New(rand.NewPCG(11, 12))
	ref, _ := labelled(rng, 2000, d)
	normal, outliers := labelled(rng, 1000, d)
	maha, err := NewMahalanobis(MahalanobisConfig{Reference: ref, FalseAlarm: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	forest, err := NewIForest(IForestConfig{Reference: ref, Contamination: 0.01, Seed: 13})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		det        Detector
		minPower   float64
		maxFalseAl float64
	}{{maha, 0.9, 0.03}, {forest, 0.7, 0.04}} {
		n, err := c.det.Score(normal)
		if err != nil {
			t.Fatal(err)
		}
		o, err := c.det.Score(outliers)
		if err != nil {
			t.Fatal(err)
		}
		power, fpr := rate(o.IsOutlier), rate(n.IsOutlier)
		t.Logf("%s: power %.3f, false-positive rate %.3f (threshold %.4g; 1000 N(0,I%d) rows vs 1000 moved 5σ)", o.Name, power, fpr, o.Threshold, d)
		if power < c.minPower || fpr > c.maxFalseAl {
			t.Errorf("%s: power %.3f (want ≥ %.2f), FPR %.3f (want ≤ %.2f)", o.Name, power, c.minPower, fpr, c.maxFalseAl)
		}
	}
}

func TestMahalanobisMatchesClosedForm(t *testing.T) {
	// Mean (1, 2); sample covariance diag(8/3, 2/3).
	ref := [][]float64{{3, 2}, {-1, 2}, {1, 3}, {1, 1}}
	m, err := NewMahalanobis(MahalanobisConfig{Reference: ref, Threshold: 10, Ridge: 1e-15})
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Score([][]float64{{1, 2}, {5, 2}, {1, 5}})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0, 16 / (8.0 / 3), 9 / (2.0 / 3)}
	for i, w := range want {
		if math.Abs(r.InstanceScore[i]-w) > 1e-9 {
			t.Errorf("score %d = %v, want %v", i, r.InstanceScore[i], w)
		}
	}
	if r.IsOutlier[0] || r.IsOutlier[1] || !r.IsOutlier[2] {
		t.Errorf("flags %v", r.IsOutlier)
	}
}

func TestMahalanobisOnlineFollowsDrift(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	ref, _ := labelled(rng, 200, 2)
	m, err := NewMahalanobis(MahalanobisConfig{Reference: ref, Online: true})
	if err != nil {
		t.Fatal(err)
	}
	// Move the data by 0.2σ per batch; an online detector keeps up.
	var last Result
	for b := range 20 {
		batch := make([][]float64, 200)
		for i := range batch {
			batch[i] = []float64{rng.NormFloat64() + 0.2*float64(b+1), rng.NormFloat64()}
		}
		if last, err = m.Score(batch); err != nil {
			t.Fatal(err)
		}
	}
	if r := rate(last.IsOutlier); r > 0.05 {
		t.Errorf("after a slow 4σ drift the online detector flags %.3f", r)
	}
}

func TestChi2Quantile(t *testing.T) {
	// Known values: chi2.ppf(0.99, 5) = 15.08627246938899, chi2.ppf(0.95, 1) = 3.841458820694124.
	for _, c := range []struct{ p, k, want float64 }{{0.99, 5, 15.08627246938899}, {0.95, 1, 3.841458820694124}} {
		if got := Chi2Quantile(c.p, c.k); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Chi2Quantile(%v, %v) = %v, want %v", c.p, c.k, got, c.want)
		}
	}
}

func TestRejectBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	ref, _ := labelled(rng, 50, 3)
	m, _ := NewMahalanobis(MahalanobisConfig{Reference: ref})
	f, _ := NewIForest(IForestConfig{Reference: ref, Trees: 10})
	for _, d := range []Detector{m, f} {
		if _, err := d.Score([][]float64{{1, 2}}); !errors.Is(err, ErrShape) {
			t.Errorf("short row: %v", err)
		}
		if _, err := d.Score([][]float64{{1, math.Inf(1), 2}}); err == nil {
			t.Error("Inf accepted")
		}
	}
	if _, err := NewMahalanobis(MahalanobisConfig{Reference: [][]float64{{1, 2}, {3, 4}}}); err == nil {
		t.Error("too few rows accepted")
	}
	if _, err := NewMahalanobis(MahalanobisConfig{Reference: [][]float64{{1, 1}, {2, 2}, {3, 3}}, Ridge: -1}); err == nil {
		t.Error("negative ridge accepted")
	}
}
