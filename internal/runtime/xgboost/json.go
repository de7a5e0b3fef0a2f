package xgboost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ferryserve/ferry/internal/runtime"
)

// The JSON document XGBoost's save_model writes (1.0 onwards). Float arrays
// decode straight into float32 so values round exactly as XGBoost's own
// parser rounds them.
type jsonDoc struct {
	Learner *struct {
		FeatureNames     []string            `json:"feature_names"`
		GradientBooster  jsonGradientBooster `json:"gradient_booster"`
		LearnerModelParm struct {
			BaseScore string `json:"base_score"`
			NumClass  string `json:"num_class"`
			NumFeat   string `json:"num_feature"`
			NumTarget string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
	} `json:"learner"`
	Version []int `json:"version"`
}

type jsonGradientBooster struct {
	Name   string         `json:"name"`
	Model  jsonBoostModel `json:"model"`
	GBTree *struct {
		Model jsonBoostModel `json:"model"`
	} `json:"gbtree"` // dart
	WeightDrop floats `json:"weight_drop"`
}

type jsonBoostModel struct {
	Param struct {
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"gbtree_model_param"`
	TreeInfo []int64    `json:"tree_info"`
	Trees    []jsonTree `json:"trees"`
	Weights  floats     `json:"weights"` // gblinear
}

type jsonTree struct {
	Left        []int64 `json:"left_children"`
	Right       []int64 `json:"right_children"`
	SplitIndex  []int64 `json:"split_indices"`
	SplitCond   floats  `json:"split_conditions"`
	DefaultLeft flags   `json:"default_left"`
	SumHessian  floats  `json:"sum_hessian"`
	SplitType   []int64 `json:"split_type"`
	Categories  []int64 `json:"categories"`
	CatNodes    []int64 `json:"categories_nodes"`
	CatSegments []int64 `json:"categories_segments"`
	CatSizes    []int64 `json:"categories_sizes"`
	Param       struct {
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
}

// flags accepts default_left as numbers (XGBoost ≥ 1.6) or booleans
// (earlier 1.x).
type flags []bool

func (f *flags) UnmarshalJSON(b []byte) error {
	var raw []any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make([]bool, len(raw))
	for i, v := range raw {
		switch v := v.(type) {
		case bool:
			out[i] = v
		case float64:
			out[i] = v != 0
		default:
			return fmt.Errorf("default_left[%d] is %v", i, v)
		}
	}
	*f = out
	return nil
}

// floats decodes a JSON array of float32, accepting the non-finite values
// XGBoost writes (NaN, Infinity: quoted by quoteNonFinite). Categorical
// nodes, for one, carry NaN as their split condition.
type floats []float32

func (f *floats) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*f = nil
		return nil
	}
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return fmt.Errorf("want an array of numbers, got %.20q", b)
	}
	body := bytes.TrimSpace(b[1 : len(b)-1])
	out := make([]float32, 0, bytes.Count(body, []byte(","))+1)
	for len(body) > 0 {
		tok, rest, _ := bytes.Cut(body, []byte(","))
		body = rest
		tok = bytes.TrimSpace(tok)
		var v float64
		switch string(tok) {
		case `"NaN"`:
			v = math.NaN()
		case `"Infinity"`:
			v = math.Inf(1)
		case `"-Infinity"`:
			v = math.Inf(-1)
		default:
			var err error
			if v, err = strconv.ParseFloat(string(tok), 32); err != nil {
				return fmt.Errorf("%.20q is not a number", tok)
			}
		}
		out = append(out, float32(v))
	}
	*f = out
	return nil
}

// quoteNonFinite turns the bare NaN, Infinity and -Infinity tokens that
// XGBoost writes (not valid JSON) into strings the decoder accepts.
func quoteNonFinite(data []byte) []byte {
	if !bytes.Contains(data, []byte("NaN")) && !bytes.Contains(data, []byte("Infinity")) {
		return data
	}
	out := make([]byte, 0, len(data)+64)
	inString, escaped := false, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			out = append(out, c)
			continue
		}
		tok := ""
		switch {
		case c == '"':
			inString = true
		case c == 'N' && bytes.HasPrefix(data[i:], []byte("NaN")):
			tok = "NaN"
		case c == 'I' && bytes.HasPrefix(data[i:], []byte("Infinity")):
			tok = "Infinity"
		case c == '-' && bytes.HasPrefix(data[i:], []byte("-Infinity")):
			tok = "-Infinity"
		}
		if tok == "" {
			out = append(out, c)
			continue
		}
		out = append(out, '"')
		out = append(out, tok...)
		out = append(out, '"')
		i += len(tok) - 1
	}
	return out
}

// parseJSON parses an XGBoost JSON model.
func parseJSON(data []byte) (*rawModel, error) {
	var doc jsonDoc
	if err := json.Unmarshal(quoteNonFinite(data), &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", runtime.ErrCorruptModel, err)
	}
	if doc.Learner == nil {
		return nil, corrupt("no \"learner\" object: not an XGBoost model")
	}
	l := doc.Learner
	p := l.LearnerModelParm
	r := &rawModel{objective: l.Objective.Name, booster: l.GradientBooster.Name, featureNames: l.FeatureNames}
	var err error
	if r.numFeature, err = paramInt("num_feature", p.NumFeat, -1); err != nil {
		return nil, err
	}
	if r.numClass, err = paramInt("num_class", p.NumClass, 0); err != nil {
		return nil, err
	}
	if r.numTarget, err = paramInt("num_target", p.NumTarget, 1); err != nil {
		return nil, err
	}
	if r.baseScore, err = parseBaseScore(p.BaseScore); err != nil {
		return nil, err
	}
	if len(doc.Version) > 0 {
		v := make([]string, len(doc.Version))
		for i, n := range doc.Version {
			v[i] = strconv.Itoa(n)
		}
		r.version = strings.Join(v, ".")
	}
	gb := &l.GradientBooster
	model := &gb.Model
	switch gb.Name {
	case "gblinear":
		r.linear = model.Weights
		return r, nil
	case "dart":
		if gb.GBTree == nil {
			return nil, corrupt("dart booster without \"gbtree\"")
		}
		model = &gb.GBTree.Model
		r.weightDrop = gb.WeightDrop
	}
	if err := leafVectorUnsupported(model.Param.SizeLeafVector); err != nil {
		return nil, err
	}
	r.treeInfo = model.TreeInfo
	r.trees = make([]rawTree, len(model.Trees))
	for i := range model.Trees {
		if err := model.Trees[i].raw(&r.trees[i]); err != nil {
			return nil, fmt.Errorf("tree %d: %w", i, err)
		}
	}
	return r, nil
}

func (jt *jsonTree) raw(t *rawTree) error {
	if err := leafVectorUnsupported(jt.Param.SizeLeafVector); err != nil {
		return err
	}
	*t = rawTree{left: jt.Left, right: jt.Right, splitIndex: jt.SplitIndex, cond: jt.SplitCond, defaultLeft: jt.DefaultLeft, cover: jt.SumHessian}
	n := len(jt.Left)
	hasCat := false
	for _, s := range jt.SplitType {
		hasCat = hasCat || s != 0
	}
	if !hasCat {
		return nil
	}
	if len(jt.SplitType) != n {
		return corrupt("split_type has %d entries for %d nodes", len(jt.SplitType), n)
	}
	if len(jt.CatSegments) != len(jt.CatNodes) || len(jt.CatSizes) != len(jt.CatNodes) {
		return corrupt("categories_nodes, categories_segments and categories_sizes differ in length")
	}
	t.categorical = make([]bool, n)
	t.categories = make([][]int64, n)
	for i, s := range jt.SplitType {
		t.categorical[i] = s != 0
	}
	for k, nid := range jt.CatNodes {
		beg, size := jt.CatSegments[k], jt.CatSizes[k]
		if nid < 0 || nid >= int64(n) || beg < 0 || size < 0 || beg > int64(len(jt.Categories)) || size > int64(len(jt.Categories))-beg {
			return corrupt("category segment %d out of range", k)
		}
		t.categories[nid] = jt.Categories[beg : beg+size]
	}
	return nil
}

func leafVectorUnsupported(s string) error {
	if s != "" && s != "0" && s != "1" {
		return fmt.Errorf("%w: vector leaves (size_leaf_vector=%s, multi_strategy=multi_output_tree)", runtime.ErrUnsupported, s)
	}
	return nil
}

func paramInt(name, s string, def int64) (int64, error) {
	if s == "" {
		if def < 0 {
			return 0, corrupt("missing %s", name)
		}
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, corrupt("%s %q is not an integer", name, s)
	}
	return n, nil
}

// parseBaseScore reads base_score as XGBoost writes it: "5E-1" before 3.1,
// a vector like "[5E-1]" or "[1E-1,2E-1,7E-1]" from 3.1 on.
func parseBaseScore(s string) ([]float32, error) {
	if s == "" {
		return []float32{0.5}, nil
	}
	inner := s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		inner = s[1 : len(s)-1]
	}
	var out []float32
	for part := range strings.SplitSeq(inner, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(part), 32)
		if err != nil {
			return nil, corrupt("base_score %q is not a number or vector", s)
		}
		out = append(out, float32(v))
	}
	return out, nil
}
