package kernelshap

import (
	"context"
	"errors"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// model is a nonlinear model with interactions and two outputs.
func model(_ context.Context, rows [][]float64) ([][]float64, error) {
	out := make([][]float64, len(rows))
	for i, r := range rows {
		s := 0.0
		for j, v := range r {
			s += float64(j+1) * v * 0.1
		}
		a := r[0]*r[1] + s
		if len(r) > 2 {
			a += math.Sin(r[2])
		}
		if len(r) > 4 {
			a += math.Max(r[3], r[4]) * r[len(r)-1]
		}
		out[i] = []float64{a, 1 / (1 + math.Exp(-a))}
	}
	return out, nil
}

// exactShapley enumerates every subset: φ_i = Σ_S |S|!(M-|S|-1)!/M!
// (v(S∪{i}) - v(S)) with v(S) the mean output over the background when
// the features in S come from row.
func exactShapley(t *testing.T, row []float64, bg [][]float64, out int) []float64 {
	t.Helper()
	m := len(row)
	v := make([]float64, 1<<m)
	for s := range v {
		rows := make([][]float64, len(bg))
		for k, b := range bg {
			r := append([]float64(nil), b...)
			for f := range m {
				if s>>f&1 == 1 {
					r[f] = row[f]
				}
			}
			rows[k] = r
		}
		pred, _ := model(context.Background(), rows)
		for _, p := range pred {
			v[s] += p[out] / float64(len(bg))
		}
	}
	fact := func(n int) float64 {
		r := 1.0
		for i := 2; i <= n; i++ {
			r *= float64(i)
		}
		return r
	}
	phi := make([]float64, m)
	for i := range m {
		for s := range v {
			if s>>i&1 == 1 {
				continue
			}
			k := bits.OnesCount(uint(s))
			phi[i] += fact(k) * fact(m-k-1) / fact(m) * (v[s|1<<i] - v[s])
		}
	}
	return phi
}

func data(seed uint64, rows, m int) [][]float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([][]float64, rows)
	for i := range out {
		out[i] = make([]float64, m)
		for j := range out[i] {
			out[i][j] = rng.NormFloat64()
		}
	}
	return out
}

func TestMatchesExactShapley(t *testing.T) {
	for _, m := range []int{2, 3, 5, 8, 10} {
		bg := data(uint64(m), 12, m)
		x, err := New(t.Context(), model, bg, Config{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range data(100+uint64(m), 3, m) {
			phi, err := x.Explain(t.Context(), row)
			if err != nil {
				t.Fatal(err)
			}
			for out := range 2 {
				want := exactShapley(t, row, bg, out)
				for f := range m {
					if d := math.Abs(phi[out][f] - want[f]); d > 1e-3 {
						t.Fatalf("m=%d output %d feature %d: %v, exact %v", m, out, f, phi[out][f], want[f])
					}
				}
			}
		}
	}
}

// TestSampled: with fewer coalitions than subsets the estimate is still
// additive and close to the exact values.
func TestSampled(t *testing.T) {
	const m = 10
	bg := data(7, 10, m)
	x, err := New(t.Context(), model, bg, Config{NSamples: 300, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	row := data(8, 1, m)[0]
	phi, err := x.Explain(t.Context(), row)
	if err != nil {
		t.Fatal(err)
	}
	fx, _ := model(t.Context(), [][]float64{row})
	sum := x.ExpectedValue()[0]
	want := exactShapley(t, row, bg, 0)
	worst := 0.0
	for f := range m {
		sum += phi[0][f]
		worst = max(worst, math.Abs(phi[0][f]-want[f]))
	}
	if math.Abs(sum-fx[0][0]) > 1e-9 {
		t.Fatalf("values sum to %v, f(x) = %v", sum, fx[0][0])
	}
	if worst > 0.1 {
		t.Fatalf("sampled estimate off by %v", worst)
	}
	again, _ := x.Explain(t.Context(), row)
	if again[0][3] != phi[0][3] {
		t.Fatal("same seed, different estimate")
	}
}

// TestL1 keeps at most MaxFeatures non-zero values, still additive.
func TestL1(t *testing.T) {
	const m = 8
	bg := data(9, 10, m)
	x, err := New(t.Context(), model, bg, Config{MaxFeatures: 3})
	if err != nil {
		t.Fatal(err)
	}
	row := data(10, 1, m)[0]
	phi, err := x.Explain(t.Context(), row)
	if err != nil {
		t.Fatal(err)
	}
	fx, _ := model(t.Context(), [][]float64{row})
	nz, sum := 0, x.ExpectedValue()[0]
	for _, v := range phi[0] {
		if v != 0 {
			nz++
		}
		sum += v
	}
	if nz == 0 || nz > 3 || math.Abs(sum-fx[0][0]) > 1e-9 {
		t.Fatalf("%d features kept, sum %v, f(x) %v", nz, sum, fx[0][0])
	}
}

func TestConstantFeatureIsZero(t *testing.T) {
	bg := data(11, 5, 4)
	for _, r := range bg {
		r[2] = 1
	}
	x, err := New(t.Context(), model, bg, Config{})
	if err != nil {
		t.Fatal(err)
	}
	phi, err := x.Explain(t.Context(), []float64{0.5, -1, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if phi[0][2] != 0 {
		t.Fatalf("feature equal to the whole background got %v", phi[0][2])
	}
}

func TestErrors(t *testing.T) {
	boom := errors.New("boom")
	failing := func(context.Context, [][]float64) ([][]float64, error) { return nil, boom }
	if _, err := New(t.Context(), failing, data(1, 2, 2), Config{}); !errors.Is(err, boom) {
		t.Fatalf("predictor error: %v", err)
	}
	if _, err := New(t.Context(), model, nil, Config{}); err == nil {
		t.Fatal("empty background accepted")
	}
	if _, err := New(t.Context(), model, data(1, 2, 2), Config{NSamples: -1}); err == nil {
		t.Fatal("negative nsamples accepted")
	}
	x, _ := New(t.Context(), model, data(1, 2, 3), Config{})
	if _, err := x.Explain(t.Context(), []float64{1}); err == nil {
		t.Fatal("short row accepted")
	}
}
