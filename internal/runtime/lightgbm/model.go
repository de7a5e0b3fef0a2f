// Package lightgbm owns Ferry's native LightGBM runtime: it parses
// LightGBM's text model format (model.txt, versions v2 to v4) and evaluates
// the trees in Go, with the same split, missing-value and output rules as
// LightGBM's own predictor. No LightGBM library is needed or called.
package lightgbm

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// Output names. "predict" is the default output; the others are computed
// only when requested by name.
const (
	OutputPredict   = "predict"
	OutputRawScore  = "raw_score"
	OutputLeafIndex = "leaf_index"
)

// Request parameters Predict understands.
const (
	ParamRawScore       = "raw_score"       // bool: "predict" holds raw scores
	ParamNumIteration   = "num_iteration"   // int > 0: use at most this many boosting rounds
	ParamStartIteration = "start_iteration" // int >= 0: skip this many rounds first
)

// Format detects LightGBM text models: a .txt file whose first line is
// LightGBM's "tree" header.
var Format = FormatWith(Options{})

// Options tune a loaded model.
type Options struct {
	// NumIteration, when > 0, is the default number of boosting rounds used
	// for prediction (LightGBM's num_iteration); requests may override it.
	NumIteration int
}

// FormatWith returns a Format whose models use opts.
func FormatWith(opts Options) runtime.Format {
	return runtime.Format{
		Name:  "lightgbm",
		Match: match,
		Load: func(_ context.Context, path string) (runtime.Model, error) {
			return LoadFile(path, opts)
		},
	}
}

func match(name string, head []byte) bool {
	if !strings.HasSuffix(strings.ToLower(name), ".txt") {
		return false
	}
	s := string(head)
	return strings.HasPrefix(s, "tree\n") || strings.HasPrefix(s, "tree\r\n")
}

// Model is a loaded LightGBM model. It is read-only after loading and safe
// for concurrent use.
type Model struct {
	b    *booster
	opts Options

	// counts are the trees' training row counts (internal then leaf
	// counts per tree), kept for TreeSHAP; countsErr says why a model has
	// none. The laid-open ensemble is built on first use.
	counts    [][]float64
	countsErr error
	ensOnce   sync.Once
	ens       *runtime.TreeEnsemble
	ensErr    error
}

var _ runtime.Model = (*Model)(nil)

// LoadFile reads and parses a model.txt file.
func LoadFile(path string, opts Options) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, opts)
}

// Parse parses a model in LightGBM's text format. Malformed input returns an
// error wrapping runtime.ErrCorruptModel (or runtime.ErrUnsupported for a
// well-formed model using something Ferry does not implement).
func Parse(data []byte, opts Options) (*Model, error) {
	if opts.NumIteration < 0 {
		return nil, fmt.Errorf("lightgbm: NumIteration %d must not be negative", opts.NumIteration)
	}
	b, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("lightgbm: %w", err)
	}
	counts, cerr := treeCounts(data, len(b.trees))
	if cerr != nil {
		cerr = fmt.Errorf("lightgbm: %w", cerr)
	}
	return &Model{b: b, opts: opts, counts: counts, countsErr: cerr}, nil
}

// NumFeatures is the number of input features (max_feature_idx+1).
func (m *Model) NumFeatures() int { return m.b.numFeatures }

// Metadata implements runtime.Model.
func (m *Model) Metadata() runtime.Metadata {
	b := m.b
	out := []int64{-1}
	if b.numClass > 1 {
		out = []int64{-1, int64(b.numClass)}
	}
	props := map[string]string{
		"objective":      b.objective.name,
		"num_class":      strconv.Itoa(b.numClass),
		"num_iterations": strconv.Itoa(b.iterations()),
		"num_trees":      strconv.Itoa(len(b.trees)),
	}
	if b.version != "" {
		props["version"] = b.version
	}
	if len(b.featureNames) > 0 {
		props["feature_names"] = strings.Join(b.featureNames, ",")
	}
	return runtime.Metadata{
		Platform: "lightgbm",
		Inputs:   []runtime.TensorMeta{{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{-1, int64(b.numFeatures)}}},
		Outputs: []runtime.TensorMeta{
			{Name: OutputPredict, Datatype: tensor.FP64, Shape: out},
			{Name: OutputRawScore, Datatype: tensor.FP64, Shape: out},
			{Name: OutputLeafIndex, Datatype: tensor.Int64, Shape: []int64{-1, -1}},
		},
		Properties: props,
	}
}

// Close implements runtime.Model.
func (m *Model) Close() error { return nil }

// Predict implements runtime.Model. "predict" holds transformed outputs
// (probabilities for binary and multiclass) unless the request sets
// raw_score; "raw_score" and "leaf_index" are returned when named.
func (m *Model) Predict(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	p, err := m.plan(req)
	if err != nil {
		return nil, err
	}
	x, err := runtime.FeatureMatrix64(req, m.b.numFeatures)
	if err != nil {
		return nil, err
	}
	r, err := m.evaluate(ctx, x, p)
	if err != nil {
		return nil, err
	}
	shape := []int64{int64(x.Rows)}
	if m.b.numClass > 1 {
		shape = append(shape, int64(m.b.numClass))
	}
	res := &runtime.Response{}
	if p.wantPredict {
		res.Outputs = append(res.Outputs, runtime.NewFP64(OutputPredict, shape, r.predict))
	}
	if p.wantRaw {
		raw := r.raw
		if p.wantPredict && p.rawScore {
			raw = slices.Clone(raw) // the two tensors must not share memory
		}
		res.Outputs = append(res.Outputs, runtime.NewFP64(OutputRawScore, shape, raw))
	}
	if p.wantLeaves {
		res.Outputs = append(res.Outputs, runtime.NewInt64(OutputLeafIndex, []int64{int64(x.Rows), int64(p.end - p.start)}, r.leaves))
	}
	return res, nil
}

// plan is what one request asks for: outputs and the range of trees.
type plan struct {
	start, end  int // trees [start, end)
	iterations  int
	rawScore    bool
	wantPredict bool
	wantRaw     bool
	wantLeaves  bool
}

func (m *Model) plan(req *runtime.Request) (plan, error) {
	p := plan{
		wantPredict: req.Wants(OutputPredict, true),
		wantRaw:     req.Wants(OutputRawScore, false),
		wantLeaves:  req.Wants(OutputLeafIndex, false),
	}
	if !p.wantPredict && !p.wantRaw && !p.wantLeaves {
		return p, fmt.Errorf("%w: requested outputs %q; this model has %q, %q and %q", runtime.ErrInvalidInput, req.Outputs, OutputPredict, OutputRawScore, OutputLeafIndex)
	}
	var err error
	if p.rawScore, err = boolParam(req.Parameters, ParamRawScore); err != nil {
		return p, err
	}
	start, err := intParam(req.Parameters, ParamStartIteration, 0)
	if err != nil {
		return p, err
	}
	n, err := intParam(req.Parameters, ParamNumIteration, m.opts.NumIteration)
	if err != nil {
		return p, err
	}
	total := m.b.iterations()
	start = min(start, total)
	p.iterations = total - start
	if n > 0 {
		p.iterations = min(n, p.iterations)
	}
	k := m.b.treesPerIter
	p.start, p.end = start*k, (start+p.iterations)*k
	return p, nil
}

func boolParam(params map[string]any, key string) (bool, error) {
	v, ok := params[key]
	if !ok || v == nil {
		return false, nil
	}
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		if r, err := strconv.ParseBool(b); err == nil {
			return r, nil
		}
	}
	return false, fmt.Errorf("%w: parameter %q is %v; want true or false", runtime.ErrInvalidInput, key, v)
}

// intParam reads a non-negative integer parameter; 0 or absent means def.
func intParam(params map[string]any, key string, def int) (int, error) {
	v, ok := params[key]
	if !ok || v == nil {
		return def, nil
	}
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int32:
		n = int64(x)
	case int64:
		n = x
	case uint32:
		n = int64(x)
	case uint64:
		n = int64(min(x, math.MaxInt32))
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > math.MaxInt32 {
			return 0, fmt.Errorf("%w: parameter %q is %v; want an integer", runtime.ErrInvalidInput, key, v)
		}
		n = int64(x)
	case string:
		var err error
		if n, err = strconv.ParseInt(x, 10, 32); err != nil {
			return 0, fmt.Errorf("%w: parameter %q is %q; want an integer", runtime.ErrInvalidInput, key, x)
		}
	default:
		return 0, fmt.Errorf("%w: parameter %q is %v; want an integer", runtime.ErrInvalidInput, key, v)
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: parameter %q is %d; want >= 0", runtime.ErrInvalidInput, key, n)
	}
	if n == 0 {
		return def, nil
	}
	return int(min(n, math.MaxInt32)), nil
}
