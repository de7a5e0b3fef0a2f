package explain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/explain/anchor"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn"
	"github.com/ferryserve/ferry/internal/tensor"
)

// movie is a CountVectorizer + LogisticRegression pipeline (KServe's
// moviesentiment shape) fitted by the scikit-learn runtime's
// gen_text.py, served in process.
func movie(t *testing.T) (runtime.Model, func(string) LendFunc) {
	t.Helper()
	b, err := os.ReadFile("testdata/movie.joblib")
	if err != nil {
		t.Fatal(err)
	}
	m, err := sklearn.Read(t.Context(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return m, func(string) LendFunc {
		return func() (runtime.Model, func(), error) { return m, func() {}, nil }
	}
}

// TestAnchorTextInProcess explains the text model's predictions and
// re-checks each anchor's precision on 5000 fresh UNK perturbations
// drawn independently of the search: it must reach the threshold.
func TestAnchorTextInProcess(t *testing.T) {
	_, lend := movie(t)
	h := handler(t, Options{Type: TypeAnchorText, Config: map[string]string{"seed": "1", "threshold": "0.95"}}, "unused", lend)
	predict := ModelTextPredictor("movie", lend("movie"))
	for _, body := range []string{
		`{"instances": ["a wonderful and moving film , the acting was brilliant but the plot dull"]}`,
		`{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["this boring movie was awful , tedious and lifeless despite one charming scene"]}]}`,
		`{"instances": [["the director and the cast"]]}`,
	} {
		code, out := post(t, h, "/v1/models/movie:explain", body)
		if code != 200 {
			t.Fatalf("%s: %d %v", body, code, out)
		}
		var exp struct {
			Meta Meta           `json:"meta"`
			Data AnchorTextData `json:"data"`
		}
		b, _ := json.Marshal(out)
		if err := json.Unmarshal(b, &exp); err != nil {
			t.Fatal(err)
		}
		d := exp.Data
		if exp.Meta.Name != "AnchorText" || !d.Raw.Success || d.Precision < 0.95 {
			t.Fatalf("%s: %+v", body, exp)
		}
		words, pos := anchor.Tokenize(d.Raw.Instance)
		for i, f := range d.Raw.Feature {
			if words[f] != d.Anchor[i] || pos[f] != d.Raw.Positions[i] || !strings.HasPrefix(string([]rune(d.Raw.Instance)[pos[f]:]), d.Anchor[i]) {
				t.Fatalf("anchor word %d %q at feature %d position %d does not match the text", i, d.Anchor[i], f, d.Raw.Positions[i])
			}
		}
		// Independent re-check.
		rng := rand.New(rand.NewPCG(99, 7))
		docs := make([]string, 5000)
		for i := range docs {
			kept := make([]bool, len(words))
			for j := range kept {
				kept[j] = rng.Float64() >= 0.5 || slices.Contains(d.Raw.Feature, j)
			}
			docs[i] = anchor.Render(words, kept)
		}
		outs, err := predict(t.Context(), docs)
		if err != nil {
			t.Fatal(err)
		}
		hit := 0
		for _, l := range labels(outs) {
			if l == d.Raw.Prediction[0] {
				hit++
			}
		}
		prec := float64(hit) / float64(len(docs))
		if prec < 0.95 {
			t.Errorf("%q: anchor %q re-checked precision %.4f < 0.95 (search estimated %.3f)", d.Raw.Instance, d.Anchor, prec, d.Precision)
		}
		t.Logf("%q -> %d: anchor %q precision %.3f (re-checked %.4f) coverage %.3f, %d texts", d.Raw.Instance, d.Raw.Prediction[0], d.Anchor, d.Precision, prec, d.Coverage, d.Raw.NumPreds)
	}
	if code, out := post(t, h, "/v1/models/movie:explain", `{"instances": [[1, 2]]}`); code != 400 || !strings.Contains(out["error"].(string), "instances[0]") {
		t.Fatalf("numbers to a text explainer: %d %v", code, out)
	}
}

// TestAnchorTextOverV1: a stand-alone AnchorText explainer calls its
// predictor with {"instances": [texts]}; a failing predictor is a 502
// naming it.
func TestAnchorTextOverV1(t *testing.T) {
	m, _ := movie(t)
	fail := false
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Instances []string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || fail {
			http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
			return
		}
		res, err := m.Predict(r.Context(), &runtime.Request{Inputs: []*tensor.Tensor{runtime.NewBytes("t", []int64{int64(len(req.Instances))}, req.Instances)}})
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"predictions": res.Outputs[0].Data})
	}))
	t.Cleanup(s.Close)
	x, err := New(Config{Options: Options{Type: TypeAnchorText, Config: map[string]string{"seed": "2"}},
		TextPredictor: func(name string) TextPredictor { return V1TextPredictor(http.DefaultClient, s.URL, name) }})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(x, 0, 0, nil).Middleware(http.NotFoundHandler())
	code, out := post(t, h, "/v1/models/movie:explain", `{"instances": ["a wonderful and moving film , the acting was brilliant but the plot dull"]}`)
	if code != 200 || len(out["data"].(map[string]any)["anchor"].([]any)) == 0 {
		t.Fatalf("%d %v", code, out)
	}
	fail = true
	code, out = post(t, h, "/v1/models/movie:explain", `{"instances": ["superb and delightful"]}`)
	if code != http.StatusBadGateway || !strings.Contains(out["error"].(string), s.URL+"/v1/models/movie:predict") {
		t.Fatalf("failing predictor: %d %v", code, out)
	}
}

func TestAnchorTextConfig(t *testing.T) {
	_, lend := movie(t)
	for cfg, want := range map[string]string{
		"use_similarity_proba=true": "UNK only",
		"top_n=100":                 "UNK only",
		"use_unk=false":             "use_unk=false",
		"sample_proba=1.5":          "sample_proba",
		"p_sample=0.5":              `"p_sample"`,
		"threshold=2":               "threshold",
	} {
		c, _ := ParseConfig([]string{cfg})
		_, err := New(Config{Options: Options{Type: TypeAnchorText, Config: c}, Lend: lend})
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", cfg, err)
		}
	}
	// One check for ferry up, ferry serve and ferry explain: AnchorText
	// passes it and reads no training data.
	o := Options{Type: TypeAnchorText}
	if err := o.Validate(); err != nil || NeedsData(o.Type) {
		t.Errorf("Validate: %v, NeedsData %v", err, NeedsData(o.Type))
	}
	if _, err := New(Config{Options: o}); !errors.Is(err, ErrConfig) {
		t.Errorf("no predictor: %v", err)
	}
}

func TestDecodeTextRequest(t *testing.T) {
	for body, want := range map[string][]string{
		`{"instances": ["a", "b"]}`: {"a", "b"},
		`{"instances": [["a"]]}`:    {"a"},
		`{"instances": "a"}`:        {"a"},
		`{"inputs": [{"datatype": "BYTES", "shape": [1], "data": ["é"]}]}`: {"é"},
	} {
		got, err := DecodeTextRequest([]byte(body))
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %q %v", body, got, err)
		}
	}
	for body, field := range map[string]string{
		`{"instances": [1]}`: "instances[0]",
		`{"instances": []}`:  "instances",
		`{"inputs": [{"datatype": "FP32", "data": [1]}]}`: "datatype",
		`{}`:                          "instances",
		`{"instances": [["a", "b"]]}`: "instances[0]",
	} {
		if _, err := DecodeTextRequest([]byte(body)); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", body, err)
		}
	}
}

func FuzzDecodeTextRequest(f *testing.F) {
	for _, s := range []string{`{"instances": ["a"]}`, `{"instances": [["a"]]}`, `{"inputs": [{"datatype": "BYTES", "data": ["x"]}]}`, `{"instances": "x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		texts, err := DecodeTextRequest(b)
		if err != nil {
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("error does not wrap ErrBadInput: %v", err)
			}
			return
		}
		if len(texts) == 0 || len(texts) > maxRows {
			t.Fatalf("%d texts", len(texts))
		}
	})
}

// TestMovieSentimentExample runs examples/explainers/moviesentiment's
// request and checks the anchor its README shows.
func TestMovieSentimentExample(t *testing.T) {
	b, err := os.ReadFile("../../examples/explainers/moviesentiment/model.joblib")
	if err != nil {
		t.Fatal(err)
	}
	m, err := sklearn.Read(t.Context(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	lend := func(string) LendFunc { return func() (runtime.Model, func(), error) { return m, func() {}, nil } }
	h := handler(t, Options{Type: TypeAnchorText, Config: map[string]string{"seed": "1", "threshold": "0.95"}}, "unused", lend)
	code, out := post(t, h, "/v1/models/movie:explain", `{"instances": ["a wonderful and moving film, the acting was brilliant but the plot dull"]}`)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	d := out["data"].(map[string]any)
	raw := d["raw"].(map[string]any)
	if got := fmt.Sprint(d["anchor"], raw["positions"], d["precision"], d["coverage"], raw["num_preds"]); got != "[wonderful moving] [2 16] 1 0.2468 4000" {
		t.Fatalf("example answer changed: %s", got)
	}
}
