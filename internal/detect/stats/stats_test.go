package stats

import (
	"errors"
	"math"
	"testing"
)

func TestKS2SampRejectsBadInput(t *testing.T) {
	if _, err := KS2Samp(nil, []float64{1}); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
	if _, err := KS2Samp([]float64{1, math.NaN()}, []float64{1}); !errors.Is(err, ErrNaN) {
		t.Errorf("NaN: %v", err)
	}
}

func TestKS2SampSymmetricAndIdentical(t *testing.T) {
	a := genSample(1, 300, 0, 0)
	b := genSample(2, 200, 0.3, 0)
	ab, _ := KS2Samp(a, b)
	ba, _ := KS2Samp(b, a)
	if ab.D != ba.D || math.Abs(ab.P-ba.P) > 1e-15 {
		t.Errorf("not symmetric: %+v vs %+v", ab, ba)
	}
	same, _ := KS2Samp(a, a)
	if same.D != 0 || same.P != 1 {
		t.Errorf("identical samples: %+v", same)
	}
}

func TestCorrect(t *testing.T) {
	p := []float64{0.001, 0.02, 0.03, 0.5}
	b, err := Correct(Bonferroni, p, 0.05)
	if err != nil || !b.Reject || b.Threshold != 0.0125 {
		t.Errorf("bonferroni: %+v %v", b, err)
	}
	// BH at q = 0.05, m = 4: cutoffs 0.0125, 0.025, 0.0375, 0.05; the
	// sorted p-values 0.001, 0.02, 0.03 all fall below theirs.
	f, err := Correct(FDR, p, 0.05)
	if err != nil || !f.Reject || math.Abs(f.Threshold-0.0375) > 1e-15 {
		t.Errorf("fdr: %+v %v", f, err)
	}
	// Bonferroni (0.025) keeps both, BH rejects via 0.031 < 0.05.
	nb, _ := Correct(Bonferroni, []float64{0.03, 0.031}, 0.05)
	nf, _ := Correct(FDR, []float64{0.03, 0.031}, 0.05)
	if nb.Reject || !nf.Reject {
		t.Errorf("bonferroni %+v, fdr %+v", nb, nf)
	}
	none, _ := Correct(FDR, []float64{0.3, 0.9}, 0.05)
	if none.Reject || len(none.Thresholds) != 2 {
		t.Errorf("no rejection: %+v", none)
	}
	if _, err := Correct("holm", p, 0.05); err == nil {
		t.Error("unknown correction accepted")
	}
	if _, err := Correct(FDR, p, 1.5); err == nil {
		t.Error("level 1.5 accepted")
	}
}

func TestChi2ContingencyRejectsBadTables(t *testing.T) {
	for _, tab := range [][][]float64{
		{},
		{{1, 0}, {2, 0}},
		{{1, 2}, {3}},
		{{-1, 2}, {3, 4}},
		{{math.NaN(), 2}, {3, 4}},
	} {
		if _, err := Chi2Contingency(tab); !errors.Is(err, ErrTable) {
			t.Errorf("%v: %v", tab, err)
		}
	}
}

func TestGammaQ(t *testing.T) {
	// Q(1, x) = exp(-x); Q(0.5, x) = erfc(sqrt(x)).
	for _, x := range []float64{0.01, 0.5, 1, 2, 10, 50} {
		if d := math.Abs(GammaQ(1, x) - math.Exp(-x)); d > 1e-15 {
			t.Errorf("Q(1, %v) off by %g", x, d)
		}
		if d := math.Abs(GammaQ(0.5, x) - math.Erfc(math.Sqrt(x))); d > 1e-14 {
			t.Errorf("Q(0.5, %v) off by %g", x, d)
		}
	}
}

func BenchmarkKS2SampSorted(b *testing.B) {
	x := genSample(1, 5000, 0, 0)
	y := genSample(2, 500, 0.1, 0)
	r, _ := KS2Samp(x, y) // sorts copies
	_ = r
	xs, ys := append([]float64(nil), x...), append([]float64(nil), y...)
	sortNoNaN(xs)
	sortNoNaN(ys)
	b.ReportAllocs()
	for b.Loop() {
		KS2SampSorted(xs, ys)
	}
}
