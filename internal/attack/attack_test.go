package attack_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/ferryserve/ferry/internal/attack"
)

// irisRows reads the iris data kept with the explainer examples; the
// labels are the species (50 rows each, in order).
func irisRows(t testing.TB) ([][]float64, []int) {
	t.Helper()
	b, err := os.ReadFile("../../examples/explainers/iris-data/explainer.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Data [][]float64 `json:"data"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	labels := make([]int, len(doc.Data))
	for i := range labels {
		labels[i] = i / 50
	}
	return doc.Data, labels
}

func digits(t testing.TB) ([][]float64, []int) {
	t.Helper()
	b, err := os.ReadFile("../../examples/attack/digits-test.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Images [][][]float64 `json:"images"`
		Labels []int         `json:"labels"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	flat := make([][]float64, len(doc.Images))
	for i, im := range doc.Images {
		for _, row := range im {
			flat[i] = append(flat[i], row...)
		}
	}
	return flat, doc.Labels
}

// check asserts the contract on every result: the example lies in the
// norm ball and the clip box, and the predictor, asked independently,
// gives adversarial_prediction on it. It returns the success count and
// the queries spent on successes.
func check(t *testing.T, clf attack.Classifier, cfg attack.Config, xs [][]float64, ys []int, res []attack.Result) (ok, queries int) {
	t.Helper()
	advs := make([][]float64, len(res))
	for i, r := range res {
		advs[i] = r.Adversarial
		var l2, li float64
		for j, v := range r.Adversarial {
			d := v - xs[i][j]
			l2 += d * d
			li = math.Max(li, math.Abs(d))
			if v < cfg.ClipMin || v > cfg.ClipMax {
				t.Errorf("instance %d feature %d: %v outside [%v, %v]", i, j, v, cfg.ClipMin, cfg.ClipMax)
			}
		}
		l2 = math.Sqrt(l2)
		dist := li
		if cfg.Norm == attack.NormL2 {
			dist = l2
		}
		if cfg.Eps > 0 && dist > cfg.Eps {
			t.Errorf("instance %d: distance %v outside the ball of radius %v (%s)", i, dist, cfg.Eps, cfg.Norm)
		}
		if math.Abs(l2-r.L2) > 1e-12 || math.Abs(li-r.LInf) > 1e-12 {
			t.Errorf("instance %d: reported L2 %v Linf %v, computed %v %v", i, r.L2, r.LInf, l2, li)
		}
		if r.Success != (r.AdvPrediction != ys[i]) {
			t.Errorf("instance %d: success %v with adversarial prediction %d, label %d", i, r.Success, r.AdvPrediction, ys[i])
		}
		if r.Success {
			ok++
			queries += r.Queries
		}
	}
	out, err := clf.Predict(context.Background(), advs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if got := argmax(o); got != res[i].AdvPrediction {
			t.Errorf("instance %d: the predictor says %d on the example, the attack reported %d", i, got, res[i].AdvPrediction)
		}
	}
	return ok, queries
}

func argmax(s []float64) int {
	best := 0
	for k, v := range s {
		if v > s[best] {
			best = k
		}
	}
	return best
}

func every(xs [][]float64, ys []int, step int) ([][]float64, []int) {
	var a [][]float64
	var b []int
	for i := 0; i < len(xs); i += step {
		a, b = append(a, xs[i]), append(b, ys[i])
	}
	return a, b
}

// TestAttacksOnServedModels attacks the examples' XGBoost iris model (V1)
// and ONNX digits model (V2) on a real ferry server, and logs the success
// rates and queries per success that docs/trust.md reports
// (go test -v -run AttacksOnServedModels ./internal/attack/).
func TestAttacksOnServedModels(t *testing.T) {
	host := startPredictor(t)
	iris, irisY := irisRows(t)
	img, imgY := digits(t)
	iris, irisY = every(iris, irisY, 5)
	hsjIter := "10"
	if raceEnabled || testing.Short() { // fewer queries: the race detector slows every call
		hsjIter = "3"
		img, imgY = img[:10], imgY[:10]
	}
	tab := &attack.Predictor{Host: host, Model: "iris", Shape: []int{4}}
	im := &attack.Predictor{Host: host, Model: "digits", Protocol: attack.ProtocolV2, InputName: "input", Shape: []int{8, 8}}
	cases := []struct {
		name  string
		clf   *attack.Predictor
		typ   string
		cfg   map[string]string
		xs    [][]float64
		ys    []int
		shape []int
		min   float64 // least success rate expected
	}{
		{"iris/square-linf", tab, attack.TypeSquareAttack, map[string]string{"eps": "0.5", "max_iter": "200", "nb_classes": "3"}, iris, irisY, []int{4}, 0.2},
		{"iris/square-l2", tab, attack.TypeSquareAttack, map[string]string{"eps": "1", "norm": "2", "max_iter": "200"}, iris, irisY, []int{4}, 0.3},
		{"iris/hopskipjump-l2", tab, attack.TypeHopSkipJump, map[string]string{"max_iter": hsjIter, "max_eval": "500", "eps": "1"}, iris, irisY, []int{4}, 0.3},
		{"digits/square-linf", im, attack.TypeSquareAttack, map[string]string{"eps": "0.1", "max_iter": "1000", "clip_values": "0,1"}, img, imgY, []int{8, 8}, 0.3},
		{"digits/square-l2", im, attack.TypeSquareAttack, map[string]string{"eps": "1", "norm": "2", "max_iter": "1000", "clip_values": "0,1"}, img, imgY, []int{8, 8}, 0.3},
		{"digits/hopskipjump-l2", im, attack.TypeHopSkipJump, map[string]string{"max_iter": hsjIter, "max_eval": "500", "clip_values": "0,1", "eps": "2"}, img, imgY, []int{8, 8}, 0.5},
		{"digits/hopskipjump-linf", im, attack.TypeHopSkipJump, map[string]string{"max_iter": hsjIter, "max_eval": "500", "clip_values": "0,1", "norm": "inf", "eps": "0.3"}, img, imgY, []int{8, 8}, 0.3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := attack.ParseConfig(c.typ, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := attack.Run(t.Context(), c.clf, cfg, c.shape, c.xs, c.ys, nil)
			if err != nil {
				t.Fatal(err)
			}
			ok, q := check(t, c.clf, cfg, c.xs, c.ys, res)
			rate := float64(ok) / float64(len(res))
			perOK := math.NaN()
			if ok > 0 {
				perOK = float64(q) / float64(ok)
			}
			t.Logf("%s %v: success %d/%d = %.2f, queries per success %.0f", c.typ, c.cfg, ok, len(res), rate, perOK)
			if rate < c.min {
				t.Errorf("success rate %.2f, want at least %.2f", rate, c.min)
			}
		})
	}
}
