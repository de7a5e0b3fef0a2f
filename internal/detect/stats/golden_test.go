package stats

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// golden mirrors testdata/golden.json, written by testdata/gen/gen.py.
type golden struct {
	SciPy string `json:"scipy"`
	KS    []struct {
		Seed  uint64  `json:"seed"`
		N1    int     `json:"n1"`
		N2    int     `json:"n2"`
		Shift float64 `json:"shift"`
		Grid  int     `json:"grid"`
		D     float64 `json:"d"`
		P     float64 `json:"p"`
	} `json:"ks_2samp"`
	KSTwo []struct {
		N  int     `json:"n"`
		X  float64 `json:"x"`
		SF float64 `json:"sf"`
	} `json:"kstwo_sf"`
	Chi2 []struct {
		Table [][]float64 `json:"table"`
		Stat  float64     `json:"stat"`
		P     float64     `json:"p"`
		DoF   int         `json:"dof"`
	} `json:"chi2_contingency"`
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// splitmix64 and genSample rebuild the generator's samples bit for bit.
func splitmix64(state uint64) (uint64, uint64) {
	state += 0x9E3779B97F4A7C15
	z := state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return state, z ^ (z >> 31)
}

func genSample(seed uint64, n int, shift float64, grid int) []float64 {
	out := make([]float64, n)
	state := seed
	for i := range out {
		var acc uint64
		for range 4 {
			var z uint64
			state, z = splitmix64(state)
			acc += z >> 44
		}
		v := float64(acc)/float64(1<<20) - 2.0 + shift
		if grid > 0 {
			v = math.Floor(v*float64(uint64(1)<<grid)) / float64(uint64(1)<<grid)
		}
		out[i] = v
	}
	return out
}

const tol = 1e-9

func TestKS2SampGolden(t *testing.T) {
	g := loadGolden(t)
	if len(g.KS) == 0 {
		t.Fatal("no cases")
	}
	var worst float64
	for _, c := range g.KS {
		a := genSample(c.Seed*1000+1, c.N1, 0, c.Grid)
		b := genSample(c.Seed*1000+2, c.N2, c.Shift, c.Grid)
		r, err := KS2Samp(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if r.D != c.D {
			t.Errorf("seed %d (%d, %d): D = %v, scipy %v", c.Seed, c.N1, c.N2, r.D, c.D)
		}
		if d := math.Abs(r.P - c.P); d > tol || math.IsNaN(r.P) {
			t.Errorf("seed %d (%d, %d, shift %v): p = %.17g, scipy %.17g (|Δ| = %.3g)", c.Seed, c.N1, c.N2, c.Shift, r.P, c.P, d)
		} else {
			worst = max(worst, d)
		}
		if wantExact := max(c.N1, c.N2) <= maxExactN; r.Exact != wantExact {
			t.Errorf("seed %d: exact = %v, want %v", c.Seed, r.Exact, wantExact)
		}
	}
	t.Logf("ks_2samp: %d cases, worst |Δp| = %.3g (scipy %s)", len(g.KS), worst, g.SciPy)
}

func TestKolmogorovSFGolden(t *testing.T) {
	g := loadGolden(t)
	var worst float64
	for _, c := range g.KSTwo {
		got := KolmogorovSF(c.N, c.X)
		if d := math.Abs(got - c.SF); d > tol || math.IsNaN(got) {
			t.Errorf("kstwo.sf(%v, %d) = %.17g, scipy %.17g (|Δ| = %.3g)", c.X, c.N, got, c.SF, d)
		} else {
			worst = max(worst, d)
		}
	}
	t.Logf("kstwo.sf: %d cases, worst |Δ| = %.3g", len(g.KSTwo), worst)
}

func TestChi2ContingencyGolden(t *testing.T) {
	g := loadGolden(t)
	var worst float64
	for _, c := range g.Chi2 {
		r, err := Chi2Contingency(c.Table)
		if err != nil {
			t.Fatalf("%v: %v", c.Table, err)
		}
		if r.DoF != c.DoF {
			t.Errorf("%v: dof %d, scipy %d", c.Table, r.DoF, c.DoF)
		}
		if d := math.Abs(r.Stat - c.Stat); d > 1e-9*max(1, c.Stat) {
			t.Errorf("%v: stat %.17g, scipy %.17g", c.Table, r.Stat, c.Stat)
		}
		if d := math.Abs(r.P - c.P); d > tol || math.IsNaN(r.P) {
			t.Errorf("%v: p %.17g, scipy %.17g (|Δ| = %.3g)", c.Table, r.P, c.P, d)
		} else {
			worst = max(worst, d)
		}
	}
	t.Logf("chi2_contingency: %d cases, worst |Δp| = %.3g", len(g.Chi2), worst)
}
