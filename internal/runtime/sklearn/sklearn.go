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

	// ens is the model's trees laid open for TreeSHAP (trees, forests,
	// gradient boosting, and pipelines of per-feature steps ending in one;
	// read at load since the pickle is gone afterwards); ensErr says why
	// there is none.
	ens    *runtime.TreeEnsemble
	ensErr error
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
	v, err := pickle.Load(ctx, r, pickle.Options{Allow: allow, Budget: runtime.DecodeBudget(ctx)})
	if err != nil {
		return nil, loadError(ctx, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return FromObject(v)
}

// loadError classifies a decode error: a global outside the allow-list is
// a valid pickle Ferry does not support (not a corrupt one), a file over
// the decode budget says which flag raises it.
func loadError(ctx context.Context, err error) error {
	var fe *pickle.ForbiddenError
	switch {
	case errors.As(err, &fe) && strings.HasPrefix(fe.Global.Module, "sklearn."):
		return fmt.Errorf("%w: %s", runtime.ErrUnsupported, notSupported(fe.Global.Name))
	case errors.As(err, &fe):
		return fmt.Errorf("%w: the model references %s, which is outside the allow-list of numpy data and supported scikit-learn classes; "+
			"Ferry runs no Python code, so custom functions (such as a FunctionTransformer's func) and custom classes cannot be served (%w)",
			runtime.ErrUnsupported, fe.Global, err)
	case errors.Is(err, pickle.ErrBudget):
		return fmt.Errorf("%w: %w (raise --max-model-decode-bytes, or --memory-limit, which also bounds a load)", runtime.ErrBudget, err)
	case errors.Is(err, pickle.ErrUnsupported):
		return fmt.Errorf("%w: %w", runtime.ErrUnsupported, err)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return err
	}
	return fmt.Errorf("%w: %w", runtime.ErrCorruptModel, err)
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
	m.ens, m.ensErr = layOpen(v, o, est)
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
	if m.est.text != nil {
		md.Inputs = []runtime.TensorMeta{{Name: "input-0", Datatype: tensor.Bytes, Shape: []int64{-1}}}
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

// chunkRows is how many rows Predict evaluates between checks of ctx.
const chunkRows = 2048

// Predict implements runtime.Model.
func (m *Model) Predict(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.checkOutputs(req); err != nil {
		return nil, err
	}
	in, err := m.input(req)
	if err != nil {
		return nil, err
	}
	var y []float64
	var all classResult
	for lo := 0; lo < in.rows; lo += in.chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		x, err := in.at(lo, min(lo+in.chunk, in.rows))
		if err != nil {
			return nil, err
		}
		for _, t := range m.est.steps {
			if x, err = t.transform(x); err != nil {
				return nil, err
			}
		}
		if m.est.reg != nil {
			y = append(y, m.est.reg.regress(x)...)
			continue
		}
		r := m.est.clf.classify(x)
		all.idx = append(all.idx, r.idx...)
		all.proba.data = append(all.proba.data, r.proba.data...)
		all.decision.data = append(all.decision.data, r.decision.data...)
	}
	n := int64(in.rows)
	res := &runtime.Response{}
	if m.est.reg != nil {
		if y == nil {
			y = []float64{}
		}
		res.Outputs = append(res.Outputs, runtime.NewFP64(OutputPredict, []int64{n}, y))
		return res, nil
	}
	c := m.est.clf
	if all.idx == nil {
		all.idx = []int{}
	}
	if req.Wants(OutputPredict, true) {
		res.Outputs = append(res.Outputs, c.classes().tensor(OutputPredict, all.idx))
	}
	if req.Wants(OutputProba, false) {
		res.Outputs = append(res.Outputs, runtime.NewFP64(OutputProba, []int64{n, int64(c.classes().len())}, nonNil(all.proba.data)))
	}
	if req.Wants(OutputDecision, false) {
		shape := []int64{n}
		if d := c.decisionWidth(); d > 1 {
			shape = append(shape, int64(d))
		}
		res.Outputs = append(res.Outputs, runtime.NewFP64(OutputDecision, shape, nonNil(all.decision.data)))
	}
	return res, nil
}

// rowSource hands Predict its input in chunks of rows, each a fresh
// matrix the steps may change in place.
type rowSource struct {
	rows, chunk int
	at          func(lo, hi int) (mat, error)
}

// textChunkBytes bounds the dense term matrix of one chunk of documents.
const textChunkBytes = 16 << 20

// input reads the request: numbers [rows, features], or for a text
// pipeline one document per row (BYTES [rows] or [rows, 1]).
func (m *Model) input(req *runtime.Request) (rowSource, error) {
	if m.est.text != nil {
		docs, err := documents(req)
		if err != nil {
			return rowSource{}, err
		}
		chunk := max(1, min(chunkRows, textChunkBytes/(8*m.est.text.width())))
		return rowSource{rows: len(docs), chunk: chunk, at: func(lo, hi int) (mat, error) {
			return m.est.text.transformText(docs[lo:hi])
		}}, nil
	}
	xm, err := runtime.FeatureMatrix64(req, m.nFeatures)
	if err != nil {
		return rowSource{}, err
	}
	// Transforms work in place, and FeatureMatrix64 may alias the
	// request, so each chunk is a copy.
	return rowSource{rows: xm.Rows, chunk: chunkRows, at: func(lo, hi int) (mat, error) {
		return mat{rows: hi - lo, cols: xm.Cols, data: append([]float64(nil), xm.Data[lo*xm.Cols:hi*xm.Cols]...)}, nil
	}}, nil
}

// documents reads a text pipeline's input: one BYTES tensor of shape
// [rows] or [rows, 1], one UTF-8 document per element.
func documents(req *runtime.Request) ([]string, error) {
	if len(req.Inputs) != 1 {
		return nil, fmt.Errorf("%w: a text pipeline takes one input of documents, got %d inputs", runtime.ErrInvalidInput, len(req.Inputs))
	}
	t := req.Inputs[0]
	b, ok := t.Data.([][]byte)
	if t.Datatype != tensor.Bytes || !ok {
		return nil, fmt.Errorf("%w: a text pipeline takes BYTES documents (V1: \"instances\": [\"text\", ...]), got %s %q", runtime.ErrInvalidInput, t.Datatype, t.Name)
	}
	if len(t.Shape) < 1 || len(t.Shape) > 2 || (len(t.Shape) == 2 && t.Shape[1] != 1) || t.Shape[0] != int64(len(b)) {
		return nil, fmt.Errorf("%w: documents of shape %v: want [rows] or [rows, 1]", runtime.ErrInvalidInput, t.Shape)
	}
	docs := make([]string, len(b))
	for i, d := range b {
		docs[i] = string(d)
	}
	return docs, nil
}

// checkOutputs refuses outputs this model does not have before any work.
func (m *Model) checkOutputs(req *runtime.Request) error {
	for _, o := range req.Outputs {
		if o != OutputPredict && o != OutputProba && o != OutputDecision {
			return fmt.Errorf("%w: unknown output %q (this model has %s, %s, %s)", runtime.ErrInvalidInput, o, OutputPredict, OutputProba, OutputDecision)
		}
	}
	wantProba, wantDec := req.Wants(OutputProba, false), req.Wants(OutputDecision, false)
	if m.est.reg != nil {
		if wantProba || wantDec {
			return fmt.Errorf("%w: %s is a regressor; it has only the %q output", runtime.ErrInvalidInput, m.class, OutputPredict)
		}
		return nil
	}
	if wantProba && !m.est.clf.hasProba() {
		return fmt.Errorf("%w: %s has no %s", runtime.ErrInvalidInput, m.class, OutputProba)
	}
	if wantDec && m.est.clf.decisionWidth() == 0 {
		return fmt.Errorf("%w: %s has no %s", runtime.ErrInvalidInput, m.class, OutputDecision)
	}
	return nil
}

func nonNil(x []float64) []float64 {
	if x == nil {
		return []float64{}
	}
	return x
}

// Close implements runtime.Model.
func (m *Model) Close() error { return nil }
