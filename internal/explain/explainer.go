package explain

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ferryserve/ferry/internal/explain/anchor"
	"github.com/ferryserve/ferry/internal/explain/kernelshap"
	"github.com/ferryserve/ferry/internal/explain/lime"
	"github.com/ferryserve/ferry/internal/explain/treeshap"
	"github.com/ferryserve/ferry/internal/runtime"
)

// Config configures an Explainer.
type Config struct {
	Options Options
	// Predictor returns the named model's black-box predictor.
	Predictor func(name string) Predictor
	// Lend lends the named model in process (TreeShap needs its trees);
	// nil when the predictor is remote.
	Lend func(name string) LendFunc
	// TextPredictor returns the named model's predictor of documents
	// (AnchorText); when nil, New makes one from Lend.
	TextPredictor func(name string) TextPredictor
	// ImagePredictor returns the named model's predictor of images
	// (AnchorImages, LimeImages); when nil, New makes one from Lend, or
	// else from Predictor (images as flat rows).
	ImagePredictor func(name string) ImagePredictor
}

// Explainer answers explain requests with one configured algorithm. It
// is read-only after New and safe for concurrent use.
type Explainer struct {
	cfg          Config
	interactions bool // TreeShap: add shap_interaction_values
	kernel       kernelshap.Config
	anchor       anchor.Config
	text         anchor.TextConfig
	lime         *lime.Tabular
	image        imageConfig
}

// New checks the configuration: the type, every config key, and that the
// type has what it needs (training data, an in-process model).
func New(cfg Config) (*Explainer, error) {
	o := cfg.Options
	if err := o.Validate(); err != nil {
		return nil, err
	}
	x := &Explainer{cfg: cfg}
	c := &config{m: o.Config}
	switch o.Type {
	case TypeTreeShap:
		if cfg.Lend == nil {
			return nil, fmt.Errorf("%w: TreeShap reads the model's trees and needs the model in this process, not a remote predictor", ErrConfig)
		}
		c.bool("interactions", &x.interactions)
	case TypeKernelShap:
		c.int("nsamples", &x.kernel.NSamples)
		c.int("batch_size", &x.kernel.BatchSize)
		c.uint("seed", &x.kernel.Seed)
		if v, ok := o.Config["l1_reg"]; ok && c.err == nil {
			var k int
			if n, _ := fmt.Sscanf(v, "num_features(%d)", &k); n == 1 && strings.HasSuffix(v, ")") {
				x.kernel.MaxFeatures = k
			} else if v != "false" && v != "0" {
				c.float("l1_reg", &x.kernel.L1)
			}
		}
		if c.err == nil {
			if err := x.kernel.Validate(); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrConfig, err)
			}
		}
		if o.Data == nil || len(o.Data.Rows) == 0 {
			return nil, fmt.Errorf("%w: KernelShap needs background rows: give --explainer-data (a JSON document with \"data\")", ErrConfig)
		}
	case TypeAnchorTabular:
		a := &x.anchor
		readAnchorConfig(c, a)
		if c.err == nil {
			if err := a.Defaults().Validate(); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrConfig, err)
			}
		}
		if o.Data == nil || len(o.Data.Rows) == 0 {
			return nil, fmt.Errorf("%w: AnchorTabular needs training rows: give --explainer-data (a JSON document with \"data\")", ErrConfig)
		}
	case TypeLimeTabular:
		if err := x.newLimeTabular(c); err != nil {
			return nil, err
		}
	case TypeAnchorImages, TypeLimeImages:
		if err := x.newImage(c); err != nil {
			return nil, err
		}
	case TypeAnchorText:
		a := &x.text
		readAnchorConfig(c, &a.Config)
		c.float("sample_proba", &a.SampleProba)
		useUnk := true
		c.bool("use_unk", &useUnk)
		if c.err == nil && !useUnk {
			return nil, fmt.Errorf("%w: AnchorText use_unk=false: Ferry samples with UNK only (no word embeddings to draw similar words from)", ErrConfig)
		}
		if c.err == nil {
			if err := a.Defaults().Validate(); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrConfig, err)
			}
			if p := a.SampleProba; p < 0 || p > 1 {
				return nil, fmt.Errorf("%w: sample_proba %v not in (0, 1]", ErrConfig, p)
			}
		}
		if x.cfg.TextPredictor == nil {
			if cfg.Lend == nil {
				return nil, fmt.Errorf("%w: AnchorText needs a predictor of documents", ErrConfig)
			}
			x.cfg.TextPredictor = func(name string) TextPredictor { return ModelTextPredictor(name, cfg.Lend(name)) }
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	return x, nil
}

// readAnchorConfig reads the keys of Alibi's anchor search.
func readAnchorConfig(c *config, a *anchor.Config) {
	c.float("threshold", &a.Threshold)
	c.float("delta", &a.Delta)
	c.float("tau", &a.Tau)
	c.int("batch_size", &a.BatchSize)
	c.int("coverage_samples", &a.CoverageSamples)
	c.int("beam_size", &a.BeamSize)
	c.bool("stop_on_first", &a.StopOnFirst)
	c.int("max_anchor_size", &a.MaxAnchorSize)
	c.int("min_samples_start", &a.MinSamplesStart)
	c.int("n_covered_ex", &a.NCoveredEx)
	c.uint("seed", &a.Seed)
}

// Explanation is Alibi's Explanation JSON.
type Explanation struct {
	Meta Meta `json:"meta"`
	Data any  `json:"data"`
}

// Meta describes the explainer that produced an explanation.
type Meta struct {
	Name         string            `json:"name"`
	Type         []string          `json:"type"`
	Explanations []string          `json:"explanations"`
	Params       map[string]string `json:"params"`
}

// ShapData is the data of a TreeShap or KernelShap explanation: for each
// model output, one row of feature values per explained instance. With
// TreeShap's interactions=true, ShapInteractionValues holds for each
// output and instance the features × features matrix of SHAP interaction
// values (Alibi's and shap's layout: the bias row and column of
// XGBoost's pred_interactions dropped); each matrix row sums to that
// feature's SHAP value.
type ShapData struct {
	ShapValues            [][][]float64   `json:"shap_values"`
	ShapInteractionValues [][][][]float64 `json:"shap_interaction_values,omitempty"`
	ExpectedValue         []float64       `json:"expected_value"`
	Link                  string          `json:"link"`
	FeatureNames          []string        `json:"feature_names"`
	Raw                   ShapRaw         `json:"raw"`
}

// ShapRaw holds the explained instances and the model outputs the values
// add up to.
type ShapRaw struct {
	RawPrediction [][]float64 `json:"raw_prediction"`
	Instances     Rows        `json:"instances"`
}

// AnchorData is the data of an AnchorTabular explanation.
type AnchorData struct {
	Anchor    []string  `json:"anchor"`
	Precision float64   `json:"precision"`
	Coverage  float64   `json:"coverage"`
	Raw       AnchorRaw `json:"raw"`
}

// AnchorRaw is Alibi's raw anchor record, in part.
type AnchorRaw struct {
	Feature    []int           `json:"feature"`
	Names      []string        `json:"names"`
	Prediction []int           `json:"prediction"`
	Instance   Rows            `json:"instance"`
	NumPreds   int             `json:"num_preds"`
	Success    bool            `json:"success"`
	Examples   []AnchorExample `json:"examples"`
}

// AnchorExample holds covered rows the model labels like the instance
// and otherwise.
type AnchorExample struct {
	CoveredTrue  Rows `json:"covered_true"`
	CoveredFalse Rows `json:"covered_false"`
}

// AnchorTextData is the data of an AnchorText explanation: the anchor's
// words, and in raw their indices among the text's words and their
// character offsets in the text.
type AnchorTextData struct {
	Anchor    []string      `json:"anchor"`
	Precision float64       `json:"precision"`
	Coverage  float64       `json:"coverage"`
	Raw       AnchorTextRaw `json:"raw"`
}

// AnchorTextRaw is Alibi's raw AnchorText record, in part.
type AnchorTextRaw struct {
	Feature    []int               `json:"feature"`
	Names      []string            `json:"names"`
	Positions  []int               `json:"positions"`
	Prediction []int               `json:"prediction"`
	Instance   string              `json:"instance"`
	Instances  []string            `json:"instances"`
	NumPreds   int                 `json:"num_preds"`
	Success    bool                `json:"success"`
	Examples   []AnchorTextExample `json:"examples"`
}

// AnchorTextExample holds perturbed texts keeping the anchor that the
// model labels like the instance and otherwise.
type AnchorTextExample struct {
	CoveredTrue  []string `json:"covered_true"`
	CoveredFalse []string `json:"covered_false"`
}

// ExplainText explains the first of texts for the named model
// (AnchorText; only instances[0] is explained, as in Alibi).
func (x *Explainer) ExplainText(ctx context.Context, name string, texts []string) (*Explanation, error) {
	o := x.cfg.Options
	if !IsText(o.Type) {
		return nil, fmt.Errorf("%w: %s explains rows of numbers, not texts", ErrBadInput, o.Type)
	}
	if len(texts) == 0 {
		return nil, fmt.Errorf("%w: no text to explain", ErrBadInput)
	}
	predict := x.cfg.TextPredictor(name)
	classify := func(ctx context.Context, docs []string) ([]int, error) {
		out, err := predict(ctx, docs)
		if err != nil {
			return nil, err
		}
		return labels(out), nil
	}
	res, err := anchor.ExplainText(ctx, classify, texts[0], x.text)
	if err != nil {
		if errors.Is(err, ErrPredictor) || errors.Is(err, runtime.ErrInvalidInput) || ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: instances[0]: %w", ErrBadInput, err)
	}
	params := o.Config
	if params == nil {
		params = map[string]string{}
	}
	words := orEmptyStrings(res.Words)
	return &Explanation{
		Meta: Meta{Name: o.Type, Type: []string{"blackbox"}, Explanations: []string{"local"}, Params: params},
		Data: &AnchorTextData{Anchor: words, Precision: res.Precision, Coverage: res.Coverage, Raw: AnchorTextRaw{
			Feature: orEmptyInts(res.Features), Names: words, Positions: orEmptyInts(res.Positions), Prediction: []int{res.Label},
			Instance: texts[0], Instances: texts[:1], NumPreds: res.Samples, Success: res.Reached,
			Examples: []AnchorTextExample{{CoveredTrue: orEmptyStrings(res.CoveredTrue), CoveredFalse: orEmptyStrings(res.CoveredFalse)}},
		}},
	}, nil
}

func orEmptyStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyInts(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}

// Explain explains rows for the named model. Only the first row is
// explained by AnchorTabular (as in Alibi) and LimeTabular.
func (x *Explainer) Explain(ctx context.Context, name string, rows [][]float64) (*Explanation, error) {
	return x.explainRows(ctx, name, rows, x.interactions)
}

// ExplainInteractions is Explain for TreeShap with interaction values
// asked for (or not) by the request, over the config's interactions.
func (x *Explainer) ExplainInteractions(ctx context.Context, name string, rows [][]float64, interactions bool) (*Explanation, error) {
	if x.cfg.Options.Type != TypeTreeShap {
		return nil, fmt.Errorf("%w: interactions: only TreeShap computes interaction values, not %s", ErrBadInput, x.cfg.Options.Type)
	}
	return x.explainRows(ctx, name, rows, interactions)
}

func (x *Explainer) explainRows(ctx context.Context, name string, rows [][]float64, interactions bool) (*Explanation, error) {
	o := x.cfg.Options
	meta := Meta{Name: o.Type, Explanations: []string{"local"}, Params: o.Config}
	if meta.Params == nil {
		meta.Params = map[string]string{}
	}
	var (
		data any
		err  error
	)
	switch o.Type {
	case TypeTreeShap:
		meta.Type = []string{"whitebox"}
		data, err = x.treeShap(name, rows, interactions)
	case TypeKernelShap:
		meta.Type = []string{"blackbox"}
		data, err = x.kernelShap(ctx, name, rows)
	case TypeAnchorTabular:
		meta.Type = []string{"blackbox"}
		data, err = x.anchorTabular(ctx, name, rows[0])
	case TypeLimeTabular:
		meta.Type = []string{"blackbox"}
		data, err = x.limeTabular(ctx, name, rows[0])
	case TypeAnchorText:
		return nil, fmt.Errorf("%w: %s explains texts: send \"instances\": [\"text\"]", ErrBadInput, o.Type)
	default:
		return nil, fmt.Errorf("%w: %s explains images: send \"instances\": [image]", ErrBadInput, o.Type)
	}
	if err != nil {
		return nil, err
	}
	return &Explanation{Meta: meta, Data: data}, nil
}

func (x *Explainer) featureNames(n int, fromModel []string) []string {
	if d := x.cfg.Options.Data; d != nil && len(d.FeatureNames) == n {
		return d.FeatureNames
	}
	if len(fromModel) == n {
		return fromModel
	}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("f%d", i)
	}
	return out
}

func (x *Explainer) treeShap(name string, rows [][]float64, interactions bool) (*ShapData, error) {
	m, release, err := x.cfg.Lend(name)()
	if err != nil {
		return nil, err
	}
	defer release()
	ts, err := treeshap.FromModel(m)
	if err != nil {
		if errors.Is(err, treeshap.ErrNotTrees) {
			return nil, fmt.Errorf("%w: TreeShap on model %q: %w", runtime.ErrUnsupported, name, err)
		}
		return nil, err
	}
	f, g := ts.NumFeatures(), ts.NumGroups()
	d := &ShapData{Link: "identity", ExpectedValue: ts.ExpectedValue(), FeatureNames: x.featureNames(f, ts.FeatureNames()),
		ShapValues: make([][][]float64, g), Raw: ShapRaw{Instances: rows}}
	for i, r := range rows {
		if len(r) != f {
			return nil, fmt.Errorf("%w: instances[%d] has %d features, model %q takes %d", ErrBadInput, i, len(r), name, f)
		}
	}
	var inter []float64
	if interactions {
		if n := int64(len(rows)) * int64(ts.InteractionWidth()); n > maxInteractionValues {
			return nil, fmt.Errorf("%w: instances: %d rows × %d interaction values each is over the %d an explanation may hold; send fewer rows", ErrBadInput, len(rows), ts.InteractionWidth(), maxInteractionValues)
		}
		inter = make([]float64, ts.InteractionWidth())
		d.ShapInteractionValues = make([][][][]float64, g)
	}
	out := make([]float64, ts.Width())
	for _, r := range rows {
		if err := ts.Shap(r, out); err != nil {
			return nil, err
		}
		if inter != nil {
			if err := ts.Interactions(r, inter); err != nil {
				return nil, err
			}
			for k := range g {
				d.ShapInteractionValues[k] = append(d.ShapInteractionValues[k], interactionMatrix(inter, k, f))
			}
		}
		margins := make([]float64, g)
		for k := range g {
			vals := out[k*(f+1) : (k+1)*(f+1)]
			d.ShapValues[k] = append(d.ShapValues[k], append([]float64(nil), vals[:f]...))
			for _, v := range vals {
				margins[k] += v
			}
		}
		d.Raw.RawPrediction = append(d.Raw.RawPrediction, margins)
	}
	return d, nil
}

// maxInteractionValues bounds the interaction values one TreeShap
// explanation may hold (32 MiB of float64, about 80 MiB of JSON).
const maxInteractionValues = 4 << 20

// interactionMatrix cuts group k's features × features matrix out of
// one row's pred_interactions layout (groups × (f+1) × (f+1)).
func interactionMatrix(inter []float64, k, f int) [][]float64 {
	n := f + 1
	m := make([][]float64, f)
	for i := range m {
		m[i] = append([]float64(nil), inter[k*n*n+i*n:k*n*n+i*n+f]...)
	}
	return m
}

func (x *Explainer) kernelShap(ctx context.Context, name string, rows [][]float64) (*ShapData, error) {
	bg := x.cfg.Options.Data.Rows
	for i, r := range rows {
		if len(r) != len(bg[0]) {
			return nil, fmt.Errorf("%w: instances[%d] has %d features, the background data %d", ErrBadInput, i, len(r), len(bg[0]))
		}
	}
	predict := x.cfg.Predictor(name)
	ks, err := kernelshap.New(ctx, kernelshap.PredictFunc(predict), bg, x.kernel)
	if err != nil {
		return nil, err
	}
	d := &ShapData{Link: "identity", ExpectedValue: ks.ExpectedValue(), FeatureNames: x.featureNames(len(bg[0]), nil),
		ShapValues: make([][][]float64, len(ks.ExpectedValue())), Raw: ShapRaw{Instances: rows}}
	for _, r := range rows {
		phi, err := ks.Explain(ctx, r)
		if err != nil {
			return nil, err
		}
		pred := make([]float64, len(phi))
		for k := range phi {
			d.ShapValues[k] = append(d.ShapValues[k], phi[k])
			pred[k] = ks.ExpectedValue()[k]
			for _, v := range phi[k] {
				pred[k] += v
			}
		}
		d.Raw.RawPrediction = append(d.Raw.RawPrediction, pred)
	}
	return d, nil
}

func (x *Explainer) anchorTabular(ctx context.Context, name string, row []float64) (*AnchorData, error) {
	data := x.cfg.Options.Data
	if len(row) != len(data.Rows[0]) {
		return nil, fmt.Errorf("%w: instances[0] has %d features, the training data %d", ErrBadInput, len(row), len(data.Rows[0]))
	}
	predict := x.cfg.Predictor(name)
	classify := func(ctx context.Context, rows [][]float64) ([]int, error) {
		out, err := predict(ctx, rows)
		if err != nil {
			return nil, err
		}
		return labels(out), nil
	}
	ax, err := anchor.New(classify, anchor.Data{FeatureNames: x.featureNames(len(row), nil), CategoryNames: data.CategoryMap, Rows: data.Rows}, x.anchor)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	res, err := ax.Explain(ctx, row)
	if err != nil {
		return nil, err
	}
	anchorText := res.Anchor
	if anchorText == nil {
		anchorText = []string{}
	}
	return &AnchorData{
		Anchor: anchorText, Precision: res.Precision, Coverage: res.Coverage,
		Raw: AnchorRaw{
			Feature: res.Features, Names: anchorText, Prediction: []int{res.Label}, Instance: Rows{row},
			NumPreds: res.Samples, Success: res.Reached,
			Examples: []AnchorExample{{CoveredTrue: orEmpty(res.CoveredTrue), CoveredFalse: orEmpty(res.CoveredFalse)}},
		},
	}, nil
}

func orEmpty(rows [][]float64) Rows {
	if rows == nil {
		return Rows{}
	}
	return rows
}

// Rows encodes as JSON lists with null for missing (NaN) values.
type Rows [][]float64

// MarshalJSON implements json.Marshaler.
func (r Rows) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	for i, row := range r {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, v := range row {
			if j > 0 {
				b = append(b, ',')
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				b = append(b, "null"...)
				continue
			}
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		}
		b = append(b, ']')
	}
	return append(b, ']'), nil
}
