package explain

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/ferryserve/ferry/internal/explain/lime"
	"github.com/ferryserve/ferry/internal/runtime"
)

// LimeData is the data of a LimeTabular explanation: the model's outputs
// for the instance and, for each explained output (the most probable
// classes first, or the one regression output), lime's explanation.
type LimeData struct {
	Prediction   []float64   `json:"prediction"`
	KernelWidth  float64     `json:"kernel_width"`
	FeatureNames []string    `json:"feature_names"`
	Explanations []LimeLabel `json:"explanations"`
	Raw          LimeRaw     `json:"raw"`
}

// LimeLabel is lime's Explanation for one output: the local linear
// model's intercept, weighted R² (score) and prediction at the instance,
// and its weights largest first, as lime's as_list (with discretisation
// the instance's quartile, "1.60 < x <= 1.80"; without, the feature's
// name; "name=category" for a categorical feature: the weight of being in
// that quartile or category) and local_exp (feature index).
type LimeLabel struct {
	Label           int      `json:"label"`
	ModelPrediction float64  `json:"model_prediction"`
	LocalPrediction float64  `json:"local_prediction"`
	Intercept       float64  `json:"intercept"`
	Score           float64  `json:"score"`
	AsList          [][2]any `json:"as_list"`
	LocalExp        [][2]any `json:"local_exp"`
}

// LimeRaw holds the explained instance.
type LimeRaw struct {
	Instance Rows `json:"instance"`
}

// newLimeTabular reads LimeTabular's keys and the training statistics.
func (x *Explainer) newLimeTabular(c *config) error {
	o := x.cfg.Options
	var cfg lime.TabularConfig
	c.int("num_samples", &cfg.NumSamples)
	c.int("num_features", &cfg.NumFeatures)
	c.float("kernel_width", &cfg.KernelWidth)
	c.string("feature_selection", &cfg.FeatureSelection)
	c.bool("sample_around_instance", &cfg.SampleAroundInstance)
	c.int("top_labels", &cfg.TopLabels)
	c.int("batch_size", &cfg.BatchSize)
	c.uint("seed", &cfg.Seed)
	cfg.Discretize = true // lime's default
	c.bool("discretize_continuous", &cfg.Discretize)
	if c.err != nil {
		return c.err
	}
	if err := cfg.Defaults().Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if o.Data == nil || len(o.Data.Rows) == 0 {
		return fmt.Errorf("%w: LimeTabular needs training rows: give --explainer-data (a JSON document with \"data\")", ErrConfig)
	}
	t, err := lime.NewTabular(o.Data.Rows, slices.Sorted(maps.Keys(o.Data.CategoryMap)), cfg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	x.lime = t
	return nil
}

func (x *Explainer) limeTabular(ctx context.Context, name string, row []float64) (*LimeData, error) {
	data := x.cfg.Options.Data
	if len(row) != len(data.Rows[0]) {
		return nil, fmt.Errorf("%w: instances[0] has %d features, the training data %d", ErrBadInput, len(row), len(data.Rows[0]))
	}
	res, err := x.lime.Explain(ctx, lime.PredictFunc(x.cfg.Predictor(name)), row)
	if err != nil {
		if errors.Is(err, ErrPredictor) || errors.Is(err, runtime.ErrInvalidInput) || ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: instances[0]: %w", ErrBadInput, err)
	}
	names := x.featureNames(len(row), nil)
	d := &LimeData{Prediction: res.Prediction, KernelWidth: x.lime.KernelWidth(), FeatureNames: names, Raw: LimeRaw{Instance: Rows{row}}}
	for _, e := range res.Explanations {
		l := LimeLabel{Label: e.Label, ModelPrediction: e.ModelPrediction, LocalPrediction: e.LocalPrediction, Intercept: e.Intercept, Score: e.Score,
			AsList: [][2]any{}, LocalExp: [][2]any{}}
		for k, f := range e.Features {
			name := x.lime.BinName(f, names[f], row[f])
			if name == "" {
				name = limeName(names[f], data.CategoryMap[f], row[f])
			}
			l.AsList = append(l.AsList, [2]any{name, e.Weights[k]})
			l.LocalExp = append(l.LocalExp, [2]any{f, e.Weights[k]})
		}
		d.Explanations = append(d.Explanations, l)
	}
	return d, nil
}

// limeName names a feature in as_list: a categorical feature with the
// instance's category, as lime does.
func limeName(name string, categories []string, v float64) string {
	if categories == nil {
		return name
	}
	if i := int(v); float64(i) == v && i >= 0 && i < len(categories) {
		return name + "=" + categories[i]
	}
	return fmt.Sprintf("%s=%v", name, v)
}
