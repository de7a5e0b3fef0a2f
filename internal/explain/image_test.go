package explain

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/explain/superpixel"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/onnx"
)

// digits lends the attack example's ONNX digits classifier (FP32 [N, 8,
// 8] in, ten probabilities out) and returns held-out images it gets
// right, with their labels.
func digits(t *testing.T) (func(string) LendFunc, [][][]float64, []int) {
	t.Helper()
	m, err := onnx.LoadFile(t.Context(), "../../examples/attack/models/onnx-digits/model.onnx", onnx.Options{Engine: onnx.EngineGo})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../examples/attack/digits-test.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Images [][][]float64
		Labels []int
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return func(string) LendFunc {
		return func() (runtime.Model, func(), error) { return m, func() {}, nil }
	}, d.Images, d.Labels
}

func flat8(img [][]float64) []float64 {
	var out []float64
	for _, r := range img {
		out = append(out, r...)
	}
	return out
}

// TestLimeImagesOnONNXDigits explains the digits model's predictions in
// process, in AIX's response shape, over 2×2-pixel superpixels: the top
// label is the model's, and switching off (to 0) the superpixels the
// mask marks as supporting it lowers the model's probability for it
// more than switching off as many of the others.
func TestLimeImagesOnONNXDigits(t *testing.T) {
	lend, images, want := digits(t)
	h := handler(t, Options{Type: TypeLimeImages, Config: map[string]string{"seed": "1", "segmentation_algorithm": "slic", "n_segments": "16", "top_labels": "3", "num_samples": "500"}}, "unused", lend)
	predict := ModelImagePredictor("digits", lend("digits"))
	for i := range 4 {
		body, _ := json.Marshal(map[string]any{"instances": images[i : i+1]})
		code, out := post(t, h, "/v1/models/digits:explain", string(body))
		if code != 200 {
			t.Fatalf("%d %v", code, out)
		}
		var resp struct {
			Explanations struct {
				Temp      [][]float64
				Masks     [][][]int
				TopLabels []int `json:"top_labels"`
			}
		}
		raw, _ := json.Marshal(out)
		if err := json.Unmarshal(raw, &resp); err != nil {
			t.Fatal(err)
		}
		e := resp.Explanations
		if len(e.TopLabels) != 3 || e.TopLabels[0] != want[i] || len(e.Masks) != 3 || len(e.Masks[0]) != 8 || len(e.Masks[0][0]) != 8 || e.Temp[3][4] != images[i][3][4] {
			t.Fatalf("image %d: top labels %v (want %d first), %d masks", i, e.TopLabels, want[i], len(e.Masks))
		}
		img := flat8(images[i])
		var on, off []float64 // the image without its supporting pixels, and without as many others
		var support, others []int
		for p := range 64 {
			switch e.Masks[0][p/8][p%8] {
			case 1:
				support = append(support, p)
			case 0:
				others = append(others, p)
			default:
				t.Fatalf("positive_only mask holds %d", e.Masks[0][p/8][p%8])
			}
		}
		if len(support) == 0 {
			t.Fatalf("image %d: no supporting superpixels", i)
		}
		on, off = append([]float64(nil), img...), append([]float64(nil), img...)
		for _, p := range support {
			on[p] = 0
		}
		rng := rand.New(rand.NewPCG(uint64(i), 2))
		rng.Shuffle(len(others), func(a, b int) { others[a], others[b] = others[b], others[a] })
		for _, p := range others[:min(len(others), len(support))] {
			off[p] = 0
		}
		outs, err := predict(t.Context(), [][]float64{img, on, off}, []int{8, 8})
		if err != nil {
			t.Fatal(err)
		}
		l := want[i]
		if !(outs[1][l] < outs[0][l] && outs[1][l] < outs[2][l]) {
			t.Errorf("image %d: p(%d) is %.3f, %.3f without the %d supporting pixels, %.3f without as many others", i, l, outs[0][l], outs[1][l], len(support), outs[2][l])
		}
	}
}

// TestAnchorImagesOnONNXDigits explains a digit with anchors over 2×2
// superpixels: the anchor's precision, re-checked on 2000 perturbations
// drawn here (superpixels outside it at their mean with probability 1/2),
// reaches the threshold within sampling error.
func TestAnchorImagesOnONNXDigits(t *testing.T) {
	lend, images, want := digits(t)
	h := handler(t, Options{Type: TypeAnchorImages, Config: map[string]string{"seed": "3", "n_segments": "16", "threshold": "0.95"}}, "unused", lend)
	predict := ModelImagePredictor("digits", lend("digits"))
	body, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "x", "shape": []int{1, 8, 8}, "datatype": "FP32", "data": images[0]}}})
	code, out := post(t, h, "/v2/models/digits/explain", string(body))
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	var exp struct {
		Meta Meta
		Data struct {
			Anchor    [][]float64
			Segments  [][]int
			Precision float64
			Raw       struct {
				Feature    []int
				Prediction []int
				Success    bool
			}
		}
	}
	raw, _ := json.Marshal(out)
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatal(err)
	}
	d := exp.Data
	if exp.Meta.Name != "AnchorImages" || d.Raw.Prediction[0] != want[0] || !d.Raw.Success || len(d.Raw.Feature) == 0 || len(d.Segments) != 8 {
		t.Fatalf("%+v", exp)
	}
	img := superpixel.Image{H: 8, W: 8, C: 1, Pix: flat8(images[0])}
	seg := &superpixel.Segments{H: 8, W: 8, Labels: make([]int32, 64)}
	for p := range 64 {
		seg.Labels[p] = int32(d.Segments[p/8][p%8])
		seg.N = max(seg.N, int(seg.Labels[p])+1)
		if inAnchor := contains(d.Raw.Feature, int(seg.Labels[p])); d.Anchor[p/8][p%8] != img.Pix[p]*b2f(inAnchor) {
			t.Fatalf("anchor pixel %d", p)
		}
	}
	means := superpixel.Means(img, seg).Pix
	rng := rand.New(rand.NewPCG(77, 7))
	batch := make([][]float64, 2000)
	for s := range batch {
		keep := make([]bool, seg.N)
		for k := range keep {
			keep[k] = contains(d.Raw.Feature, k) || rng.IntN(2) == 0
		}
		im := make([]float64, 64)
		for p, k := range seg.Labels {
			im[p] = means[p]
			if keep[k] {
				im[p] = img.Pix[p]
			}
		}
		batch[s] = im
	}
	outs, err := predict(t.Context(), batch, []int{8, 8})
	if err != nil {
		t.Fatal(err)
	}
	same := 0
	for _, l := range labels(outs) {
		if l == want[0] {
			same++
		}
	}
	// 2000 samples: a standard error of 0.005 at 0.95.
	if p := float64(same) / 2000; p < 0.95-0.015 {
		t.Fatalf("anchor %v: re-checked precision %v, the search said %v", d.Raw.Feature, p, d.Precision)
	} else {
		t.Logf("anchor %v: precision %.3f (search %.3f)", d.Raw.Feature, p, d.Precision)
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// TestLimeImagesOverV1 calls a loopback V1 predictor that takes images
// nested [N, 4, 4, 3] (RGB) and says class 1 when the top-left pixel is
// red: the images arrive nested, and the first mask marks the top-left
// superpixel. Request-level parameters (AIX's) override the config.
func TestLimeImagesOverV1(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Instances [][][][]float64 }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Instances) == 0 || len(req.Instances[0]) != 4 || len(req.Instances[0][0][0]) != 3 {
			http.Error(w, "want [N, 4, 4, 3]", http.StatusBadRequest)
			return
		}
		preds := make([][]float64, len(req.Instances))
		for i, im := range req.Instances {
			p := 0.1
			if im[0][0][0] > 0.5 {
				p = 0.9
			}
			preds[i] = []float64{1 - p, p}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"predictions": preds})
	}))
	defer s.Close()
	x, err := New(Config{Options: Options{Type: TypeLimeImages, Config: map[string]string{"seed": "2", "segmentation_algorithm": "slic", "n_segments": "4", "compactness": "1"}},
		ImagePredictor: func(name string) ImagePredictor { return V1ImagePredictor(http.DefaultClient, s.URL, name) }})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(x, 0, 0, nil).Middleware(http.NotFoundHandler())
	img := make([][][]float64, 4)
	for y := range img {
		img[y] = make([][]float64, 4)
		for x := range img[y] {
			img[y][x] = []float64{0.2, 0.2, 0.8} // blue
			if y < 2 && x < 2 {
				img[y][x] = []float64{0.9, 0.1, 0.1} // a red top-left block
			}
		}
	}
	body, _ := json.Marshal(map[string]any{"instances": [][][][]float64{img}, "top_labels": 1, "num_samples": "200", "positive_only": "false"})
	code, out := post(t, h, "/v1/models/m:explain", string(body))
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	e := out["explanations"].(map[string]any)
	masks := e["masks"].([]any)
	if len(masks) != 1 || e["top_labels"].([]any)[0].(float64) != 1 {
		t.Fatalf("%v", e)
	}
	m := masks[0].([]any)
	for y := range 4 {
		for x := range 4 {
			v := m[y].([]any)[x].(float64)
			if want := b2f(y < 2 && x < 2); v != want {
				t.Fatalf("mask[%d][%d] = %v, want %v (%v)", y, x, v, want, m)
			}
		}
	}
	for alg, want := range map[string]string{
		"felzenszwalb": "slic or quickshift",
		"quickshift":   "the config sets n_segments, compactness",
	} {
		if code, out := post(t, h, "/v1/models/m:explain", `{"instances": [[[[1,1,1]]]], "segmentation_alg": "`+alg+`"}`); code != 400 || !strings.Contains(out["error"].(string), want) {
			t.Fatalf("%s per request: %d %v", alg, code, out)
		}
	}
}

func TestImageConfigRefused(t *testing.T) {
	for cfg, want := range map[string]string{
		"segmentation_algorithm=felzenszwalb": `segmentation_algorithm="felzenszwalb": Ferry segments with slic or quickshift`,
		"n_segments=16":                       "n_segments is a slic key; the segmentation is quickshift",
		"segmentation_alg=slic":               `LimeImages does not take "segmentation_alg"; it takes: num_samples, segmentation_algorithm,`,
		"num_samples=0.5":                     "num_samples",
		"p_sample=0.3":                        `LimeImages does not take "p_sample"`,
	} {
		c, _ := ParseConfig([]string{cfg})
		_, err := New(Config{Options: Options{Type: TypeLimeImages, Config: c}, Lend: func(string) LendFunc { return nil }})
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", cfg, err)
		}
	}
	c, _ := ParseConfig([]string{"ratio=0.5"})
	if _, err := New(Config{Options: Options{Type: TypeAnchorImages, Config: c}, Lend: func(string) LendFunc { return nil }}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "ratio is a quickshift key; the segmentation is slic") {
		t.Errorf("AnchorImages ratio: %v", err)
	}
	c, _ = ParseConfig([]string{"p_sample=2"})
	if _, err := New(Config{Options: Options{Type: TypeAnchorImages, Config: c}, Lend: func(string) LendFunc { return nil }}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "p_sample") {
		t.Errorf("p_sample=2: %v", err)
	}
	if _, err := New(Config{Options: Options{Type: TypeAnchorImages}}); !errors.Is(err, ErrConfig) {
		t.Errorf("no predictor: %v", err)
	}
	if NeedsData(TypeLimeImages) || NeedsData(TypeAnchorImages) || !IsImage(TypeLimeImages) {
		t.Error("image types need no training data")
	}
}

func TestDecodeImageRequest(t *testing.T) {
	for body, want := range map[string][]int{
		`{"instances": [[[1, 2], [3, 4]]]}`:                                        {2, 2, 1},
		`{"instances": [[[[1, 2, 3]], [[4, 5, 6]]], [[[0, 0, 0]], [[0, 0, 0]]]]}`:  {2, 1, 3},
		`{"inputs": [{"shape": [1, 2, 2], "data": [1, 2, 3, 4]}]}`:                 {2, 2, 1},
		`{"inputs": [{"shape": [2, 2, 3], "data": [1,2,3,4,5,6,7,8,9,10,11,12]}]}`: {2, 2, 3},
		`{"inputs": [{"shape": [1, 1, 2, 3], "data": [[[[1,2,3],[4,5,6]]]]}]}`:     {1, 2, 3},
		`{"instances": [[[1]]], "parameters": {"top_labels": 2}, "id": "x"}`:       {1, 1, 1},
	} {
		req, err := DecodeImageRequest([]byte(body))
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		if got := []int{req.Image.H, req.Image.W, req.Image.C}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || len(req.Image.Pix) != want[0]*want[1]*want[2] {
			t.Errorf("%s: %v", body, got)
		}
	}
	for body, want := range map[string]string{
		`{"instances": [[1, 2]]}`:                               "list of images",
		`{"instances": [[[1, 2], [3]]]}`:                        "not rectangular",
		`{"instances": [[[1, [2]], [3, 4]]]}`:                   "unequal depth",
		`{"instances": [[["a"]]]}`:                              "numbers only",
		`{"instances": [[[[[[1]]]]]]}`:                          "deeper",
		`{"instances": [[[[1,2,3,4,5]]]]}`:                      "channels",
		`{"instances": [[[1]]], "colour": 1}`:                   `unknown key "colour"`,
		`{"inputs": [{"shape": [1, 3, 3], "data": [1, 2, 3]}]}`: "does not match",
		`{"inputs": [{"shape": [-1, 3], "data": [1, 2, 3]}]}`:   "does not match",
		`{}`: "instances",
		`{"instances": [[[1]]], "top_labels": [1]}`: "top_labels",
	} {
		if _, err := DecodeImageRequest([]byte(body)); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

// FuzzDecodeImageRequest: any body decodes to a valid image or an
// ErrBadInput, never a panic or an image the segmenter refuses.
func FuzzDecodeImageRequest(f *testing.F) {
	f.Add([]byte(`{"instances": [[[1, 2], [3, 4]]]}`))
	f.Add([]byte(`{"inputs": [{"shape": [1, 2, 2, 3], "data": [1,2,3,4,5,6,7,8,9,10,11,12]}]}`))
	f.Add([]byte(`{"instances": [[[[1,2,3]]]], "top_labels": "2", "parameters": {"x": true}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeImageRequest(body)
		if err != nil {
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("%v does not wrap ErrBadInput", err)
			}
			return
		}
		if err := req.Image.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkLimeImagesDigits(b *testing.B) {
	m, err := onnx.LoadFile(b.Context(), "../../examples/attack/models/onnx-digits/model.onnx", onnx.Options{Engine: onnx.EngineGo})
	if err != nil {
		b.Fatal(err)
	}
	lend := func(string) LendFunc { return func() (runtime.Model, func(), error) { return m, func() {}, nil } }
	x, err := New(Config{Options: Options{Type: TypeLimeImages, Config: map[string]string{"segmentation_algorithm": "slic", "n_segments": "16"}}, Lend: lend})
	if err != nil {
		b.Fatal(err)
	}
	req, err := DecodeImageRequest([]byte(`{"instances": [[[0,0,0.375,1,0.6875,0,0,0],[0,0,0.5625,1,1,0.3125,0,0],[0,0,0.5,1,1,0.25,0,0],[0,0,0.625,1,0.8125,0,0,0],[0,0,0.8125,1,0.75,0,0,0],[0,0,0.625,1,0.5625,0,0,0],[0,0,0.5625,1,0.625,0,0,0],[0,0,0.25,0.9375,1,0.1875,0,0]]]}`))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := x.ExplainImage(context.Background(), "digits", req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLimeImagesQuickshiftDefault: LimeImages segments with quickshift
// and AIX's parameters unless told otherwise, and a request may switch
// to slic.
func TestLimeImagesQuickshiftDefault(t *testing.T) {
	lend, images, want := digits(t)
	h := handler(t, Options{Type: TypeLimeImages, Config: map[string]string{"seed": "1", "top_labels": "1", "num_samples": "300"}}, "unused", lend)
	for _, extra := range []string{``, `, "segmentation_alg": "slic"`} {
		body, _ := json.Marshal(map[string]any{"instances": images[2:3]})
		code, out := post(t, h, "/v1/models/digits:explain", strings.TrimSuffix(string(body), "}")+extra+"}")
		if code != 200 {
			t.Fatalf("%s: %d %v", extra, code, out)
		}
		e := out["explanations"].(map[string]any)
		if int(e["top_labels"].([]any)[0].(float64)) != want[2] || len(e["masks"].([]any)) != 1 {
			t.Fatalf("%s: %v", extra, e)
		}
	}
}

// TestNewExplainersPredictorFails: a predictor failing during a LIME or
// image explanation is a 502 naming it, never a 400 or a hang.
func TestNewExplainersPredictorFails(t *testing.T) {
	s := v1Server(t, true)
	h := handler(t, Options{Type: TypeLimeTabular, Data: background()}, s.URL, nil)
	if code, out := post(t, h, "/v1/models/lin:explain", `{"instances": [[1, 2, 3]]}`); code != http.StatusBadGateway || !strings.Contains(out["error"].(string), s.URL) {
		t.Errorf("LimeTabular: %d %v", code, out)
	}
	for _, typ := range []string{TypeLimeImages, TypeAnchorImages} {
		x, err := New(Config{Options: Options{Type: typ, Config: map[string]string{"segmentation_" + map[string]string{TypeLimeImages: "algorithm", TypeAnchorImages: "fn"}[typ]: "slic"}},
			ImagePredictor: func(name string) ImagePredictor { return V1ImagePredictor(http.DefaultClient, s.URL, name) }})
		if err != nil {
			t.Fatal(err)
		}
		h := NewHandler(x, 0, 0, nil).Middleware(http.NotFoundHandler())
		if code, out := post(t, h, "/v1/models/lin:explain", `{"instances": [[[0, 1], [1, 0]]]}`); code != http.StatusBadGateway || !strings.Contains(out["error"].(string), s.URL+"/v1/models/lin:predict") {
			t.Errorf("%s: %d %v", typ, code, out)
		}
	}
}
