package explain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ferryserve/ferry/internal/explain/anchor"
	"github.com/ferryserve/ferry/internal/explain/lime"
	"github.com/ferryserve/ferry/internal/explain/superpixel"
	"github.com/ferryserve/ferry/internal/runtime"
)

// ImagePredictor evaluates images, each flat in row-major order of shape
// (H×W or H×W×C), and returns each one's outputs.
type ImagePredictor func(ctx context.Context, images [][]float64, shape []int) ([][]float64, error)

// ModelImagePredictor calls an in-process model with an FP32 [n,
// shape...] tensor (image models take float32) and reads its first
// output, with ModelPredictor's error rules.
func ModelImagePredictor(name string, lend LendFunc) ImagePredictor {
	return func(ctx context.Context, images [][]float64, shape []int) ([][]float64, error) {
		if len(images) == 0 {
			return nil, nil
		}
		dims := []int64{int64(len(images))}
		for _, d := range shape {
			dims = append(dims, int64(d))
		}
		flat := make([]float32, 0, len(images)*len(images[0]))
		for _, im := range images {
			for _, v := range im {
				flat = append(flat, float32(v))
			}
		}
		return predictInProcess(ctx, name, lend, runtime.NewFP32("input-0", dims, flat), len(images))
	}
}

// V1ImagePredictor calls KServe's V1 predict with {"instances": [image,
// ...]}, each image nested in its shape, as KServe's AIX and Alibi image
// explainers send them.
func V1ImagePredictor(client *http.Client, host, name string) ImagePredictor {
	url := v1URL(host, name)
	return func(ctx context.Context, images [][]float64, shape []int) ([][]float64, error) {
		nested := make([]Tensor, len(images))
		for i, im := range images {
			nested[i] = Tensor{Shape: shape, Data: im}
		}
		return v1Call(ctx, client, url, nested, len(images))
	}
}

// rowImagePredictor sends images as flat rows through a row predictor:
// what ferry serve --predictor-host gives today, right for models whose
// input is the flattened image.
func rowImagePredictor(p Predictor) ImagePredictor {
	return func(ctx context.Context, images [][]float64, _ []int) ([][]float64, error) { return p(ctx, images) }
}

// Tensor encodes flat values as JSON lists nested in Shape.
type Tensor struct {
	Shape []int
	Data  []float64
}

// MarshalJSON implements json.Marshaler.
func (t Tensor) MarshalJSON() ([]byte, error) {
	return appendNested(nil, t.Data, t.Shape, func(b []byte, v float64) []byte { return strconv.AppendFloat(b, v, 'g', -1, 64) }), nil
}

// IntTensor is Tensor for whole numbers (masks, segment labels).
type IntTensor struct {
	Shape []int
	Data  []int
}

// MarshalJSON implements json.Marshaler.
func (t IntTensor) MarshalJSON() ([]byte, error) {
	return appendNested(nil, t.Data, t.Shape, func(b []byte, v int) []byte { return strconv.AppendInt(b, int64(v), 10) }), nil
}

func appendNested[T any](b []byte, data []T, shape []int, put func([]byte, T) []byte) []byte {
	if len(shape) == 0 {
		return put(b, data[0])
	}
	b = append(b, '[')
	step := len(data) / max(shape[0], 1)
	for i := range shape[0] {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNested(b, data[i*step:(i+1)*step], shape[1:], put)
	}
	return append(b, ']')
}

// ImageRequest is a decoded image explain request: the first image and
// any request-level parameters (AIX's top_labels, num_samples,
// positive_only, min_weight, segmentation_alg; or V2's "parameters").
type ImageRequest struct {
	Image  superpixel.Image
	Shape  []int // as sent: [H, W] or [H, W, C]
	Params map[string]string
}

// imageRequestKeys are the top-level keys an image request may hold.
var imageRequestKeys = []string{"instances", "inputs", "id", "parameters", "outputs", "top_labels", "num_samples", "positive_only", "min_weight", "segmentation_alg"}

// DecodeImageRequest reads an image explain request: V1's {"instances":
// [image, ...]} (each image H×W or H×W×C nested lists; only the first is
// explained, as KServe's explainers do) or V2's {"inputs": [{"shape":
// [1, H, W(, C)] or [H, W(, C)], "data": [...]}]}. Top-level keys beside
// those are AIX's request parameters; unknown keys are refused by name.
func DecodeImageRequest(body []byte) (*ImageRequest, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: body: %w", ErrBadInput, err)
	}
	for _, k := range slices.Sorted(mapsKeys(doc)) {
		if !slices.Contains(imageRequestKeys, k) {
			return nil, fmt.Errorf("%w: unknown key %q; an image request takes: %s", ErrBadInput, k, strings.Join(imageRequestKeys, ", "))
		}
	}
	req := &ImageRequest{Params: map[string]string{}}
	for _, k := range []string{"top_labels", "num_samples", "positive_only", "min_weight", "segmentation_alg"} {
		if raw, ok := doc[k]; ok {
			v, err := scalar(raw)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrBadInput, k, err)
			}
			req.Params[k] = v
		}
	}
	if raw, ok := doc["parameters"]; ok {
		var params map[string]json.RawMessage
		if err := json.Unmarshal(raw, &params); err != nil {
			return nil, fmt.Errorf("%w: parameters must be an object", ErrBadInput)
		}
		for k, raw := range params {
			v, err := scalar(raw)
			if err != nil {
				return nil, fmt.Errorf("%w: parameters.%s: %w", ErrBadInput, k, err)
			}
			req.Params[k] = v
		}
	}
	var (
		shape []int
		flat  []float64
		err   error
		field string
	)
	switch {
	case doc["instances"] != nil:
		field = "instances"
		shape, flat, err = decodeNested(doc["instances"], field)
		if err == nil {
			if len(shape) < 3 {
				return nil, fmt.Errorf("%w: instances must be a list of images, each H×W or H×W×C nested lists; got shape %v", ErrBadInput, shape)
			}
			// A list of images: the first one.
			field = "instances[0]"
			shape, flat = shape[1:], flat[:len(flat)/shape[0]]
		}
	case doc["inputs"] != nil:
		field = "inputs[0]"
		var inputs []struct {
			Shape []int           `json:"shape"`
			Data  json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(doc["inputs"], &inputs); err != nil || len(inputs) == 0 {
			return nil, fmt.Errorf("%w: inputs must be a non-empty list", ErrBadInput)
		}
		_, flat, err = decodeNested(inputs[0].Data, field+".data")
		shape = inputs[0].Shape
		if err == nil {
			if len(shape) == 4 || (len(shape) == 3 && shape[0] == 1) {
				shape = shape[1:] // the batch dimension: [1, H, W] is one grey image
			}
			if prod(shape) < 1 || prod(shape)*max(1, shapeBatch(inputs[0].Shape, shape)) != len(flat) {
				return nil, fmt.Errorf("%w: inputs[0].shape %v does not match %d values", ErrBadInput, inputs[0].Shape, len(flat))
			}
			flat = flat[:prod(shape)]
		}
	default:
		return nil, fmt.Errorf("%w: body needs \"instances\" (V1) or \"inputs\" (V2)", ErrBadInput)
	}
	if err != nil {
		return nil, err
	}
	img := superpixel.Image{C: 1, Pix: flat}
	switch len(shape) {
	case 2:
		img.H, img.W = shape[0], shape[1]
	case 3:
		img.H, img.W, img.C = shape[0], shape[1], shape[2]
	default:
		return nil, fmt.Errorf("%w: %s: an image is H×W or H×W×C (channels last, at most 4) nested lists; got shape %v", ErrBadInput, field, shape)
	}
	if err := img.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadInput, field, err)
	}
	req.Image, req.Shape = img, shape
	return req, nil
}

func shapeBatch(sent, image []int) int {
	if len(sent) > len(image) {
		return sent[0]
	}
	return 1
}

func prod(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > superpixel.MaxPixels*4/d) {
			return -1
		}
		n *= d
	}
	return n
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// scalar reads a JSON number, string or boolean as a string.
func scalar(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	return "", errors.New("must be a number, string or boolean")
}

// maxImageValues bounds the numbers one image request may hold.
const maxImageValues = superpixel.MaxPixels * 4

// decodeNested reads rectangular nested lists of numbers (depth 1 to 5)
// as a shape and row-major values, streaming tokens so that a large
// image costs no per-element allocation.
func decodeNested(raw json.RawMessage, field string) ([]int, []float64, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	dims := []int{-1, -1, -1, -1, -1} // length of the lists at each depth, once seen
	var (
		counts []int // children seen in each open list
		flat   []float64
		depth  int
		leaf   = -1 // depth at which numbers sit, once known
	)
	bad := func(why string) ([]int, []float64, error) {
		return nil, nil, fmt.Errorf("%w: %s: %s", ErrBadInput, field, why)
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return bad(err.Error())
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '[':
				if depth > 0 {
					counts[depth-1]++
				}
				if depth >= 5 {
					return bad("nested deeper than 5")
				}
				if leaf >= 0 && depth >= leaf {
					return bad("lists of unequal depth")
				}
				depth++
				if len(counts) < depth {
					counts = append(counts, 0)
				}
				counts[depth-1] = 0
			case ']':
				n := counts[depth-1]
				if dims[depth-1] < 0 {
					dims[depth-1] = n
				} else if dims[depth-1] != n {
					return bad(fmt.Sprintf("not rectangular: a list of %d beside one of %d", n, dims[depth-1]))
				}
				depth--
			default:
				return bad("must hold lists of numbers")
			}
		case json.Number:
			if depth == 0 {
				return bad("must be a list")
			}
			if leaf < 0 {
				leaf = depth
			} else if depth != leaf {
				return bad("lists of unequal depth")
			}
			v, err := t.Float64()
			if err != nil {
				return bad(err.Error())
			}
			if len(flat) >= maxImageValues {
				return bad(fmt.Sprintf("more than %d values", maxImageValues))
			}
			flat = append(flat, v)
			counts[depth-1]++
		default:
			return bad("must hold numbers only")
		}
	}
	if leaf < 0 || len(flat) == 0 {
		return bad("must be a non-empty list of numbers")
	}
	return dims[:leaf], flat, nil
}

// imageConfig is what an image explainer reads from its config keys.
type imageConfig struct {
	seg          segmenter
	anchor       anchor.ImageConfig
	lime         lime.ImageConfig
	positiveOnly bool
	minWeight    float64
	numFeatures  int // superpixels in each LIME mask
}

// segmenter cuts images into superpixels with one algorithm.
type segmenter struct {
	alg   string // slic or quickshift
	slic  superpixel.SLICConfig
	quick superpixel.QuickshiftConfig
	keys  []string // algorithm keys the config set
}

// segmentationKeys are each algorithm's own config keys (sigma is both's).
var segmentationKeys = map[string][]string{
	"slic":       {"n_segments", "compactness"},
	"quickshift": {"kernel_size", "max_dist", "ratio"},
}

// readSegmentation reads the algorithm under key (def when absent) and
// its keys; the other algorithm's keys and other algorithms are refused
// by name.
func readSegmentation(c *config, key, def string, s *segmenter) {
	s.alg = def
	c.string(key, &s.alg)
	if c.err != nil {
		return
	}
	if _, ok := segmentationKeys[s.alg]; !ok {
		c.err = fmt.Errorf("%w: %s=%q: Ferry segments with slic or quickshift (felzenszwalb is not implemented)", ErrConfig, key, s.alg)
		return
	}
	if err := s.checkKeys(mapsKeys(c.m)); err != nil {
		c.err = fmt.Errorf("%w: %w", ErrConfig, err)
		return
	}
	c.int("n_segments", &s.slic.NSegments)
	c.float("compactness", &s.slic.Compactness)
	c.float("kernel_size", &s.quick.KernelSize)
	c.float("max_dist", &s.quick.MaxDist)
	c.float("ratio", &s.quick.Ratio)
	c.float("sigma", &s.slic.Sigma)
	c.float("sigma", &s.quick.Sigma)
	for k, ks := range segmentationKeys {
		for _, name := range ks {
			if _, ok := c.m[name]; ok && k == s.alg {
				s.keys = append(s.keys, name)
			}
		}
	}
}

// checkKeys refuses keys that belong to the other algorithm.
func (s *segmenter) checkKeys(keys func(func(string) bool)) error {
	for k := range keys {
		for alg, ks := range segmentationKeys {
			if alg != s.alg && slices.Contains(ks, k) {
				return fmt.Errorf("%s is a %s key; the segmentation is %s", k, alg, s.alg)
			}
		}
	}
	return nil
}

func (s *segmenter) validate() error {
	if s.alg == "quickshift" {
		return s.quick.Defaults().Validate()
	}
	return s.slic.Defaults().Validate()
}

func (s *segmenter) segment(img superpixel.Image) (*superpixel.Segments, error) {
	if s.alg == "quickshift" {
		return superpixel.Quickshift(img, s.quick)
	}
	return superpixel.SLIC(img, s.slic)
}

// newImage reads an image type's keys.
func (x *Explainer) newImage(c *config) error {
	o := x.cfg.Options
	ic := &x.image
	ic.positiveOnly, ic.minWeight, ic.numFeatures = true, 0.01, 10
	switch o.Type {
	case TypeAnchorImages:
		readAnchorConfig(c, &ic.anchor.Config)
		c.float("p_sample", &ic.anchor.PSample)
		// Alibi's AnchorImage defaults: slic with n_segments 10,
		// compactness 10, sigma 0.5; quickshift with scikit-image's own.
		ic.seg.slic = superpixel.SLICConfig{NSegments: 10, Compactness: 10, Sigma: 0.5}
		ic.seg.quick = superpixel.QuickshiftConfig{KernelSize: 5, MaxDist: 10, Ratio: 1}
		readSegmentation(c, "segmentation_fn", "slic", &ic.seg)
		ic.seg.quick.Seed = ic.anchor.Seed
	case TypeLimeImages:
		c.int("num_samples", &ic.lime.NumSamples)
		c.int("top_labels", &ic.lime.TopLabels)
		c.int("batch_size", &ic.lime.BatchSize)
		c.uint("seed", &ic.lime.Seed)
		c.bool("positive_only", &ic.positiveOnly)
		c.float("min_weight", &ic.minWeight)
		c.int("num_features", &ic.numFeatures)
		readSegmentation(c, "segmentation_algorithm", "quickshift", &ic.seg)
		ic.seg.quick.Seed = ic.lime.Seed
	}
	if c.err != nil {
		return c.err
	}
	if err := ic.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if x.cfg.ImagePredictor == nil {
		switch {
		case x.cfg.Lend != nil:
			lend := x.cfg.Lend
			x.cfg.ImagePredictor = func(name string) ImagePredictor { return ModelImagePredictor(name, lend(name)) }
		case x.cfg.Predictor != nil:
			rows := x.cfg.Predictor
			x.cfg.ImagePredictor = func(name string) ImagePredictor { return rowImagePredictor(rows(name)) }
		default:
			return fmt.Errorf("%w: %s needs a predictor of images", ErrConfig, o.Type)
		}
	}
	return nil
}

func (ic *imageConfig) validate() error {
	if err := ic.seg.validate(); err != nil {
		return err
	}
	if err := ic.anchor.Config.Defaults().Validate(); err != nil {
		return err
	}
	if p := ic.anchor.PSample; p < 0 || p > 1 {
		return fmt.Errorf("p_sample %v not in (0, 1]", p)
	}
	if err := ic.lime.Defaults().Validate(); err != nil {
		return err
	}
	if ic.numFeatures < 1 {
		return fmt.Errorf("num_features %d must be at least 1", ic.numFeatures)
	}
	return nil
}

// AnchorImageData is the data of an AnchorImages explanation (Alibi's):
// the image with the superpixels outside the anchor zeroed, the
// segmentation, and the anchor's superpixels in raw.feature.
type AnchorImageData struct {
	Anchor    Tensor         `json:"anchor"`
	Segments  IntTensor      `json:"segments"`
	Precision float64        `json:"precision"`
	Coverage  float64        `json:"coverage"`
	Raw       AnchorImageRaw `json:"raw"`
}

// AnchorImageRaw is Alibi's raw AnchorImage record, in part.
type AnchorImageRaw struct {
	Feature    []int                `json:"feature"`
	Prediction []int                `json:"prediction"`
	Instance   Tensor               `json:"instance"`
	NumPreds   int                  `json:"num_preds"`
	Success    bool                 `json:"success"`
	Examples   []AnchorImageExample `json:"examples"`
}

// AnchorImageExample holds perturbed images keeping the anchor that the
// model labels like the instance and otherwise.
type AnchorImageExample struct {
	CoveredTrue  []Tensor `json:"covered_true"`
	CoveredFalse []Tensor `json:"covered_false"`
}

// LimeImagesResponse is KServe's AIX LimeImages answer: the image
// (temp), one mask per explained class (1 for superpixels that support
// it, -1 for those against it when positive_only is false, 0 elsewhere)
// and the classes, most probable first.
type LimeImagesResponse struct {
	Explanations LimeImagesExplanations `json:"explanations"`
}

// LimeImagesExplanations is the body of LimeImagesResponse.
type LimeImagesExplanations struct {
	Temp      Tensor      `json:"temp"`
	Masks     []IntTensor `json:"masks"`
	TopLabels []int       `json:"top_labels"`
}

// ExplainImage explains req's image for the named model (AnchorImages
// or LimeImages). LimeImages answers in AIX's shape, the others in
// Alibi's Explanation.
func (x *Explainer) ExplainImage(ctx context.Context, name string, req *ImageRequest) (any, error) {
	o := x.cfg.Options
	ic := x.image
	if o.Type == TypeLimeImages {
		if err := ic.override(req.Params); err != nil {
			return nil, err
		}
	} else if len(req.Params) > 0 {
		return nil, fmt.Errorf("%w: %s takes no request parameters (got %s); set them in its config", ErrBadInput, o.Type, strings.Join(slices.Sorted(mapsKeys(req.Params)), ", "))
	}
	seg, err := ic.seg.segment(req.Image)
	if err != nil {
		return nil, fmt.Errorf("%w: segmentation: %w", ErrBadInput, err)
	}
	predict := x.cfg.ImagePredictor(name)
	shape := req.Shape
	segShape := []int{req.Image.H, req.Image.W}
	switch o.Type {
	case TypeLimeImages:
		res, err := lime.ExplainImage(ctx, func(ctx context.Context, images [][]float64) ([][]float64, error) {
			return predict(ctx, images, shape)
		}, req.Image, seg, ic.lime)
		if err != nil {
			return nil, imageErr(ctx, err)
		}
		out := &LimeImagesResponse{Explanations: LimeImagesExplanations{Temp: Tensor{Shape: shape, Data: req.Image.Pix}, Masks: []IntTensor{}, TopLabels: []int{}}}
		for _, e := range res.Explanations {
			out.Explanations.Masks = append(out.Explanations.Masks, IntTensor{Shape: segShape, Data: lime.Mask(seg, e, ic.positiveOnly, ic.numFeatures, ic.minWeight)})
			out.Explanations.TopLabels = append(out.Explanations.TopLabels, e.Label)
		}
		return out, nil
	default:
		classify := func(ctx context.Context, images [][]float64) ([]int, error) {
			out, err := predict(ctx, images, shape)
			if err != nil {
				return nil, err
			}
			return labels(out), nil
		}
		res, err := anchor.ExplainImage(ctx, classify, req.Image, seg, ic.anchor)
		if err != nil {
			return nil, imageErr(ctx, err)
		}
		segs := make([]int, len(seg.Labels))
		for i, k := range seg.Labels {
			segs[i] = int(k)
		}
		ex := AnchorImageExample{CoveredTrue: []Tensor{}, CoveredFalse: []Tensor{}}
		for _, im := range res.CoveredTrue {
			ex.CoveredTrue = append(ex.CoveredTrue, Tensor{Shape: shape, Data: im})
		}
		for _, im := range res.CoveredFalse {
			ex.CoveredFalse = append(ex.CoveredFalse, Tensor{Shape: shape, Data: im})
		}
		params := o.Config
		if params == nil {
			params = map[string]string{}
		}
		return &Explanation{
			Meta: Meta{Name: o.Type, Type: []string{"blackbox"}, Explanations: []string{"local"}, Params: params},
			Data: &AnchorImageData{Anchor: Tensor{Shape: shape, Data: res.Anchor}, Segments: IntTensor{Shape: segShape, Data: segs},
				Precision: res.Precision, Coverage: res.Coverage, Raw: AnchorImageRaw{
					Feature: orEmptyInts(res.Features), Prediction: []int{res.Label}, Instance: Tensor{Shape: shape, Data: req.Image.Pix},
					NumPreds: res.Samples, Success: res.Reached, Examples: []AnchorImageExample{ex}}},
		}, nil
	}
}

// override applies AIX's request-level parameters to a copy of the
// configuration, naming a bad one.
func (ic *imageConfig) override(params map[string]string) error {
	c := &config{m: params}
	for _, k := range slices.Sorted(mapsKeys(params)) {
		if !slices.Contains([]string{"top_labels", "num_samples", "positive_only", "min_weight", "segmentation_alg"}, k) {
			return fmt.Errorf("%w: parameters.%s: LimeImages takes top_labels, num_samples, positive_only, min_weight, segmentation_alg per request", ErrBadInput, k)
		}
	}
	c.int("top_labels", &ic.lime.TopLabels)
	c.int("num_samples", &ic.lime.NumSamples)
	c.bool("positive_only", &ic.positiveOnly)
	c.float("min_weight", &ic.minWeight)
	if alg, ok := params["segmentation_alg"]; ok && alg != ic.seg.alg {
		// The config's keys were for its own algorithm.
		ic.seg.alg = alg
		if _, known := segmentationKeys[alg]; !known {
			c.err = fmt.Errorf("segmentation_alg=%q: Ferry segments with slic or quickshift (felzenszwalb is not implemented)", alg)
		} else if len(ic.seg.keys) > 0 {
			c.err = fmt.Errorf("segmentation_alg=%q: the config sets %s for its own segmentation", alg, strings.Join(ic.seg.keys, ", "))
		}
	}
	if c.err == nil {
		c.err = ic.validate()
	}
	if c.err != nil {
		return fmt.Errorf("%w: %w", ErrBadInput, c.err)
	}
	return nil
}

// imageErr keeps predictor and cancellation errors and blames the
// request for the rest.
func imageErr(ctx context.Context, err error) error {
	if errors.Is(err, ErrPredictor) || errors.Is(err, runtime.ErrInvalidInput) || ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("%w: instances[0]: %w", ErrBadInput, err)
}
