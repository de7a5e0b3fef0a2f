package drift

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/ferryserve/ferry/internal/detect/stats"
)

// gauss returns n rows of d independent N(0,1) features, the first shifted
// by shift standard deviations.
func gauss(rng *rand.Rand, n, d int, shift float64) [][]float64 {
	rows := make([][]float64, n)
	for i := range rows {
		r := make([]float64, d)
		for j := range r {
			r[j] = rng.NormFloat64()
		}
		r[0] += shift
		rows[i] = r
	}
	return rows
}

// powerAndFPR runs trials windows with and without a shift and returns the
// share flagged in each case.
func powerAndFPR(t *testing.T, det Detector, rng *rand.Rand, trials, window, d int, shift float64) (power, fpr float64) {
	t.Helper()
	var hits, alarms int
	for range trials {
		r, err := det.Test(gauss(rng, window, d, 0))
		if err != nil {
			t.Fatal(err)
		}
		if r.IsDrift {
			alarms++
		}
		r, err = det.Test(gauss(rng, window, d, shift))
		if err != nil {
			t.Fatal(err)
		}
		if r.IsDrift {
			hits++
		}
	}
	return float64(hits) / float64(trials), float64(alarms) / float64(trials)
}

// The bar: at least 0.9 power at 5 % false alarms for a 0.5σ mean
// shift with 500-row windows. The shift is on one feature of five, the
// harder case for a multivariate test.
const (
	features = 5
	window   = 500
	shift    = 0.5
)

func TestKSPowerAndFalseAlarms(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []stats.Correction{stats.Bonferroni, stats.FDR} {
		det, err := NewTabular(TabularConfig{Reference: gauss(rng, 1000, features, 0), PVal: 0.05, Correction: c})
		if err != nil {
			t.Fatal(err)
		}
		trials := 200 / raceDivisor
		power, fpr := powerAndFPR(t, det, rng, trials, window, features, shift)
		t.Logf("KS/%s: power %.3f, false-positive rate %.3f (%d windows of %d rows each way, 0.5σ shift on 1 of %d features)", c, power, fpr, trials, window, features)
		if power < 0.9 || fpr > 0.1 {
			t.Errorf("KS/%s: power %.3f (want ≥ 0.9), FPR %.3f (want ≤ 0.1)", c, power, fpr)
		}
	}
}

func TestMMDPowerAndFalseAlarms(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	det, err := NewMMD(MMDConfig{Reference: gauss(rng, 500, features, 0), Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	trials := 40 / raceDivisor
	power, fpr := powerAndFPR(t, det, rng, trials, window, features, shift)
	t.Logf("MMD: power %.3f, false-positive rate %.3f (%d windows of %d rows each way, sigma %.3f, 100 permutations)", power, fpr, trials, window, det.Sigma())
	if power < 0.9 || fpr > 0.15 {
		t.Errorf("MMD: power %.3f (want ≥ 0.9), FPR %.3f (want ≤ 0.15)", power, fpr)
	}
}

func TestTabularCategorical(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	mk := func(n int, p float64) [][]float64 {
		rows := make([][]float64, n)
		for i := range rows {
			c := 0.0
			if rng.Float64() < p {
				c = 1
			}
			if rng.Float64() < 0.2 {
				c = 2
			}
			rows[i] = []float64{rng.NormFloat64(), c}
		}
		return rows
	}
	det, err := NewTabular(TabularConfig{Reference: mk(1000, 0.3), Categorical: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	same, err := det.Test(mk(500, 0.3))
	if err != nil {
		t.Fatal(err)
	}
	moved, err := det.Test(mk(500, 0.6))
	if err != nil {
		t.Fatal(err)
	}
	if same.Name != "TabularDrift" || same.IsDrift || !moved.IsDrift || moved.PVal[1] > 1e-6 || moved.PVal[0] < 1e-3 {
		t.Errorf("same %+v\nmoved %+v", same, moved)
	}
	// A category the reference never saw still makes a valid table.
	rows := mk(100, 0.3)
	rows[0][1] = 7
	if _, err := det.Test(rows); err != nil {
		t.Error(err)
	}
}

func TestDetectorsRejectBadInput(t *testing.T) {
	ref := [][]float64{{1, 2}, {3, 4}, {5, 7}}
	tab, err := NewTabular(TabularConfig{Reference: ref})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Test([][]float64{{1}}); !errors.Is(err, ErrShape) {
		t.Errorf("short row: %v", err)
	}
	mmd, err := NewMMD(MMDConfig{Reference: ref})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mmd.Test([][]float64{{1, 2, 3}, {1, 2, 3}}); !errors.Is(err, ErrShape) {
		t.Errorf("long row: %v", err)
	}
	for _, cfg := range []TabularConfig{{}, {Reference: ref, PVal: 2}, {Reference: ref, Correction: "x"}, {Reference: ref, Categorical: []int{5}}} {
		if _, err := NewTabular(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := NewMMD(MMDConfig{Reference: [][]float64{{1}, {1}}}); err == nil {
		t.Error("constant reference accepted without sigma")
	}
}

func BenchmarkMMDTest(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	det, err := NewMMD(MMDConfig{Reference: gauss(rng, 500, features, 0)})
	if err != nil {
		b.Fatal(err)
	}
	w := gauss(rng, window, features, 0)
	for b.Loop() {
		if _, err := det.Test(w); err != nil {
			b.Fatal(err)
		}
	}
}
