package attack_test

import (
	"testing"

	"github.com/ferryserve/ferry/internal/attack"
)

// BenchmarkAttack is the latency of one attack request's work (one
// instance) against the examples' models on a real ferry server on
// loopback, with the queries it spent.
func BenchmarkAttack(b *testing.B) {
	host := startPredictor(b)
	iris, irisY := irisRows(b)
	img, imgY := digits(b)
	tab := &attack.Predictor{Host: host, Model: "iris", Shape: []int{4}}
	im := &attack.Predictor{Host: host, Model: "digits", Protocol: attack.ProtocolV2, InputName: "input", Shape: []int{8, 8}}
	for _, c := range []struct {
		name  string
		clf   *attack.Predictor
		typ   string
		kv    map[string]string
		x     []float64
		y     int
		shape []int
	}{
		{"iris/SquareAttack", tab, attack.TypeSquareAttack, map[string]string{"eps": "0.5", "max_iter": "1000"}, iris[70], irisY[70], []int{4}},
		{"iris/HopSkipJump", tab, attack.TypeHopSkipJump, map[string]string{"max_iter": "10", "max_eval": "500"}, iris[70], irisY[70], []int{4}},
		{"digits/SquareAttack", im, attack.TypeSquareAttack, map[string]string{"eps": "0.1", "max_iter": "1000", "clip_values": "0,1"}, img[3], imgY[3], []int{8, 8}},
		{"digits/HopSkipJump", im, attack.TypeHopSkipJump, map[string]string{"max_iter": "10", "max_eval": "500", "clip_values": "0,1"}, img[3], imgY[3], []int{8, 8}},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg, err := attack.ParseConfig(c.typ, c.kv)
			if err != nil {
				b.Fatal(err)
			}
			queries := 0
			for b.Loop() {
				res, err := attack.Run(b.Context(), c.clf, cfg, c.shape, [][]float64{c.x}, []int{c.y}, nil)
				if err != nil {
					b.Fatal(err)
				}
				queries += res[0].Queries
			}
			b.ReportMetric(float64(queries)/float64(b.N), "queries/op")
		})
	}
}
