package sklearn

import (
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
)

// oneHot is OneHotEncoder on numeric categories, producing dense output.
type oneHot struct {
	cats    [][]float64
	drop    []int // per feature: category index dropped, or -1
	ignore  bool  // handle_unknown != "error"
	outCols int
}

func buildOneHotEncoder(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	if v, _ := o.get("_infrequent_enabled"); v == true {
		return nil, 0, fmt.Errorf("%w: OneHotEncoder with infrequent categories", runtime.ErrUnsupported)
	}
	cl, err := o.list("categories_")
	if err != nil {
		return nil, 0, err
	}
	if len(cl) != n {
		return nil, 0, o.errf("%d category lists for %d features", len(cl), n)
	}
	h := &oneHot{ignore: o.strOr("handle_unknown", "error") != "error"}
	for j, c := range cl {
		a, ok := c.(*pickle.Array)
		if !ok {
			return nil, 0, o.errf("categories_[%d] is %s", j, pickle.Describe(c))
		}
		f, err := a.Float64s()
		if err != nil {
			return nil, 0, fmt.Errorf("%w: OneHotEncoder with non-numeric categories (feature %d); Ferry takes numeric inputs", runtime.ErrUnsupported, j)
		}
		h.cats = append(h.cats, f)
		h.drop = append(h.drop, -1)
	}
	if dv, _ := o.get("drop_idx_"); dv != nil {
		a, ok := dv.(*pickle.Array)
		if !ok || a.Len() != n {
			return nil, 0, o.errf("drop_idx_ is %s", pickle.Describe(dv))
		}
		var idx []any
		if a.Kind() == 'O' {
			idx = a.Objects
		} else {
			f, _ := a.Float64s()
			for _, v := range f {
				idx = append(idx, v)
			}
		}
		for j, v := range idx {
			if d, ok := pickle.Number(v); ok {
				if int(d) < 0 || int(d) >= len(h.cats[j]) {
					return nil, 0, o.errf("drop_idx_[%d] = %v", j, d)
				}
				h.drop[j] = int(d)
			}
		}
	}
	for j, c := range h.cats {
		h.outCols += len(c)
		if h.drop[j] >= 0 {
			h.outCols--
		}
	}
	return h, n, nil
}

func (h *oneHot) width() int { return h.outCols }

func (h *oneHot) transform(x mat) (mat, error) {
	out := newMat(x.rows, h.outCols)
	for i := 0; i < x.rows; i++ {
		r, o := x.row(i), out.row(i)
		col := 0
		for j, cats := range h.cats {
			found := false
			for c, v := range cats {
				if c == h.drop[j] {
					if r[j] == v {
						found = true
					}
					continue
				}
				if r[j] == v {
					o[col] = 1
					found = true
				}
				col++
			}
			if !found && !h.ignore {
				return mat{}, fmt.Errorf("%w: feature %d has category %v, unknown to the OneHotEncoder (handle_unknown=\"error\")", runtime.ErrInvalidInput, j, r[j])
			}
		}
	}
	return out, nil
}

// columnPart is one fitted transformer of a ColumnTransformer and the input
// columns it reads; a nil transformer passes them through.
type columnPart struct {
	t     transformer
	cols  []int
	width int
}

// columnTransformer concatenates its parts' outputs, in transformers_ order.
type columnTransformer struct {
	parts []columnPart
	out   int
}

func buildColumnTransformer(o obj) (any, int, error) {
	n, err := o.nFeatures()
	if err != nil {
		return nil, 0, err
	}
	var names []string
	if a, err := o.array("feature_names_in_"); err == nil {
		names, _ = a.Strings()
	}
	list, err := o.list("transformers_")
	if err != nil {
		return nil, 0, err
	}
	ct := &columnTransformer{}
	for i, it := range list {
		t, ok := it.(pickle.Tuple)
		if !ok || len(t) != 3 {
			return nil, 0, o.errf("transformers_[%d] is %s, want (name, transformer, columns)", i, pickle.Describe(it))
		}
		cols, err := columnIndices(t[2], n, names)
		if err != nil {
			return nil, 0, o.errf("transformers_[%d] columns: %v", i, err)
		}
		if t[1] == "drop" || len(cols) == 0 {
			continue
		}
		part := columnPart{cols: cols, width: len(cols)}
		if t[1] != "passthrough" {
			tr, w, err := buildTransformer(o, t[1])
			if err != nil {
				return nil, 0, err
			}
			if tr.in != len(cols) {
				return nil, 0, o.errf("transformers_[%d] takes %d features but is given %d columns", i, tr.in, len(cols))
			}
			part.t, part.width = tr, w
		}
		ct.parts = append(ct.parts, part)
		ct.out += part.width
	}
	return ct, n, nil
}

// columnIndices resolves a ColumnTransformer column selector: ints, a
// slice, a boolean mask or names.
func columnIndices(v any, n int, names []string) ([]int, error) {
	var items []any
	switch s := v.(type) {
	case *pickle.List:
		items = s.Items
	case pickle.Tuple:
		items = s
	case *pickle.Array:
		if s.Kind() == 'b' {
			f, _ := s.Float64s()
			var out []int
			for i, b := range f {
				if b != 0 {
					out = append(out, i)
				}
			}
			return out, nil
		}
		if s.Kind() == 'O' || s.Kind() == 'U' {
			strs, err := s.Strings()
			if err != nil {
				return nil, err
			}
			for _, x := range strs {
				items = append(items, x)
			}
		} else {
			f, err := s.Float64s()
			if err != nil {
				return nil, err
			}
			for _, x := range f {
				items = append(items, int64(x))
			}
		}
	case int64, string:
		items = []any{s}
	default:
		return nil, fmt.Errorf("selector %s", pickle.Describe(v))
	}
	out := make([]int, 0, len(items))
	for _, it := range items {
		switch c := it.(type) {
		case int64:
			if c < 0 {
				c += int64(n)
			}
			if c < 0 || c >= int64(n) {
				return nil, fmt.Errorf("column %d of %d", c, n)
			}
			out = append(out, int(c))
		case bool:
			return nil, fmt.Errorf("boolean list selectors")
		case string:
			k := -1
			for i, name := range names {
				if name == c {
					k = i
				}
			}
			if k < 0 {
				return nil, fmt.Errorf("column %q not in feature_names_in_", c)
			}
			out = append(out, k)
		default:
			return nil, fmt.Errorf("selector element %s", pickle.Describe(it))
		}
	}
	return out, nil
}

func (ct *columnTransformer) width() int { return ct.out }

func (ct *columnTransformer) transform(x mat) (mat, error) {
	out := newMat(x.rows, ct.out)
	off := 0
	for _, p := range ct.parts {
		sub := newMat(x.rows, len(p.cols))
		for i := 0; i < x.rows; i++ {
			r, s := x.row(i), sub.row(i)
			for k, c := range p.cols {
				s[k] = r[c]
			}
		}
		if p.t != nil {
			var err error
			if sub, err = p.t.transform(sub); err != nil {
				return mat{}, err
			}
		}
		for i := 0; i < x.rows; i++ {
			copy(out.row(i)[off:off+p.width], sub.row(i))
		}
		off += p.width
	}
	return out, nil
}

// chain is a transformer-only Pipeline used inside a ColumnTransformer.
type chain struct {
	steps []transformer
	in    int
	out   int
}

func (c *chain) width() int { return c.out }

func (c *chain) transform(x mat) (mat, error) {
	var err error
	for _, t := range c.steps {
		if x, err = t.transform(x); err != nil {
			return mat{}, err
		}
	}
	return x, nil
}

// buildTransformer builds a fitted transformer (or transformer-only
// Pipeline) and reports its input and output widths.
func buildTransformer(parent obj, v any) (*chain, int, error) {
	o, err := parent.sub(v)
	if err != nil {
		return nil, 0, err
	}
	if o.cls == "Pipeline" {
		steps, err := o.list("steps")
		if err != nil {
			return nil, 0, err
		}
		c := &chain{in: -1}
		for i, s := range steps {
			t, ok := s.(pickle.Tuple)
			if !ok || len(t) != 2 {
				return nil, 0, o.errf("step %d is %s", i, pickle.Describe(s))
			}
			if t[1] == nil || t[1] == "passthrough" {
				continue
			}
			sub, w, err := buildTransformer(o, t[1])
			if err != nil {
				return nil, 0, err
			}
			if c.in < 0 {
				c.in = sub.in
			} else if sub.in != c.out {
				return nil, 0, o.errf("step %d takes %d features, gets %d", i, sub.in, c.out)
			}
			c.steps = append(c.steps, sub.steps...)
			c.out = w
		}
		if c.in < 0 {
			return nil, 0, o.errf("empty Pipeline")
		}
		return c, c.out, nil
	}
	b, ok := builders[o.cls]
	if !ok || b == nil {
		return nil, 0, fmt.Errorf("%w: %s", runtime.ErrUnsupported, notSupported(o.cls))
	}
	e, n, err := b(o)
	if err != nil {
		return nil, 0, err
	}
	t, ok := e.(transformer)
	if !ok {
		return nil, 0, o.errf("used as a transformer but it predicts")
	}
	w := outWidth(t, n)
	return &chain{steps: []transformer{t}, in: n, out: w}, w, nil
}
