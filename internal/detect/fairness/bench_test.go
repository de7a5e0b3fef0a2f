package fairness

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkEvaluate measures one bias detector request: n instances of 20
// features, consistency included (quadratic in n).
func BenchmarkEvaluate(b *testing.B) {
	names := make([]string, 20)
	for i := range names {
		names[i] = fmt.Sprint("f", i)
	}
	c := &Config{Features: names, Favorable: 1, Unfavorable: 0,
		Privileged: []Group{{"f0": 1}}, Unprivileged: []Group{{"f0": 0}}}
	if err := c.Validate(); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{100, 1000} {
		req := Request{Instances: make([][]float64, n), Outputs: make([]float64, n)}
		for i := range n {
			row := make([]float64, 20)
			row[0] = float64(rng.IntN(2))
			for j := 1; j < 20; j++ {
				row[j] = rng.NormFloat64()
			}
			req.Instances[i], req.Outputs[i] = row, float64(rng.IntN(2))
		}
		b.Run(fmt.Sprint("instances=", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Evaluate(c, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
