package anchor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TextClassifyFunc returns the predicted class of each document.
type TextClassifyFunc func(ctx context.Context, docs []string) ([]int, error)

// TextConfig holds Alibi's AnchorText parameters: the search's, and how
// words outside the anchor are perturbed. Ferry implements Alibi's UNK
// sampler: each such word is replaced by "UNK" with probability
// SampleProba (0.5), independently.
type TextConfig struct {
	Config
	SampleProba float64
}

// maxWords bounds the words of one explained text: every word is a
// candidate feature of the beam search.
const maxWords = 1000

// Unk is the word that stands for a removed one.
const Unk = "UNK"

// TextResult is an anchor over the words of a text.
type TextResult struct {
	Words     []string // the anchor's words, in the order they were added
	Features  []int    // their indices among the text's words
	Positions []int    // their offsets in the text, in characters (code points)
	Precision float64
	Coverage  float64
	Label     int
	// CoveredTrue and CoveredFalse are perturbed texts keeping the anchor
	// that the model labels like the text and otherwise.
	CoveredTrue, CoveredFalse []string
	Samples                   int
	Reached                   bool
	Tokens                    []string // the text's words, as perturbed
}

// ExplainText finds the words of text that anchor the model's prediction:
// with them kept and each other word replaced by UNK with probability
// SampleProba, the model keeps its label with probability Threshold.
func ExplainText(ctx context.Context, classify TextClassifyFunc, text string, cfg TextConfig) (*TextResult, error) {
	if cfg.SampleProba == 0 {
		cfg.SampleProba = 0.5
	}
	if !(cfg.SampleProba > 0 && cfg.SampleProba <= 1) {
		return nil, fmt.Errorf("sample_proba %v not in (0, 1]", cfg.SampleProba)
	}
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("text is not valid UTF-8")
	}
	words, pos := Tokenize(text)
	if len(words) > maxWords {
		return nil, fmt.Errorf("text has %d words, at most %d", len(words), maxWords)
	}
	labels, err := classify(ctx, []string{text})
	if err != nil {
		return nil, err
	}
	if len(labels) != 1 {
		return nil, fmt.Errorf("model returned %d labels for 1 text", len(labels))
	}
	res := &TextResult{Label: labels[0], Tokens: words}
	if len(words) == 0 {
		res.Precision, res.Coverage, res.Reached = 1, 1, true
		return res, nil
	}
	sp := &textSpace{classify: classify, words: words, p: cfg.SampleProba}
	f, err := Search(ctx, sp, labels[0], cfg.Config)
	if err != nil {
		return nil, err
	}
	res.Features, res.Precision, res.Coverage, res.Samples, res.Reached = f.Features, f.Precision, f.Coverage, f.Samples, f.Reached
	for _, i := range f.Features {
		res.Words = append(res.Words, words[i])
		res.Positions = append(res.Positions, pos[i])
	}
	for _, e := range f.CoveredTrue {
		res.CoveredTrue = append(res.CoveredTrue, e.(string))
	}
	for _, e := range f.CoveredFalse {
		res.CoveredFalse = append(res.CoveredFalse, e.(string))
	}
	return res, nil
}

// Tokenize splits text into words as the perturbations see them: runs of
// letters, digits and underscores, and every other non-space character
// on its own (spaCy's tokens, which Alibi uses, split punctuation off the
// same way). It returns the words and their offsets in code points.
func Tokenize(text string) (words []string, positions []int) {
	start, startPos, n := -1, 0, 0
	flush := func(end int) {
		if start >= 0 {
			words = append(words, text[start:end])
			positions = append(positions, startPos)
			start = -1
		}
	}
	for i, r := range text {
		switch {
		case r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.In(r, unicode.Mn, unicode.Mc):
			if start < 0 {
				start, startPos = i, n
			}
		case unicode.IsSpace(r):
			flush(i)
		default:
			flush(i)
			words = append(words, string(r))
			positions = append(positions, n)
		}
		n++
	}
	flush(len(text))
	return words, positions
}

// textSpace perturbs a text's words with UNK.
type textSpace struct {
	classify TextClassifyFunc
	words    []string
	p        float64
}

func (t *textSpace) Features() int { return len(t.words) }

// keep draws which words a sample keeps: anchored words always, others
// with probability 1-p.
func (t *textSpace) keep(rng *rand.Rand, anchor []int) []bool {
	kept := make([]bool, len(t.words))
	for i := range kept {
		kept[i] = rng.Float64() >= t.p
	}
	for _, f := range anchor {
		kept[f] = true
	}
	return kept
}

// Render joins the kept words with single spaces, UNK for the others, as
// Alibi's sampler does.
func Render(words []string, kept []bool) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		if kept[i] {
			b.WriteString(w)
		} else {
			b.WriteString(Unk)
		}
	}
	return b.String()
}

func (t *textSpace) Sample(ctx context.Context, rng *rand.Rand, anchor []int, n int) ([]int, []any, error) {
	docs := make([]string, n)
	ex := make([]any, n)
	for i := range docs {
		docs[i] = Render(t.words, t.keep(rng, anchor))
		ex[i] = docs[i]
	}
	labels, err := t.classify(ctx, docs)
	if err != nil {
		return nil, nil, err
	}
	return labels, ex, nil
}

func (t *textSpace) CoverageSample(rng *rand.Rand) []bool { return t.keep(rng, nil) }
