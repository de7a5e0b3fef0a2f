package quality

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMergeClassificationEqualsTheUnion(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	labels := []string{"2", "10", "3", "7"}
	var allP, allT []string
	var parts []*Classification
	for part := range 3 {
		var p, tr []string
		for range 40 + part*17 {
			// Each part sees a subset of the labels, so the merge must
			// align matrices over different label sets.
			p = append(p, labels[rng.IntN(2+part)])
			tr = append(tr, labels[rng.IntN(2+part)])
		}
		allP, allT = append(allP, p...), append(allT, tr...)
		parts = append(parts, classify(p, tr))
	}
	got, want := MergeClassification(parts), classify(allP, allT)
	if fmt.Sprint(got.Labels) != fmt.Sprint(want.Labels) || fmt.Sprint(got.Confusion) != fmt.Sprint(want.Confusion) {
		t.Fatalf("merged labels %v matrix %v, want %v %v", got.Labels, got.Confusion, want.Labels, want.Confusion)
	}
	for name, pair := range map[string][2]float64{
		"accuracy": {got.Accuracy, want.Accuracy}, "precision": {got.PrecisionMacro, want.PrecisionMacro},
		"recall": {got.RecallMacro, want.RecallMacro}, "f1": {got.F1Macro, want.F1Macro},
	} {
		if math.Abs(pair[0]-pair[1]) > 1e-12 {
			t.Errorf("%s: merged %v, over the union %v", name, pair[0], pair[1])
		}
	}
	if got.Samples != len(allT) {
		t.Errorf("samples %d, want %d", got.Samples, len(allT))
	}
}

func TestMergeRegressionEqualsTheUnion(t *testing.T) {
	a := regress([]float64{1, 2, 3}, []float64{1.5, 2, 2})
	b := regress([]float64{10, -1}, []float64{8, 0})
	got := MergeRegression([]*Regression{a, nil, b})
	want := regress([]float64{1, 2, 3, 10, -1}, []float64{1.5, 2, 2, 8, 0})
	if math.Abs(got.MAE-want.MAE) > 1e-12 || math.Abs(got.RMSE-want.RMSE) > 1e-12 || got.Samples != 5 || got.R2 != nil {
		t.Errorf("merged %+v, want MAE %v RMSE %v over 5 samples and no R²", got, want.MAE, want.RMSE)
	}
}

func TestMergeFeedbackKeepsTheMostInformativeOutcome(t *testing.T) {
	a := FeedbackResponse{Model: "m", Outcomes: []Result{{ID: "x", Outcome: Unknown}, {ID: "y", Outcome: Joined, Revision: "r1"}, {ID: "z", Outcome: Unknown}}}
	b := FeedbackResponse{Model: "m", Outcomes: []Result{{ID: "x", Outcome: Expired}, {ID: "y", Outcome: Unknown}, {ID: "z", Outcome: Unknown}}}
	got, err := MergeFeedback([]FeedbackResponse{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if got.Outcomes[0].Outcome != Expired || got.Outcomes[1].Revision != "r1" || got.Outcomes[2].Outcome != Unknown {
		t.Errorf("merged %+v", got.Outcomes)
	}
	if want := (Counts{Received: 3, Joined: 1, Expired: 1, Unknown: 1}); got.Counts != want {
		t.Errorf("counts %+v, want %+v", got.Counts, want)
	}
	b.Outcomes = b.Outcomes[:2]
	if _, err := MergeFeedback([]FeedbackResponse{a, b}); err == nil {
		t.Error("answers of different lengths merged")
	}
}

func TestOpenSlotGivesEachProcessItsOwnJournal(t *testing.T) {
	dir := t.TempDir()
	a, err := OpenSlot(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := Open(Config{Dir: a.Dir()}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open of a locked journal: %v, want ErrLocked", err)
	}
	b, err := OpenSlot(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if a.Dir() == b.Dir() || !strings.HasSuffix(b.Dir(), "replica-1") {
		t.Errorf("slots %s and %s", a.Dir(), b.Dir())
	}
	// A replica that stops frees its slot for the next one.
	if err := b.Record(&Prediction{Model: "m", Revision: "r", ID: "kept", Time: time.Now().UnixNano(), Rows: []Row{{Kind: KindLabel, Label: "1"}}}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	c, err := OpenSlot(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Dir() != b.Dir() {
		t.Errorf("restart took %s, want the freed %s", c.Dir(), b.Dir())
	}
	if res := c.Join("m", []Feedback{{ID: "kept", Truth: []Truth{{Label: "1", Value: 1, Numeric: true}}}}); res[0].Outcome != Joined {
		t.Errorf("feedback after the slot changed hands: %+v", res[0])
	}
}

func TestScraperMergesReplicasPerRevision(t *testing.T) {
	replica := func(rev string, preds, truths []string) string {
		m, err := Open(Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		for i := range preds {
			id := fmt.Sprint(i)
			if err := m.Record(&Prediction{Model: "iris", Revision: rev, ID: id, Time: time.Now().UnixNano(), Rows: []Row{{Kind: KindLabel, Label: preds[i]}}}); err != nil {
				t.Fatal(err)
			}
			m.Join("iris", []Feedback{{ID: id, Truth: []Truth{{Label: truths[i]}}}})
		}
		s := httptest.NewServer(NewHandler(HandlerConfig{Monitor: m}).Middleware(fakeServer()))
		t.Cleanup(s.Close)
		return strings.TrimPrefix(s.URL, "http://")
	}
	a := replica("iris-1", []string{"a", "b", "a", "a"}, []string{"a", "b", "b", "a"}) // 3 of 4
	b := replica("iris-1", []string{"a", "a"}, []string{"b", "b"})                     // 0 of 2
	c := replica("iris-2", []string{"b"}, []string{"b"})
	s := NewScraper(ScraperConfig{Revisions: func() []Replicas {
		return []Replicas{
			{Namespace: "default", Service: "iris", Revision: "iris-1", Backends: []string{a, b}},
			{Namespace: "default", Service: "iris", Revision: "iris-2", Backends: []string{c, "127.0.0.1:1"}}, // one gone
		}
	}})
	q, ok := s.Revision(t.Context(), "default", "iris", "iris-1")
	if !ok || q.Labelled != 6 || q.Replicas != 2 || math.Abs(q.Classification.Accuracy-0.5) > 1e-12 {
		t.Errorf("iris-1: %+v (found %v), want 6 labelled rows, accuracy 0.5 over 2 replicas", q, ok)
	}
	q, ok = s.Revision(t.Context(), "default", "iris", "iris-2")
	if !ok || q.Labelled != 1 || q.Replicas != 1 || q.Classification.Accuracy != 1 {
		t.Errorf("iris-2: %+v", q)
	}
	if _, ok := s.Revision(t.Context(), "default", "iris", "iris-3"); ok {
		t.Error("a revision with no replicas reported quality")
	}
}
