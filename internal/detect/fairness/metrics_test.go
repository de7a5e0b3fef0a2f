package fairness

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
)

func ageConfig(t *testing.T) *Config {
	t.Helper()
	c := &Config{
		Features: []string{"age", "x"}, Favorable: 1, Unfavorable: 0,
		Privileged: []Group{{"age": 1}}, Unprivileged: []Group{{"age": 0}},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func near(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if math.IsInf(a, 0) || math.IsInf(b, 0) {
		return a == b
	}
	return math.Abs(a-b) <= 1e-9
}

// Hand-computed: privileged (age 1) rows 0-3 with outputs 1,1,1,0 (rate
// 3/4); unprivileged rows 4-7 with 1,0,0,0 (rate 1/4).
func TestDatasetByHand(t *testing.T) {
	c := ageConfig(t)
	rows := [][]float64{{1, 0}, {1, 1}, {1, 2}, {1, 3}, {0, 10}, {0, 11}, {0, 12}, {0, 13}}
	out := []float64{1, 1, 1, 0, 1, 0, 0, 0}
	m, err := c.Dataset(rows, out)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"num_instances", m.NumInstances, 8},
		{"num_positives", m.NumPositives, 4},
		{"num_negatives", m.NumNegatives, 4},
		{"base_rate", m.BaseRate, 0.5},
		{"base_rate_privileged", m.BaseRatePrivileged, 0.75},
		{"base_rate_unprivileged", m.BaseRateUnprivileged, 0.25},
		{"statistical_parity_difference", m.StatisticalParityDifference, -0.5},
		{"disparate_impact", m.DisparateImpact, 1.0 / 3},
		{"privileged_instances", m.PrivilegedInstances, 4},
		{"unprivileged_instances", m.UnprivilegedInstances, 4},
	} {
		if !near(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestDatasetEdgeCases(t *testing.T) {
	c := ageConfig(t)
	for _, tc := range []struct {
		name           string
		rows           [][]float64
		out            []float64
		wantDI, wantSP float64
	}{
		// No favourable privileged outcome: AIF360 divides by zero.
		{"privileged rate zero", [][]float64{{1, 0}, {0, 0}}, []float64{0, 1}, math.Inf(1), 1},
		{"both rates zero", [][]float64{{1, 0}, {0, 0}}, []float64{0, 0}, math.NaN(), 0},
		// No unprivileged instances: their base rate is 0/0.
		{"no unprivileged", [][]float64{{1, 0}, {1, 1}}, []float64{1, 0}, math.NaN(), math.NaN()},
		// An instance in neither group counts only in the totals.
		{"outsider", [][]float64{{1, 0}, {0, 0}, {7, 0}}, []float64{1, 1, 0}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := c.Dataset(tc.rows, tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if !near(m.DisparateImpact, tc.wantDI) || !near(m.StatisticalParityDifference, tc.wantSP) {
				t.Errorf("disparate_impact %v, statistical_parity_difference %v; want %v, %v", m.DisparateImpact, m.StatisticalParityDifference, tc.wantDI, tc.wantSP)
			}
		})
	}
}

func TestDatasetErrors(t *testing.T) {
	c := ageConfig(t)
	overlap := &Config{Features: []string{"age", "sex"}, Favorable: 1, Unfavorable: 0,
		Privileged: []Group{{"age": 1}}, Unprivileged: []Group{{"sex": 0}}}
	if err := overlap.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    *Config
		rows [][]float64
		out  []float64
		want string
	}{
		{"no instances", c, nil, nil, "no instances"},
		{"count mismatch", c, [][]float64{{1, 0}}, []float64{1, 0}, "2 outputs for 1 instances"},
		{"short row", c, [][]float64{{1}}, []float64{1}, "instance 0 has 1 values, want 2"},
		{"third label", c, [][]float64{{1, 0}, {0, 0}}, []float64{1, 0.5}, "outputs[1] is 0.5"},
		{"overlap", overlap, [][]float64{{0, 1}, {1, 0}}, []float64{1, 0}, "instance 1 is in both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Dataset(tc.rows, tc.out)
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrBadInput containing %q", err, tc.want)
			}
		})
	}
}

// Hand-computed on 8 instances. Privileged (age 1): truth 1,1,0,0, pred
// 1,0,1,0: TPR 1/2, FPR 1/2, accuracy 1/2. Unprivileged (age 0): truth
// 1,1,0,0, pred 1,1,0,0: TPR 1, FPR 0, accuracy 1.
func TestClassificationByHand(t *testing.T) {
	c := ageConfig(t)
	rows := [][]float64{{1, 0}, {1, 1}, {1, 2}, {1, 3}, {0, 0}, {0, 1}, {0, 2}, {0, 3}}
	truth := []float64{1, 1, 0, 0, 1, 1, 0, 0}
	pred := []float64{1, 0, 1, 0, 1, 1, 0, 0}
	m, err := c.Classification(rows, truth, pred)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"equal_opportunity_difference", m.EqualOpportunityDifference, 0.5},
		{"average_odds_difference", m.AverageOddsDifference, 0.5 * ((0 - 0.5) + (1 - 0.5))},
		{"accuracy", m.Accuracy, 0.75},
		{"accuracy_privileged", m.AccuracyPrivileged, 0.5},
		{"accuracy_unprivileged", m.AccuracyUnprivileged, 1},
	} {
		if !near(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if _, err := c.Classification(rows, truth[:3], pred); !errors.Is(err, ErrBadInput) {
		t.Errorf("short labels: err = %v, want ErrBadInput", err)
	}
	bad := append([]float64(nil), truth...)
	bad[2] = 3
	if _, err := c.Classification(rows, bad, pred); err == nil || !strings.Contains(err.Error(), "labels[2] is 3") {
		t.Errorf("label 3: err = %v, want one naming labels[2]", err)
	}
}

func TestConsistency(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rows   [][]float64
		labels []float64
		k      int
		want   float64
	}{
		// Two far-apart clusters of 5 with one label each: every neighbourhood agrees.
		{"pure clusters", [][]float64{{0}, {0.1}, {0.2}, {0.3}, {0.4}, {10}, {10.1}, {10.2}, {10.3}, {10.4}},
			[]float64{1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, 5, 1},
		// One cluster, labels 1,0,0,0,0: neighbourhood mean 0.2 everywhere;
		// |1-0.2| + 4·|0-0.2| = 1.6 over 5.
		{"one dissenter", [][]float64{{0}, {1}, {2}, {3}, {4}}, []float64{1, 0, 0, 0, 0}, 5, 1 - 1.6/5},
		// k=1: each row is its own neighbour.
		{"self only", [][]float64{{0}, {1}}, []float64{1, 0}, 1, 1},
		// Fewer rows than k: all rows are neighbours.
		{"small", [][]float64{{0}, {1}}, []float64{1, 0}, 5, 0.5},
		// Raw label values, as AIF360 uses them: labels 2 and 1.
		{"raw labels", [][]float64{{0}, {1}, {2}, {3}, {4}}, []float64{2, 1, 1, 1, 1}, 5, 1 - 1.6/5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Consistency(tc.rows, tc.labels, tc.k); !near(got, tc.want) {
				t.Errorf("Consistency = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"no features", Config{Favorable: 1}, "no feature names"},
		{"repeated feature", Config{Features: []string{"a", "a"}, Favorable: 1}, `"a" is empty or repeated`},
		{"same labels", Config{Features: []string{"a"}, Favorable: 1, Unfavorable: 1}, "two different numbers"},
		{"no privileged", Config{Features: []string{"a"}, Favorable: 1, Unprivileged: []Group{{"a": 0}}}, "no privileged groups"},
		{"empty group", Config{Features: []string{"a"}, Favorable: 1, Privileged: []Group{{}}, Unprivileged: []Group{{"a": 0}}}, "empty privileged group"},
		{"unknown attribute", Config{Features: []string{"a"}, Favorable: 1, Privileged: []Group{{"age": 1}}, Unprivileged: []Group{{"a": 0}}}, `"age" is not a feature name`},
		{"negative neighbours", Config{Features: []string{"a"}, Favorable: 1, Privileged: []Group{{"a": 1}}, Unprivileged: []Group{{"a": 0}}, Neighbors: -1}, "neighbors -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// goldenCase is one case of testdata/golden.json, written by
// testdata/gen/gen.py with numpy and scikit-learn.
type goldenCase struct {
	Name           string             `json:"name"`
	FeatureNames   []string           `json:"feature_names"`
	Privileged     []Group            `json:"privileged_groups"`
	Unprivileged   []Group            `json:"unprivileged_groups"`
	Favorable      float64            `json:"favorable_label"`
	Unfavorable    float64            `json:"unfavorable_label"`
	Instances      [][]float64        `json:"instances"`
	Outputs        []float64          `json:"outputs"`
	Labels         []float64          `json:"labels"`
	Dataset        map[string]float64 `json:"dataset"`
	Classification map[string]float64 `json:"classification"`
}

func readGolden(t testing.TB) []goldenCase {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func TestGolden(t *testing.T) {
	for _, gc := range readGolden(t) {
		t.Run(gc.Name, func(t *testing.T) {
			c := &Config{Features: gc.FeatureNames, Favorable: gc.Favorable, Unfavorable: gc.Unfavorable,
				Privileged: gc.Privileged, Unprivileged: gc.Unprivileged}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			d, err := c.Dataset(gc.Instances, gc.Outputs)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := c.Classification(gc.Instances, gc.Labels, gc.Outputs)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{
				"num_instances": d.NumInstances, "num_positives": d.NumPositives, "num_negatives": d.NumNegatives,
				"base_rate": d.BaseRate, "base_rate_privileged": d.BaseRatePrivileged, "base_rate_unprivileged": d.BaseRateUnprivileged,
				"statistical_parity_difference": d.StatisticalParityDifference, "disparate_impact": d.DisparateImpact,
				"consistency": d.Consistency,
				"accuracy":    cl.Accuracy, "accuracy_privileged": cl.AccuracyPrivileged, "accuracy_unprivileged": cl.AccuracyUnprivileged,
				"equal_opportunity_difference": cl.EqualOpportunityDifference, "average_odds_difference": cl.AverageOddsDifference,
			}
			want := map[string]float64{}
			for k, v := range gc.Dataset {
				want[k] = v
			}
			for k, v := range gc.Classification {
				want[k] = v
			}
			if len(want) != len(got) {
				t.Fatalf("golden has %d metrics, the test checks %d", len(want), len(got))
			}
			for k, w := range want {
				if g, ok := got[k]; !ok || !near(g, w) {
					t.Errorf("%s = %v, want %v", k, g, w)
				}
			}
		})
	}
}
