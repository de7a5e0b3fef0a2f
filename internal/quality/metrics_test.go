package quality

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
)

type goldenCase struct {
	Name           string      `json:"name"`
	Pred           []string    `json:"pred"`
	Truth          []string    `json:"truth"`
	Probs          [][]float64 `json:"probs"`
	Accuracy       float64     `json:"accuracy"`
	PrecisionMacro float64     `json:"precision_macro"`
	RecallMacro    float64     `json:"recall_macro"`
	F1Macro        float64     `json:"f1_macro"`
	Labels         []string    `json:"labels"`
	Precision      []float64   `json:"precision"`
	Recall         []float64   `json:"recall"`
	F1             []float64   `json:"f1"`
	Support        []int64     `json:"support"`
	Confusion      [][]int64   `json:"confusion"`
	LogLoss        *float64    `json:"log_loss"`
	ROCAUC         *float64    `json:"roc_auc"`
	ValuePred      []float64   `json:"value_pred"`
	ValueTruth     []float64   `json:"value_truth"`
	MAE, RMSE, R2  float64
}

// TestGoldenSklearn checks every metric against sklearn.metrics on the
// generated cases of testdata/golden.json (testdata/gen/gen.py), fed
// through a window as joined feedback would be.
func TestGoldenSklearn(t *testing.T) {
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 9 {
		t.Fatalf("%d golden cases", len(g.Cases))
	}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			n := max(len(c.Truth), len(c.ValueTruth))
			w := newWindow("m", "r", n)
			for i := range c.Truth {
				s := sample{kind: KindLabel, pred: c.Pred[i], truth: Truth{Label: c.Truth[i]}}
				if c.Probs != nil {
					s.kind, s.probs = KindProbs, c.Probs[i]
				}
				w.push(s)
			}
			for i := range c.ValueTruth {
				w.push(sample{kind: KindValue, value: c.ValuePred[i], truth: Truth{Value: c.ValueTruth[i], Numeric: true}})
			}
			s := w.snapshot()
			if c.ValueTruth != nil {
				r := s.Regression
				near(t, "mae", r.MAE, c.MAE)
				near(t, "rmse", r.RMSE, c.RMSE)
				near(t, "r2", *r.R2, c.R2)
				return
			}
			cl := s.Classification
			near(t, "accuracy", cl.Accuracy, c.Accuracy)
			near(t, "precision_macro", cl.PrecisionMacro, c.PrecisionMacro)
			near(t, "recall_macro", cl.RecallMacro, c.RecallMacro)
			near(t, "f1_macro", cl.F1Macro, c.F1Macro)
			if !slices.Equal(cl.Labels, c.Labels) {
				t.Fatalf("labels %v, sklearn %v", cl.Labels, c.Labels)
			}
			for i, pc := range cl.PerClass {
				near(t, "precision "+pc.Label, pc.Precision, c.Precision[i])
				near(t, "recall "+pc.Label, pc.Recall, c.Recall[i])
				near(t, "f1 "+pc.Label, pc.F1, c.F1[i])
				if pc.Support != c.Support[i] {
					t.Errorf("support %s: %d, sklearn %d", pc.Label, pc.Support, c.Support[i])
				}
			}
			for i := range c.Confusion {
				if !slices.Equal(cl.Confusion[i], c.Confusion[i]) {
					t.Errorf("confusion row %d: %v, sklearn %v", i, cl.Confusion[i], c.Confusion[i])
				}
			}
			if c.LogLoss != nil {
				if cl.LogLoss == nil || cl.ROCAUC == nil {
					t.Fatal("no log loss or AUC for probabilities")
				}
				near(t, "log_loss", *cl.LogLoss, *c.LogLoss)
				near(t, "roc_auc", *cl.ROCAUC, *c.ROCAUC)
			} else if cl.LogLoss != nil {
				t.Error("log loss without probabilities")
			}
		})
	}
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("%s = %.17g, sklearn %.17g (diff %g)", what, got, want, got-want)
	}
}

func TestAUCUndefinedWithoutBothClasses(t *testing.T) {
	if _, ok := rocAUC([]int{1, 1}, [][]float64{{0.2, 0.8}, {0.6, 0.4}}); ok {
		t.Fatal("AUC defined with one class only")
	}
	if _, ok := rocAUC([]int{0, 1, 1}, [][]float64{{.2, .7, .1}, {.6, .3, .1}, {.1, .8, .1}}); ok {
		t.Fatal("multiclass AUC defined with a class absent")
	}
}
