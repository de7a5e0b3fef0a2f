package anchor

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func training(seed uint64, n int) [][]float64 {
	rng := rand.New(rand.NewPCG(seed, 2))
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = []float64{rng.NormFloat64(), float64(rng.IntN(3)), rng.Float64(), rng.NormFloat64()}
	}
	return rows
}

func data() Data {
	return Data{
		FeatureNames:  []string{"income", "status", "noise", "age"},
		CategoryNames: map[int][]string{1: {"single", "married", "divorced"}},
		Rows:          training(1, 2000),
	}
}

// classifier counts its calls' rows and labels with rule.
type classifier struct {
	rule func([]float64) bool
	rows int
}

func (c *classifier) classify(_ context.Context, rows [][]float64) ([]int, error) {
	out := make([]int, len(rows))
	for i, r := range rows {
		if c.rule(r) {
			out[i] = 1
		}
		c.rows++
	}
	return out, nil
}

// recheck estimates the anchor's precision from fresh samples drawn with
// another seed.
func recheck(x *Explainer, c *classifier, row []float64, res *Result, n int) float64 {
	rng := rand.New(rand.NewPCG(99, 99))
	samples := x.Sample(rng, row, res.Features, n)
	labels, _ := c.classify(context.Background(), samples)
	hit := 0
	for _, l := range labels {
		if l == res.Label {
			hit++
		}
	}
	return float64(hit) / float64(n)
}

func TestAnchorsHoldOnResampling(t *testing.T) {
	cases := []struct {
		name string
		rule func([]float64) bool
		row  []float64
		want []string // features the anchor must use
	}{
		{"conjunction", func(r []float64) bool { return r[0] > 0.5 && r[1] != 0 }, []float64{1.5, 2, 0.3, 0}, []string{"income", "status = divorced"}},
		{"linear", func(r []float64) bool { return r[0]+0.3*r[3] > 0.5 }, []float64{2, 1, 0.5, 0.5}, []string{"income"}},
		{"negative", func(r []float64) bool { return r[0] > 0.5 && r[1] != 0 }, []float64{-1, 0, 0.9, 1}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &classifier{rule: tc.rule}
			x, err := New(c.classify, data(), Config{Seed: 4})
			if err != nil {
				t.Fatal(err)
			}
			res, err := x.Explain(t.Context(), tc.row)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Reached || len(res.Anchor) == 0 {
				t.Fatalf("no anchor reached the threshold: %+v", res)
			}
			joined := strings.Join(res.Anchor, " AND ")
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Errorf("anchor %q lacks %q", joined, w)
				}
			}
			if p := recheck(x, c, tc.row, res, 5000); p < 0.95 {
				t.Fatalf("anchor %q: precision %.3f on fresh samples, search said %.3f", joined, p, res.Precision)
			}
			if res.Coverage <= 0 || res.Coverage > 1 {
				t.Fatalf("coverage %v", res.Coverage)
			}
			t.Logf("%s: %q precision %.3f coverage %.3f, %d rows", tc.name, joined, res.Precision, res.Coverage, res.Samples)
		})
	}
}

func TestConditions(t *testing.T) {
	x, err := New(nil, data(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	b := x.discretize([]float64{-5, 1, 0.5, 9})
	if got := x.condition(0, b[0]); !strings.HasPrefix(got, "income <= ") {
		t.Errorf("lowest bin: %q", got)
	}
	if got := x.condition(3, b[3]); !strings.HasPrefix(got, "age > ") {
		t.Errorf("highest bin: %q", got)
	}
	if got := x.condition(1, b[1]); got != "status = married" {
		t.Errorf("category: %q", got)
	}
	if got := x.condition(2, b[2]); !strings.Contains(got, " < noise <= ") {
		t.Errorf("middle bin: %q", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"threshold": {Threshold: 1.5},
		"delta":     {Delta: -1},
		"beam_size": {BeamSize: -2},
		"batch":     {BatchSize: -1},
	} {
		if _, err := New(nil, data(), cfg); err == nil || !strings.Contains(err.Error(), strings.Split(name, "_")[0]) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := New(nil, Data{}, Config{}); err == nil {
		t.Error("empty data accepted")
	}
	boom := errors.New("boom")
	x, _ := New(func(context.Context, [][]float64) ([]int, error) { return nil, boom }, data(), Config{})
	if _, err := x.Explain(t.Context(), []float64{0, 0, 0, 0}); !errors.Is(err, boom) {
		t.Fatalf("classifier error: %v", err)
	}
}
