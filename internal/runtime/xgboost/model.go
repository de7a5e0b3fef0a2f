// Package xgboost owns Ferry's native XGBoost runtime: it parses XGBoost
// models in all three encodings the library writes (JSON, UBJSON and the
// legacy binary format) and evaluates gbtree, dart and gblinear boosters in
// Go with XGBoost's own float32 arithmetic, split, missing-value and
// categorical rules. No XGBoost library is needed or called.
package xgboost

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// Output names. "predict" is the default output; "raw_score" (the margin,
// XGBoost's output_margin=True) is computed only when requested by name.
const (
	OutputPredict  = "predict"
	OutputRawScore = "raw_score"
)

// Encoding is how a model file is encoded.
type Encoding string

// The encodings XGBoost writes.
const (
	EncodingJSON   Encoding = "json"
	EncodingUBJSON Encoding = "ubj"
	EncodingBinary Encoding = "bst" // legacy binary, XGBoost < 2 default
)

// Format detects XGBoost models: *.json files whose head mentions
// "learner", *.ubj files and *.bst files. The encoding is taken from the
// content, not the name, since XGBoost ≥ 2 may write UBJSON to any name.
var Format = runtime.Format{
	Name:  "xgboost",
	Match: match,
	Load: func(_ context.Context, path string) (runtime.Model, error) {
		return LoadFile(path)
	},
}

func match(name string, head []byte) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return bytes.Contains(head, []byte(`"learner"`))
	case ".ubj", ".bst":
		return true
	}
	return false
}

// Model is a loaded XGBoost model. It is read-only after loading and safe
// for concurrent use.
type Model struct {
	b        *booster
	encoding Encoding
	raw      *rawModel // for metadata only
}

var _ runtime.Model = (*Model)(nil)

// LoadFile reads and parses a model file.
func LoadFile(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Sniff tells the encoding of a model file from its first bytes.
func Sniff(data []byte) Encoding {
	s := bytes.TrimLeft(data, " \t\r\n")
	if len(s) > 0 && s[0] == '{' {
		rest := bytes.TrimLeft(s[1:], " \t\r\n")
		if len(rest) == 0 || rest[0] == '"' || rest[0] == '}' {
			return EncodingJSON
		}
		return EncodingUBJSON
	}
	return EncodingBinary
}

// Parse parses a model in any of XGBoost's encodings. Malformed input
// returns an error wrapping runtime.ErrCorruptModel; a well-formed model
// using something Ferry does not implement wraps runtime.ErrUnsupported.
func Parse(data []byte) (*Model, error) {
	enc := Sniff(data)
	var (
		r   *rawModel
		err error
	)
	switch enc {
	case EncodingJSON:
		r, err = parseJSON(data)
	case EncodingUBJSON:
		var js []byte
		if js, err = ubjToJSON(data); err == nil {
			r, err = parseJSON(js)
		}
	default:
		r, err = parseBinary(data)
	}
	if err != nil {
		return nil, fmt.Errorf("xgboost %s: %w", enc, err)
	}
	b, err := build(r)
	if err != nil {
		return nil, fmt.Errorf("xgboost %s: %w", enc, err)
	}
	r.trees, r.linear, r.weightDrop, r.treeInfo = nil, nil, nil, nil // keep only metadata
	return &Model{b: b, encoding: enc, raw: r}, nil
}

// NumFeatures is the number of input features.
func (m *Model) NumFeatures() int { return m.b.numFeature }

// Encoding is the encoding the model was read from.
func (m *Model) Encoding() Encoding { return m.encoding }

func (m *Model) predictShape() []int64 {
	if n := m.b.obj.outputsPerRow(m.b.ngroup); n > 1 {
		return []int64{-1, int64(n)}
	}
	return []int64{-1}
}

func (m *Model) rawShape() []int64 {
	if m.b.ngroup > 1 {
		return []int64{-1, int64(m.b.ngroup)}
	}
	return []int64{-1}
}

// Metadata implements runtime.Model.
func (m *Model) Metadata() runtime.Metadata {
	b := m.b
	props := map[string]string{
		"objective":  b.obj.name,
		"booster":    b.kind,
		"num_class":  strconv.FormatInt(m.raw.numClass, 10),
		"num_trees":  strconv.Itoa(len(b.trees)),
		"encoding":   string(m.encoding),
		"base_score": fmt.Sprint(m.raw.baseScore),
	}
	if m.raw.version != "" {
		props["version"] = m.raw.version
	}
	if len(m.raw.featureNames) > 0 {
		props["feature_names"] = strings.Join(m.raw.featureNames, ",")
	}
	return runtime.Metadata{
		Platform: "xgboost_" + string(m.encoding),
		Inputs:   []runtime.TensorMeta{{Name: "input-0", Datatype: tensor.FP32, Shape: []int64{-1, int64(b.numFeature)}}},
		Outputs: []runtime.TensorMeta{
			{Name: OutputPredict, Datatype: tensor.FP32, Shape: m.predictShape()},
			{Name: OutputRawScore, Datatype: tensor.FP32, Shape: m.rawShape()},
		},
		Properties: props,
	}
}

// Close implements runtime.Model.
func (m *Model) Close() error { return nil }

// Predict implements runtime.Model: "predict" holds what XGBoost's
// Booster.predict returns (probabilities, class indices, exp'd counts ...),
// "raw_score" the margins (output_margin=True) when requested.
func (m *Model) Predict(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	wantPredict := req.Wants(OutputPredict, true)
	wantRaw := req.Wants(OutputRawScore, false)
	if !wantPredict && !wantRaw {
		return nil, fmt.Errorf("%w: requested outputs %q; this model has %q and %q", runtime.ErrInvalidInput, req.Outputs, OutputPredict, OutputRawScore)
	}
	x, err := runtime.FeatureMatrix32(req, m.b.numFeature)
	if err != nil {
		return nil, err
	}
	margin, err := m.b.marginsParallel(ctx, x.Data, x.Rows, x.Cols)
	if err != nil {
		return nil, err
	}
	res := &runtime.Response{}
	if wantPredict {
		shape := m.predictShape()
		shape[0] = int64(x.Rows)
		pred := margin
		if m.b.obj.link != linkIdentity || wantRaw {
			pred = make([]float32, x.Rows*m.b.obj.outputsPerRow(m.b.ngroup))
			m.b.obj.transform(margin, m.b.ngroup, pred)
		}
		res.Outputs = append(res.Outputs, runtime.NewFP32(OutputPredict, shape, pred))
	}
	if wantRaw {
		shape := m.rawShape()
		shape[0] = int64(x.Rows)
		res.Outputs = append(res.Outputs, runtime.NewFP32(OutputRawScore, shape, margin))
	}
	return res, nil
}

// PredictMargins evaluates rows (row-major, NumFeatures columns each) and
// returns the margins, ngroup per row. It is the allocation-light entry
// used by benchmarks and embedders that hold a float32 matrix already.
func (m *Model) PredictMargins(ctx context.Context, x []float32, rows int) ([]float32, error) {
	if rows < 0 || len(x) != rows*m.b.numFeature {
		return nil, fmt.Errorf("%w: %d values for %d rows of %d features", runtime.ErrInvalidInput, len(x), rows, m.b.numFeature)
	}
	return m.b.marginsParallel(ctx, x, rows, m.b.numFeature)
}
