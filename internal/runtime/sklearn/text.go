package sklearn

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
)

// maxDocBytes bounds one document of a text pipeline's input: the
// analyzer's terms grow with the text (n-grams), so one huge document
// cannot make the vectorizer allocate without end.
const maxDocBytes = 1 << 20

// maxVocabulary bounds a vectorizer's vocabulary_ (columns).
const maxVocabulary = 1 << 22

// textVectorizer is a fitted CountVectorizer or TfidfVectorizer: it turns
// documents into term counts over vocabulary_, with scikit-learn's
// preprocessing, tokenization and n-grams (analyzer "word", "char" or
// "char_wb"), then TfidfVectorizer's weighting.
type textVectorizer struct {
	vocab    map[string]int
	analyzer string // word, char, char_wb
	lower    bool
	accents  string // "", "ascii" or "unicode"
	// minRun > 0: tokens are runs of at least minRun word characters
	// (token_pattern \b\w\w+\b or \b\w+\b); else pattern is used.
	minRun       int
	pattern      *regexp.Regexp
	stop         map[string]bool
	ngMin, ngMax int
	binary       bool
	tfidf        *tfidfWeights // TfidfVectorizer's own weighting
}

// textTransformer turns documents into a feature matrix; only the first
// step of a pipeline may be one.
type textTransformer interface {
	transformText(docs []string) (mat, error)
	width() int
}

// tfidfWeights is a fitted TfidfTransformer.
type tfidfWeights struct {
	norm      string    // "l2", "l1" or "" (None)
	idf       []float64 // nil without use_idf
	sublinear bool
	n         int
}

func buildCountVectorizer(o obj) (any, int, error) {
	v, err := readVectorizer(o)
	if err != nil {
		return nil, 0, err
	}
	return v, 1, nil
}

func buildTfidfVectorizer(o obj) (any, int, error) {
	v, err := readVectorizer(o)
	if err != nil {
		return nil, 0, err
	}
	tv, _ := o.get("_tfidf")
	to, err := o.sub(tv)
	if err != nil {
		return nil, 0, fmt.Errorf("TfidfVectorizer._tfidf: %w", err)
	}
	if v.tfidf, err = readTfidf(to, len(v.vocab)); err != nil {
		return nil, 0, err
	}
	return v, 1, nil
}

func buildTfidfTransformer(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	t, err := readTfidf(o, n)
	return t, n, err
}

// readVectorizer reads CountVectorizer's parameters and vocabulary_,
// refusing what Ferry cannot reproduce (callables, custom patterns with
// Unicode-aware classes, stop words that change n-grams).
func readVectorizer(o obj) (*textVectorizer, error) {
	for _, k := range []string{"preprocessor", "tokenizer"} {
		if o.has(k) {
			return nil, fmt.Errorf("%w: %s with a custom %s: Ferry runs no Python code", runtime.ErrUnsupported, o.cls, k)
		}
	}
	if in := o.strOr("input", "content"); in != "content" {
		return nil, fmt.Errorf("%w: %s with input=%q; Ferry takes the text itself (input=\"content\")", runtime.ErrUnsupported, o.cls, in)
	}
	v := &textVectorizer{analyzer: o.strOr("analyzer", "word"), binary: truthy(o, "binary"), lower: true}
	if l, ok := o.get("lowercase"); ok {
		v.lower = l == true
	}
	switch v.analyzer {
	case "word", "char", "char_wb":
	default:
		return nil, fmt.Errorf("%w: %s with analyzer %s; Ferry takes \"word\", \"char\" and \"char_wb\"", runtime.ErrUnsupported, o.cls, pickle.Describe(mustGet(o, "analyzer")))
	}
	if sa, ok := o.get("strip_accents"); ok && sa != nil {
		s, _ := sa.(string)
		if s != "ascii" && s != "unicode" {
			return nil, fmt.Errorf("%w: %s with strip_accents %s", runtime.ErrUnsupported, o.cls, pickle.Describe(sa))
		}
		v.accents = s
	}
	ng, _ := o.get("ngram_range")
	t, ok := ng.(pickle.Tuple)
	if !ok || len(t) != 2 {
		return nil, o.errf("ngram_range is %s", pickle.Describe(ng))
	}
	lo, ok1 := pickle.Number(t[0])
	hi, ok2 := pickle.Number(t[1])
	if !ok1 || !ok2 || lo < 1 || hi < lo || hi > 64 {
		return nil, o.errf("ngram_range is (%v, %v)", t[0], t[1])
	}
	v.ngMin, v.ngMax = int(lo), int(hi)
	if v.analyzer == "word" {
		if err := v.readPattern(o); err != nil {
			return nil, err
		}
		if err := v.readStopWords(o); err != nil {
			return nil, err
		}
	}
	vocab, err := readVocabulary(o)
	if err != nil {
		return nil, err
	}
	v.vocab = vocab
	return v, nil
}

func mustGet(o obj, k string) any { v, _ := o.get(k); return v }

func truthy(o obj, k string) bool { v, _ := o.get(k); return v == true }

// readPattern reads token_pattern: scikit-learn's default \b\w\w+\b and
// \b\w+\b run natively with Python's Unicode \w; other patterns run on
// Go's regexp when they use no class whose meaning differs between
// Python's re and Go's RE2 (\w, \b, \d, \s and their negations).
func (v *textVectorizer) readPattern(o obj) error {
	p, ok := mustGet(o, "token_pattern").(string)
	if !ok {
		return fmt.Errorf("%w: %s with token_pattern %s", runtime.ErrUnsupported, o.cls, pickle.Describe(mustGet(o, "token_pattern")))
	}
	bare := strings.TrimPrefix(p, "(?u)")
	switch bare {
	case `\b\w\w+\b`:
		v.minRun = 2
		return nil
	case `\b\w+\b`:
		v.minRun = 1
		return nil
	}
	for _, c := range []string{`\w`, `\W`, `\b`, `\B`, `\d`, `\D`, `\s`, `\S`} {
		if strings.Contains(bare, c) {
			return fmt.Errorf("%w: %s with token_pattern %q: %s means something else in Python's re than in Go's regexp; use \\b\\w\\w+\\b, \\b\\w+\\b or explicit character classes", runtime.ErrUnsupported, o.cls, p, c)
		}
	}
	re, err := regexp.Compile(bare)
	if err != nil {
		return fmt.Errorf("%w: %s token_pattern %q: %w", runtime.ErrUnsupported, o.cls, p, err)
	}
	if re.NumSubexp() > 1 {
		return o.errf("token_pattern %q has %d groups, at most one", p, re.NumSubexp())
	}
	v.pattern = re
	return nil
}

// readStopWords reads stop_words: a list is applied as scikit-learn does
// (tokens removed before n-grams). "english" needs scikit-learn's own
// list, which Ferry does not ship; with unigrams only it changes nothing
// at transform time (stop words are not in vocabulary_), so it is
// accepted there and refused otherwise.
func (v *textVectorizer) readStopWords(o obj) error {
	sw := mustGet(o, "stop_words")
	switch s := sw.(type) {
	case nil:
		return nil
	case string:
		if v.ngMax == 1 {
			return nil
		}
		return fmt.Errorf("%w: %s with stop_words=%q and n-grams: give the stop words as a list", runtime.ErrUnsupported, o.cls, s)
	}
	var items []any
	switch s := sw.(type) {
	case *pickle.List:
		items = s.Items
	case pickle.Tuple:
		items = s
	case *pickle.Set:
		items = s.Items
	default:
		return o.errf("stop_words is %s", pickle.Describe(sw))
	}
	v.stop = make(map[string]bool, len(items))
	for _, it := range items {
		w, ok := it.(string)
		if !ok {
			return o.errf("stop_words holds %s", pickle.Describe(it))
		}
		v.stop[w] = true
	}
	return nil
}

// readVocabulary reads vocabulary_: term -> column, columns 0..n-1 each
// used once.
func readVocabulary(o obj) (map[string]int, error) {
	dv, _ := o.get("vocabulary_")
	d, ok := dv.(*pickle.Dict)
	if !ok {
		return nil, o.errf("vocabulary_ is %s, want a dict (is the vectorizer fitted?)", pickle.Describe(dv))
	}
	n := len(d.Keys)
	if n == 0 || n > maxVocabulary {
		return nil, o.errf("vocabulary_ has %d terms (1 to %d)", n, maxVocabulary)
	}
	vocab := make(map[string]int, n)
	used := make([]bool, n)
	for i, k := range d.Keys {
		term, ok := k.(string)
		c, ok2 := pickle.Number(d.Values[i])
		if !ok || !ok2 || c < 0 || c >= float64(n) || c != math.Trunc(c) || used[int(c)] {
			return nil, o.errf("vocabulary_ entry %d is %s: %v", i, pickle.Describe(k), d.Values[i])
		}
		used[int(c)] = true
		vocab[term] = int(c)
	}
	return vocab, nil
}

// readTfidf reads a fitted TfidfTransformer for n columns. The idf
// weights are idf_ (scikit-learn >= 1.5) or the diagonal of _idf_diag, a
// scipy sparse matrix (CSR or DIA) in earlier versions.
func readTfidf(o obj, n int) (*tfidfWeights, error) {
	t := &tfidfWeights{sublinear: truthy(o, "sublinear_tf"), n: n}
	switch nv := mustGet(o, "norm"); nv {
	case nil:
	case "l1", "l2":
		t.norm = nv.(string)
	default:
		return nil, fmt.Errorf("%w: %s with norm %s", runtime.ErrUnsupported, o.cls, pickle.Describe(nv))
	}
	if u, ok := o.get("use_idf"); ok && u != true {
		return t, nil
	}
	if o.has("idf_") {
		idf, err := o.vec("idf_", n)
		if err != nil {
			return nil, err
		}
		t.idf = idf
		return t, nil
	}
	dv, _ := o.get("_idf_diag")
	idf, err := sparseDiagonal(dv, n)
	if err != nil {
		return nil, fmt.Errorf("%s._idf_diag: %w", o.cls, err)
	}
	t.idf = idf
	return t, nil
}

// sparseDiagonal reads the diagonal of an n×n scipy csr_matrix or
// dia_matrix.
func sparseDiagonal(v any, n int) ([]float64, error) {
	so, err := asObj(v)
	if err != nil {
		return nil, err
	}
	shape, _ := so.get("_shape")
	if t, ok := shape.(pickle.Tuple); !ok || len(t) != 2 || !isNum(t[0], n) || !isNum(t[1], n) {
		return nil, so.errf("shape %v, want (%d, %d)", shape, n, n)
	}
	data, _, err := so.floats("data")
	if err != nil {
		return nil, err
	}
	diag := make([]float64, n)
	switch so.cls {
	case "csr_matrix":
		ind, _, err := so.floats("indices")
		if err != nil {
			return nil, err
		}
		ptr, _, err := so.floats("indptr")
		if err != nil {
			return nil, err
		}
		if len(ptr) != n+1 || len(ind) != len(data) {
			return nil, so.errf("%d row pointers, %d indices, %d values for %d rows", len(ptr), len(ind), len(data), n)
		}
		for r := range n {
			lo, hi := int(ptr[r]), int(ptr[r+1])
			if lo < 0 || hi < lo || hi > len(data) {
				return nil, so.errf("row %d spans %d..%d of %d values", r, lo, hi, len(data))
			}
			for k := lo; k < hi; k++ {
				if int(ind[k]) == r {
					diag[r] = data[k]
				}
			}
		}
	case "dia_matrix":
		off, _, err := so.floats("offsets")
		if err != nil {
			return nil, err
		}
		for d, o := range off {
			if o == 0 && len(data) >= (d+1)*n {
				copy(diag, data[d*n:(d+1)*n])
			}
		}
	default:
		return nil, fmt.Errorf("%w: idf weights in a %s", runtime.ErrUnsupported, so.cls)
	}
	return diag, nil
}

func isNum(v any, n int) bool {
	f, ok := pickle.Number(v)
	return ok && f == float64(n)
}

func (v *textVectorizer) width() int { return len(v.vocab) }

// transformText counts each document's vocabulary terms into one row.
func (v *textVectorizer) transformText(docs []string) (mat, error) {
	out := newMat(len(docs), len(v.vocab))
	for i, d := range docs {
		if len(d) > maxDocBytes {
			return mat{}, fmt.Errorf("%w: document %d has %d bytes, at most %d", runtime.ErrInvalidInput, i, len(d), maxDocBytes)
		}
		if !utf8.ValidString(d) {
			return mat{}, fmt.Errorf("%w: document %d is not valid UTF-8", runtime.ErrInvalidInput, i)
		}
		row := out.row(i)
		v.analyze(d, func(term string) {
			if c, ok := v.vocab[term]; ok {
				if v.binary {
					row[c] = 1
				} else {
					row[c]++
				}
			}
		})
	}
	if v.tfidf != nil {
		return v.tfidf.transform(out)
	}
	return out, nil
}

// analyze calls emit with every term of doc, as scikit-learn's
// build_analyzer does.
func (v *textVectorizer) analyze(doc string, emit func(string)) {
	if v.lower {
		doc = pyLower(doc)
	}
	switch v.accents {
	case "unicode":
		doc = stripAccentsUnicode(doc)
	case "ascii":
		doc = stripAccentsASCII(doc)
	}
	switch v.analyzer {
	case "char":
		charNgrams(collapseSpaces(doc), v.ngMin, v.ngMax, emit)
	case "char_wb":
		for _, w := range pyFields(collapseSpaces(doc)) {
			charWBNgrams(" "+w+" ", v.ngMin, v.ngMax, emit)
		}
	default:
		v.wordNgrams(v.tokens(doc), emit)
	}
}

// tokens splits doc by the token pattern.
func (v *textVectorizer) tokens(doc string) []string {
	var out []string
	if v.pattern != nil {
		for _, m := range v.pattern.FindAllStringSubmatch(doc, -1) {
			out = append(out, m[len(m)-1])
		}
	} else {
		start, runes := -1, 0
		for i, r := range doc {
			if isWord(r) {
				if start < 0 {
					start, runes = i, 0
				}
				runes++
				continue
			}
			if start >= 0 && runes >= v.minRun {
				out = append(out, doc[start:i])
			}
			start = -1
		}
		if start >= 0 && runes >= v.minRun {
			out = append(out, doc[start:])
		}
	}
	if v.stop != nil {
		kept := out[:0]
		for _, t := range out {
			if !v.stop[t] {
				kept = append(kept, t)
			}
		}
		out = kept
	}
	return out
}

// wordNgrams emits the tokens' n-grams for n in [ngMin, ngMax], joined by
// one space (scikit-learn's _word_ngrams).
func (v *textVectorizer) wordNgrams(tokens []string, emit func(string)) {
	lo := v.ngMin
	if lo == 1 {
		for _, t := range tokens {
			emit(t)
		}
		lo = 2
	}
	var b strings.Builder
	for n := lo; n <= min(v.ngMax, len(tokens)); n++ {
		for i := 0; i+n <= len(tokens); i++ {
			b.Reset()
			for j, t := range tokens[i : i+n] {
				if j > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(t)
			}
			emit(b.String())
		}
	}
}

// charNgrams is scikit-learn's _char_ngrams over code points.
func charNgrams(doc string, lo, hi int, emit func(string)) {
	idx := runeStarts(doc)
	n := len(idx) - 1
	if lo == 1 {
		for i := range n {
			emit(doc[idx[i]:idx[i+1]])
		}
		lo = 2
	}
	for k := lo; k <= min(hi, n); k++ {
		for i := 0; i+k <= n; i++ {
			emit(doc[idx[i]:idx[i+k]])
		}
	}
}

// charWBNgrams is scikit-learn's _char_wb_ngrams for one padded word: a
// word no longer than n is counted once, whole, and longer n are skipped.
func charWBNgrams(w string, lo, hi int, emit func(string)) {
	idx := runeStarts(w)
	n := len(idx) - 1
	for k := lo; k <= hi; k++ {
		off := 0
		emit(w[idx[0]:idx[min(k, n)]])
		for off+k < n {
			off++
			emit(w[idx[off]:idx[min(off+k, n)]])
		}
		if off == 0 {
			break
		}
	}
}

// runeStarts returns the byte offset of every code point, then len(s).
func runeStarts(s string) []int {
	idx := make([]int, 0, len(s)+1)
	for i := range s {
		idx = append(idx, i)
	}
	return append(idx, len(s))
}

// isWord is Python's Unicode \w: letters, numbers and the underscore.
func isWord(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r)
}

// isPySpace is Python's str.isspace (and re's Unicode \s).
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// collapseSpaces replaces every run of two or more whitespace characters
// by one space, as scikit-learn's re.sub(r"\s\s+", " ") does; a single
// whitespace character stays as it is.
func collapseSpaces(s string) string {
	var b strings.Builder
	run := 0
	var first rune
	for _, r := range s {
		if isPySpace(r) {
			if run == 0 {
				first = r
			}
			run++
			continue
		}
		flushSpace(&b, run, first)
		run = 0
		b.WriteRune(r)
	}
	flushSpace(&b, run, first)
	return b.String()
}

func flushSpace(b *strings.Builder, run int, first rune) {
	switch {
	case run == 1:
		b.WriteRune(first)
	case run > 1:
		b.WriteByte(' ')
	}
}

// pyFields is Python's str.split() with no separator.
func pyFields(s string) []string { return strings.FieldsFunc(s, isPySpace) }

// pyLower is Python's str.lower: Go's per-rune mapping plus Python's two
// special cases, İ (U+0130) to "i̇" and Σ to final ς at the end of a word.
func pyLower(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r == 'İ' || r == 'Σ' }) {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch {
		case r == 'İ':
			b.WriteString("i\u0307")
		case r == 'Σ' && finalSigma(rs, i):
			b.WriteRune('ς')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma is Unicode's Final_Sigma condition: a cased letter before
// (skipping case-ignorable characters) and none after.
func finalSigma(rs []rune, i int) bool {
	before := false
	for j := i - 1; j >= 0; j-- {
		if caseIgnorable(rs[j]) {
			continue
		}
		before = cased(rs[j])
		break
	}
	if !before {
		return false
	}
	for j := i + 1; j < len(rs); j++ {
		if caseIgnorable(rs[j]) {
			continue
		}
		return !cased(rs[j])
	}
	return true
}

func cased(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }

func caseIgnorable(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) || strings.ContainsRune("'.:^`\u00b7\u2019", r)
}

// stripAccentsUnicode is scikit-learn's strip_accents_unicode: NFKD, then
// drop combining characters.
func stripAccentsUnicode(s string) string {
	if isASCII(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if norm.NFKD.PropertiesString(string(r)).CCC() != 0 {
			return -1
		}
		return r
	}, norm.NFKD.String(s))
}

// stripAccentsASCII is strip_accents_ascii: NFKD, then drop every
// character outside ASCII.
func stripAccentsASCII(s string) string {
	if isASCII(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r >= utf8.RuneSelf {
			return -1
		}
		return r
	}, norm.NFKD.String(s))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func (t *tfidfWeights) width() int { return t.n }

// transform weights term counts: log(tf)+1 when sublinear, times idf,
// then each row scaled to unit l2 or l1 norm (zero rows stay zero).
func (t *tfidfWeights) transform(x mat) (mat, error) {
	if x.cols != t.n {
		return mat{}, fmt.Errorf("%w: TfidfTransformer takes %d columns, got %d", runtime.ErrInvalidInput, t.n, x.cols)
	}
	for i := range x.rows {
		row := x.row(i)
		for j, v := range row {
			if v == 0 {
				continue
			}
			if t.sublinear {
				v = math.Log(v) + 1
			}
			if t.idf != nil {
				v *= t.idf[j]
			}
			row[j] = v
		}
		s := 0.0
		switch t.norm {
		case "l2":
			for _, v := range row {
				s += v * v
			}
			s = math.Sqrt(s)
		case "l1":
			for _, v := range row {
				s += math.Abs(v)
			}
		}
		if s != 0 {
			for j := range row {
				row[j] /= s
			}
		}
	}
	return x, nil
}
