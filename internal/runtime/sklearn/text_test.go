package sklearn

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// textGolden is one testdata/text/<name>.json record written by
// testdata/gen/gen_text.py.
type textGolden struct {
	X           []string    `json:"X"`
	Predict     []any       `json:"predict"`
	PredictKind string      `json:"predict_kind"`
	Proba       [][]float64 `json:"predict_proba"`
	Decision    any         `json:"decision_function"`
}

func docsRequest(docs []string, shape []int64, outputs ...string) *runtime.Request {
	return &runtime.Request{Inputs: []*tensor.Tensor{runtime.NewBytes("text", shape, docs)}, Outputs: outputs}
}

// TestTextGolden serves every text pipeline (CountVectorizer,
// TfidfVectorizer, TfidfTransformer; word, char and char_wb analyzers;
// n-grams, stop words, accents, binary counts, idf options) on documents
// with edge cases and compares predict, predict_proba and
// decision_function with scikit-learn's.
func TestTextGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/text/*.json")
	if len(files) < 7 {
		t.Fatalf("%d text golden files; run testdata/gen/gen_text.py", len(files))
	}
	const tol = 1e-9
	worst := 0.0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var g textGolden
			if err := json.Unmarshal(b, &g); err != nil {
				t.Fatal(err)
			}
			m, err := Load(t.Context(), filepath.Join("testdata", "text", name+".joblib"))
			if err != nil {
				t.Fatal(err)
			}
			md := m.Metadata()
			if md.Inputs[0].Datatype != tensor.Bytes {
				t.Errorf("input metadata %+v, want BYTES", md.Inputs[0])
			}
			var outs []string
			for _, o := range md.Outputs {
				outs = append(outs, o.Name)
			}
			for _, shape := range [][]int64{{int64(len(g.X))}, {int64(len(g.X)), 1}} {
				res, err := m.Predict(t.Context(), docsRequest(g.X, shape, outs...))
				if err != nil {
					t.Fatal(err)
				}
				pred := findOutput(t, res, OutputPredict)
				for i, want := range g.Predict {
					switch g.PredictKind {
					case "str":
						if got := string(pred.Data.([][]byte)[i]); got != want.(string) {
							t.Errorf("predict[%d] (%q) = %s, want %s", i, g.X[i], got, want)
						}
					case "int":
						if got := pred.Data.([]int64)[i]; got != int64(want.(float64)) {
							t.Errorf("predict[%d] (%q) = %d, want %v", i, g.X[i], got, want)
						}
					default:
						e := relErr(pred.Data.([]float64)[i], want.(float64))
						worst = max(worst, e)
						if e > tol {
							t.Errorf("predict[%d] (%q) = %v, want %v", i, g.X[i], pred.Data.([]float64)[i], want)
						}
					}
				}
				for _, c := range []struct {
					out  string
					want []float64
				}{{OutputProba, flatten(anySlice(g.Proba))}, {OutputDecision, flatten(g.Decision)}} {
					if c.want == nil {
						continue
					}
					if !slices.Contains(outs, c.out) {
						t.Fatalf("no %s output", c.out)
					}
					got := findOutput(t, res, c.out).Data.([]float64)
					if len(got) != len(c.want) {
						t.Fatalf("%s: %d values, want %d", c.out, len(got), len(c.want))
					}
					for i := range got {
						e := relErr(got[i], c.want[i])
						worst = max(worst, e)
						if e > tol {
							t.Errorf("%s[%d] = %v, want %v (document %q)", c.out, i, got[i], c.want[i], g.X[i*len(got)/len(c.want)/max(1, len(got)/len(g.X))])
						}
					}
				}
			}
		})
	}
	t.Logf("worst relative error over all text golden outputs: %.3g", worst)
}

// TestTextInputRefused: numbers, several inputs, bad shapes and invalid
// UTF-8 are refused as invalid input, naming what a text pipeline takes.
func TestTextInputRefused(t *testing.T) {
	m, err := Load(t.Context(), "testdata/text/count_logreg.joblib")
	if err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]*runtime.Request{
		"numbers":    {Inputs: []*tensor.Tensor{runtime.NewFP64("x", []int64{1, 1}, []float64{1})}},
		"two inputs": {Inputs: []*tensor.Tensor{runtime.NewBytes("a", []int64{1}, []string{"a"}), runtime.NewBytes("b", []int64{1}, []string{"b"})}},
		"shape":      docsRequest([]string{"a", "b"}, []int64{1, 2}),
		"utf8":       docsRequest([]string{"great \xff film"}, []int64{1}),
		"huge":       docsRequest([]string{strings.Repeat("great ", maxDocBytes/6+1)}, []int64{1}),
	} {
		if _, err := m.Predict(t.Context(), req); !errors.Is(err, runtime.ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", name, err)
		}
	}
}

// TestAnalyzers checks the tokenizer and n-gram rules on cases written
// out by hand from scikit-learn's build_analyzer.
func TestAnalyzers(t *testing.T) {
	collect := func(v *textVectorizer, doc string) []string {
		var out []string
		v.analyze(doc, func(s string) { out = append(out, s) })
		return out
	}
	for _, c := range []struct {
		v    textVectorizer
		doc  string
		want []string
	}{
		{textVectorizer{analyzer: "word", lower: true, minRun: 2, ngMin: 1, ngMax: 2}, "A b-CD ef_1 é", []string{"cd", "ef_1", "cd ef_1"}},
		{textVectorizer{analyzer: "word", minRun: 1, ngMin: 2, ngMax: 3, stop: map[string]bool{"the": true}}, "the cat the hat", []string{"cat hat"}},
		{textVectorizer{analyzer: "char", ngMin: 1, ngMax: 2}, "ab  c", []string{"a", "b", " ", "c", "ab", "b ", " c"}},
		{textVectorizer{analyzer: "char_wb", ngMin: 2, ngMax: 5}, "ab cde", []string{" a", "ab", "b ", " ab", "ab ", " ab ", " c", "cd", "de", "e ", " cd", "cde", "de ", " cde", "cde ", " cde "}},
		{textVectorizer{analyzer: "word", lower: true, minRun: 2, ngMin: 1, ngMax: 1}, "ΟΔΟΣ İZ", []string{"οδο\u03c2"}},
		{textVectorizer{analyzer: "word", lower: true, minRun: 2, ngMin: 1, ngMax: 1, accents: "unicode"}, "Café naïve cafe\u0301", []string{"cafe", "naive", "cafe"}},
		{textVectorizer{analyzer: "word", minRun: 2, ngMin: 1, ngMax: 1, accents: "ascii"}, "Ǆemal ﬁne", []string{"DZemal", "fine"}},
	} {
		if c.v.analyzer == "word" && c.v.minRun == 0 {
			t.Fatal("bad case")
		}
		if got := collect(&c.v, c.doc); !slices.Equal(got, c.want) {
			t.Errorf("%s %d-%d %q: %q, want %q", c.v.analyzer, c.v.ngMin, c.v.ngMax, c.doc, got, c.want)
		}
	}
	if got := pyLower("ΟΔΟΣ İ"); got != "οδο\u03c2 i\u0307" {
		t.Errorf("final sigma: %q", got)
	}
}

// FuzzTextModel loads mutated text pipelines and runs them on fuzzed
// documents: errors are fine, panics are not.
func FuzzTextModel(f *testing.F) {
	for _, name := range []string{"count_logreg", "tfidf_char_wb_ridge", "count_tfidf_linsvc"} {
		b, err := os.ReadFile("testdata/text/" + name + ".joblib")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "a great film")
	}
	f.Fuzz(func(t *testing.T, b []byte, doc string) {
		m, err := Read(t.Context(), bytes.NewReader(b))
		if err != nil {
			return
		}
		_, _ = m.Predict(t.Context(), docsRequest([]string{doc, ""}, []int64{2}))
		_ = m.Metadata()
	})
}

// FuzzAnalyze runs every analyzer on arbitrary text: terms are valid
// UTF-8 and no call panics.
func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{"", "Café  ΟΔΟΣ\tİ x_1", "a\u0301\u00a0b", "\x1c\x1d  z"} {
		f.Add(s, uint8(1), uint8(3))
	}
	f.Fuzz(func(t *testing.T, doc string, lo, hi uint8) {
		if !utf8.ValidString(doc) {
			return
		}
		l, h := int(lo%4)+1, int(hi%4)+1
		if h < l {
			l, h = h, l
		}
		for _, an := range []string{"word", "char", "char_wb"} {
			v := textVectorizer{analyzer: an, lower: true, minRun: 1, ngMin: l, ngMax: h, accents: "unicode"}
			v.analyze(doc, func(s string) {
				if !utf8.ValidString(s) || s == "" {
					t.Fatalf("%s: term %q", an, s)
				}
			})
		}
	})
}
