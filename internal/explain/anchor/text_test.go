package anchor

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// positives labels a document 1 when at least two of its words are
// positive.
func positives(_ context.Context, docs []string) ([]int, error) {
	out := make([]int, len(docs))
	for i, d := range docs {
		n := 0
		for _, w := range strings.Fields(d) {
			switch w {
			case "good", "great", "superb", "fine":
				n++
			}
		}
		if n >= 2 {
			out[i] = 1
		}
	}
	return out, nil
}

// recheckText estimates an anchor's precision on n fresh UNK perturbations
// drawn with a different generator than the search's.
func recheckText(t *testing.T, classify TextClassifyFunc, text string, res *TextResult, p float64, n int) float64 {
	t.Helper()
	words, _ := Tokenize(text)
	sp := &textSpace{words: words, p: p}
	rng := rand.New(rand.NewPCG(12345, 678))
	anchor := slices.Sorted(slices.Values(res.Features))
	docs := make([]string, n)
	for i := range docs {
		docs[i] = Render(words, sp.keep(rng, anchor))
	}
	labels, err := classify(t.Context(), docs)
	if err != nil {
		t.Fatal(err)
	}
	hit := 0
	for _, l := range labels {
		if l == res.Label {
			hit++
		}
	}
	return float64(hit) / float64(n)
}

func TestExplainText(t *testing.T) {
	for _, tc := range []struct {
		text  string
		label int
		want  int // anchor words
	}{
		{"a good film , great acting and a superb fine score", 1, 2},
		{"a dull film with one good scene", 0, 0}, // never two positives: the empty anchor
	} {
		cfg := TextConfig{Config: Config{Seed: 3}}
		res, err := ExplainText(t.Context(), positives, tc.text, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Label != tc.label || !res.Reached || len(res.Words) != tc.want {
			t.Fatalf("%q: %+v", tc.text, res)
		}
		got := recheckText(t, positives, tc.text, res, 0.5, 5000)
		if got < 0.95 {
			t.Errorf("%q: anchor %q re-checked precision %.3f < 0.95", tc.text, res.Words, got)
		}
		for _, ex := range res.CoveredTrue {
			for _, w := range res.Words {
				if !slices.Contains(strings.Fields(ex), w) {
					t.Errorf("covered example %q lacks anchor word %q", ex, w)
				}
			}
		}
		t.Logf("%q: anchor %q precision %.3f (re-checked %.3f) coverage %.3f, %d texts", tc.text, res.Words, res.Precision, got, res.Coverage, res.Samples)
	}
}

func TestTokenize(t *testing.T) {
	words, pos := Tokenize("Don't   stop,  café!\tno_1")
	if want := []string{"Don", "'", "t", "stop", ",", "café", "!", "no_1"}; !slices.Equal(words, want) {
		t.Fatalf("%q, want %q", words, want)
	}
	if want := []int{0, 3, 4, 8, 12, 15, 19, 21}; !slices.Equal(pos, want) {
		t.Fatalf("positions %v, want %v", pos, want)
	}
}

func TestExplainTextErrors(t *testing.T) {
	boom := errors.New("boom")
	fail := func(context.Context, []string) ([]int, error) { return nil, boom }
	if _, err := ExplainText(t.Context(), fail, "a good film", TextConfig{}); !errors.Is(err, boom) {
		t.Fatalf("failing model: %v", err)
	}
	if _, err := ExplainText(t.Context(), positives, strings.Repeat("w ", maxWords+1), TextConfig{}); err == nil {
		t.Fatal("too many words accepted")
	}
	if _, err := ExplainText(t.Context(), positives, "good", TextConfig{SampleProba: 2}); err == nil {
		t.Fatal("sample_proba 2 accepted")
	}
	res, err := ExplainText(t.Context(), positives, " ", TextConfig{})
	if err != nil || !res.Reached || res.Precision != 1 {
		t.Fatalf("empty text: %+v %v", res, err)
	}
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"", "Don't stop", "a\u0301b ,c", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, pos := Tokenize(s)
		if len(words) != len(pos) {
			t.Fatal("words and positions differ in length")
		}
		for _, w := range words {
			if w == "" || strings.ContainsFunc(w, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' }) {
				t.Fatalf("word %q", w)
			}
		}
	})
}
