// Package treeshaptest checks TreeSHAP values against their definition:
// exact Shapley values by enumerating every feature subset, with the
// path-dependent value function (a feature outside the subset follows
// both children, weighted by their training covers). Runtimes use it to
// test the ensembles they lay open.
package treeshaptest

import (
	"fmt"
	"math"
	"testing"

	"github.com/ferryserve/ferry/internal/explain/treeshap"
	"github.com/ferryserve/ferry/internal/runtime"
)

// MaxFeatures bounds enumeration: 2^MaxFeatures subsets per row.
const MaxFeatures = 12

// Margins evaluates e's margins for x by walking every tree.
func Margins(e *runtime.TreeEnsemble, x []float64) []float64 {
	out := append([]float64(nil), e.Base...)
	for i := range e.Trees {
		t := &e.Trees[i]
		n := 0
		for !t.Nodes[n].IsLeaf() {
			nd := &t.Nodes[n]
			if nd.GoesLeft(x[nd.Feature]) {
				n = int(nd.Left)
			} else {
				n = int(nd.Right)
			}
		}
		out[t.Group] += t.Weight * t.Nodes[n].Value
	}
	return out
}

// Exact returns phi[group][feature] and the expected values of e at x by
// enumeration. e must have at most MaxFeatures features.
func Exact(e *runtime.TreeEnsemble, x []float64) (phi [][]float64, expected []float64) {
	f := e.NumFeatures
	if f > MaxFeatures {
		panic(fmt.Sprintf("treeshaptest: %d features, enumeration takes at most %d", f, MaxFeatures))
	}
	v := make([][]float64, e.NumGroups) // v[g][subset]
	for g := range v {
		v[g] = make([]float64, 1<<f)
		for s := range v[g] {
			v[g][s] = e.Base[g]
		}
	}
	for i := range e.Trees {
		t := &e.Trees[i]
		for s := range 1 << f {
			v[t.Group][s] += t.Weight * value(t, 0, x, uint(s))
		}
	}
	fact := make([]float64, f+1)
	fact[0] = 1
	for i := 1; i <= f; i++ {
		fact[i] = fact[i-1] * float64(i)
	}
	phi = make([][]float64, e.NumGroups)
	expected = make([]float64, e.NumGroups)
	for g := range phi {
		phi[g] = make([]float64, f)
		expected[g] = v[g][0]
		for i := range f {
			for s := range 1 << f {
				if s&(1<<i) != 0 {
					continue
				}
				k := popcount(s)
				w := fact[k] * fact[f-k-1] / fact[f]
				phi[g][i] += w * (v[g][s|1<<i] - v[g][s])
			}
		}
	}
	return phi, expected
}

// value is the tree's expected output at node n given the features in
// subset s; the others follow both children by cover.
func value(t *runtime.Tree, n int, x []float64, s uint) float64 {
	nd := &t.Nodes[n]
	if nd.IsLeaf() {
		return nd.Value
	}
	if s&(1<<uint(nd.Feature)) != 0 {
		if nd.GoesLeft(x[nd.Feature]) {
			return value(t, int(nd.Left), x, s)
		}
		return value(t, int(nd.Right), x, s)
	}
	l, r := &t.Nodes[nd.Left], &t.Nodes[nd.Right]
	return (l.Cover*value(t, int(nd.Left), x, s) + r.Cover*value(t, int(nd.Right), x, s)) / nd.Cover
}

func popcount(s int) int {
	n := 0
	for ; s != 0; s &= s - 1 {
		n++
	}
	return n
}

// Check explains rows with treeshap and checks, for every row and group,
// that the values equal the enumerated Shapley values within exactTol
// and that values plus the expected value equal the margin within 1e-6
// (additivity). It returns the largest differences seen.
func Check(t testing.TB, e *runtime.TreeEnsemble, rows [][]float64, exactTol float64) (worstExact, worstSum float64) {
	t.Helper()
	x, err := treeshap.New(e)
	if err != nil {
		t.Fatal(err)
	}
	f, g := e.NumFeatures, e.NumGroups
	out := make([]float64, x.Width())
	for ri, row := range rows {
		if err := x.Shap(row, out); err != nil {
			t.Fatal(err)
		}
		margins := Margins(e, row)
		var phi [][]float64
		if f <= MaxFeatures {
			phi, _ = Exact(e, row)
		}
		for k := range g {
			vals := out[k*(f+1) : (k+1)*(f+1)]
			sum := 0.0
			for j, v := range vals {
				sum += v
				if phi != nil && j < f {
					d := math.Abs(v - phi[k][j])
					worstExact = max(worstExact, d)
					if !(d <= exactTol) {
						t.Errorf("row %d group %d feature %d: TreeSHAP %.12g, enumeration %.12g", ri, k, j, v, phi[k][j])
					}
				}
			}
			d := math.Abs(sum - margins[k])
			worstSum = max(worstSum, d)
			if !(d <= 1e-6) {
				t.Errorf("row %d group %d: values + expected = %.12g, margin %.12g", ri, k, sum, margins[k])
			}
		}
	}
	return worstExact, worstSum
}
