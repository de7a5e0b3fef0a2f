// Package sklearn owns Ferry's native scikit-learn runtime: it reads
// estimators saved with joblib or pickle through the allow-listing reader
// in sub-package pickle (so nothing in a model file ever runs), rebuilds
// the fitted parameters as Go values and evaluates predict, predict_proba
// and decision_function with scikit-learn's arithmetic.
package sklearn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
	"github.com/ferryserve/ferry/internal/tensor"
)

// Format detects .joblib, .pkl and .pickle files.
var Format = runtime.Format{
	Name:  "sklearn",
	Match: match,
	Load: func(ctx context.Context, path string) (runtime.Model, error) {
		return Load(ctx, path)
	},
}

func match(name string, _ []byte) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".joblib", ".pkl", ".pickle":
		return true
	}
	return false
}

// Output names.
const (
	OutputPredict  = "predict"
	OutputProba    = "predict_proba"
	OutputDecision = "decision_function"
)

// Model is a loaded scikit-learn estimator (or Pipeline).
type Model struct {
	class        string
	nFeatures    int
	featureNames []string
	est          estimator
}

var _ runtime.Model = (*Model)(nil)

// Load reads a joblib or pickle file holding a supported estimator.
func Load(ctx context.Context, path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(ctx, f)
}

// Read loads a model from a joblib or pickle stream.
func Read(ctx context.Context, r io.Reader) (*Model, error) {
	v, err := pickle.Load(r, pickle.Options{Allow: allow})
	if err != nil {
		var fe *pickle.ForbiddenError
		if errors.As(err, &fe) && strings.HasPrefix(fe.Global.Module, "sklearn.") {
			return nil, fmt.Errorf("%w: %s", runtime.ErrUnsupported, notSupported(fe.Global.Name))
		}
		if errors.Is(err, pickle.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %w", runtime.ErrUnsupported, err)
		}
		return nil, fmt.Errorf("%w: %w", runtime.ErrCorruptModel, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return FromObject(v)
}

// FromObject builds a model from a decoded pickle value.
func FromObject(v any) (*Model, error) {
	o, err := asObj(v)
	if err != nil {
		return nil, err
	}
	est, err := buildEstimator(v)
	if err != nil {
		return nil, err
	}
	m := &Model{class: o.cls, est: est, nFeatures: est.nFeatures}
	if a, err := o.array("feature_names_in_"); err == nil {
		if names, err := a.Strings(); err == nil && len(names) == m.nFeatures {
			m.featureNames = names
		}
	}
	return m, nil
}

// Class is the estimator's class name, e.g. "RandomForestClassifier".
func (m *Model) Class() string { return m.class }

// Metadata implements runtime.Model.
func (m *Model) Metadata() runtime.Metadata {
	md := runtime.Metadata{
		Platform: "sklearn",
		Inputs:   []runtime.TensorMeta{{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{-1, int64(m.nFeatures)}}},
		Properties: map[string]string{
			"estimator": m.class,
		},
	}
	if m.featureNames != nil {
		md.Properties["feature_names_in_"] = strings.Join(m.featureNames, ",")
	}
	if c := m.est.clf; c != nil {
		k := int64(c.classes().len())
		md.Outputs = append(md.Outputs, runtime.TensorMeta{Name: OutputPredict, Datatype: c.classes().datatype(), Shape: []int64{-1}})
		if c.hasProba() {
			md.Outputs = append(md.Outputs, runtime.TensorMeta{Name: OutputProba, Datatype: tensor.FP64, Shape: []int64{-1, k}})
		}
		if d := c.decisionWidth(); d > 0 {
			shape := []int64{-1}
			if d > 1 {
				shape = []int64{-1, int64(d)}
			}
			md.Outputs = append(md.Outputs, runtime.TensorMeta{Name: OutputDecision, Datatype: tensor.FP64, Shape: shape})
		}
	} else {
		md.Outputs = append(md.Outputs, runtime.TensorMeta{Name: OutputPredict, Datatype: tensor.FP64, Shape: []int64{-1}})
	}
	return md
}

// Predict implements runtime.Model.
func (m *Model) Predict(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, o := range req.Outputs {
		if o != OutputPredict && o != OutputProba && o != OutputDecision {
			return nil, fmt.Errorf("%w: unknown output %q (this model has %s, %s, %s)", runtime.ErrInvalidInput, o, OutputPredict, OutputProba, OutputDecision)
		}
	}
	xm, err := runtime.FeatureMatrix64(req, m.nFeatures)
	if err != nil {
		return nil, err
	}
	x := mat{rows: xm.Rows, cols: xm.Cols, data: xm.Data}
	if len(req.Inputs) == 1 && len(req.Inputs[0].Shape) >= 1 {
		// FeatureMatrix64 may alias the request; transforms work on a copy.
		x.data = append([]float64(nil), x.data...)
	}
	for _, t := range m.est.steps {
		if x, err = t.transform(x); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	res := &runtime.Response{}
	n := int64(x.rows)
	if m.est.reg != nil {
		if req.Wants(OutputProba, false) || req.Wants(OutputDecision, false) {
			return nil, fmt.Errorf("%w: %s is a regressor; it has only the %q output", runtime.ErrInvalidInput, m.class, OutputPredict)
		}
		y := m.est.reg.regress(x)
		res.Outputs = append(res.Outputs, runtime.NewFP64(OutputPredict, []int64{n}, y))
		return res, nil
	}
	c := m.est.clf
	wantProba, wantDec := req.Wants(OutputProba, false), req.Wants(OutputDecision, false)
	if wantProba && !c.hasProba() {
		return nil, fmt.Errorf("%w: %s has no %s", runtime.ErrInvalidInput, m.class, OutputProba)
	}
	if wantDec && c.decisionWidth() == 0 {
		return nil, fmt.Errorf("%w: %s has no %s", runtime.ErrInvalidInput, m.class, OutputDecision)
	}
	r := c.classify(x)
	if req.Wants(OutputPredict, true) {
		res.Outputs = append(res.Outputs, c.classes().tensor(OutputPredict, r.idx))
	}
	if wantProba {
		res.Outputs = append(res.Outputs, runtime.NewFP64(OutputProba, []int64{n, int64(r.proba.cols)}, r.proba.data))
	}
	if wantDec {
		shape := []int64{n}
		if r.decision.cols > 1 {
			shape = append(shape, int64(r.decision.cols))
		}
		res.Outputs = append(res.Outputs, runtime.NewFP64(OutputDecision, shape, r.decision.data))
	}
	return res, nil
}

// Close implements runtime.Model.
func (m *Model) Close() error { return nil }
