package sklearn

import (
	"fmt"
	"math"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
)

// obj is a pickled sklearn object's class name and attribute dict, with
// typed accessors that report what is missing or mistyped.
type obj struct {
	cls   string
	st    *pickle.Dict
	depth int // nesting below the top-level estimator
}

// maxNesting bounds nested Pipelines and ColumnTransformers, so a pickle
// whose objects contain themselves cannot recurse forever.
const maxNesting = 32

// sub reads an object nested inside o.
func (o obj) sub(v any) (obj, error) {
	if o.depth >= maxNesting {
		return obj{}, o.errf("estimators nested more than %d deep", maxNesting)
	}
	c, err := asObj(v)
	c.depth = o.depth + 1
	return c, err
}

func asObj(v any) (obj, error) {
	o, ok := v.(*pickle.Object)
	if !ok {
		return obj{}, fmt.Errorf("%w: expected an sklearn object, got %s", runtime.ErrCorruptModel, pickle.Describe(v))
	}
	st, ok := o.State.(*pickle.Dict)
	if !ok {
		if t, ok2 := o.State.(pickle.Tuple); ok2 && len(t) == 2 {
			st, ok = t[0].(*pickle.Dict)
		}
	}
	if !ok {
		return obj{}, fmt.Errorf("%w: %s has state %s, want a dict", runtime.ErrCorruptModel, o.Class, pickle.Describe(o.State))
	}
	return obj{cls: o.Class.Name, st: st}, nil
}

func (o obj) errf(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", runtime.ErrCorruptModel, o.cls, fmt.Sprintf(format, args...))
}

func (o obj) get(k string) (any, bool) { return o.st.Get(k) }

func (o obj) has(k string) bool {
	v, ok := o.st.Get(k)
	return ok && v != nil
}

func (o obj) str(k string) (string, error) {
	v, _ := o.st.Get(k)
	s, ok := v.(string)
	if !ok {
		return "", o.errf("attribute %s is %s, want str", k, pickle.Describe(v))
	}
	return s, nil
}

func (o obj) strOr(k, def string) string {
	if s, err := o.str(k); err == nil {
		return s
	}
	return def
}

func (o obj) num(k string) (float64, error) {
	v, _ := o.st.Get(k)
	f, ok := pickle.Number(v)
	if !ok {
		return 0, o.errf("attribute %s is %s, want a number", k, pickle.Describe(v))
	}
	return f, nil
}

func (o obj) int(k string) (int, error) {
	f, err := o.num(k)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || f < 0 || f > 1<<30 {
		return 0, o.errf("attribute %s is %v, want a small non-negative integer", k, f)
	}
	return int(f), nil
}

func (o obj) array(k string) (*pickle.Array, error) {
	v, _ := o.st.Get(k)
	a, ok := v.(*pickle.Array)
	if !ok || a.Dtype == nil {
		return nil, o.errf("attribute %s is %s, want a numpy array", k, pickle.Describe(v))
	}
	return a, nil
}

// floats returns a numeric array attribute and its shape.
func (o obj) floats(k string) ([]float64, []int, error) {
	a, err := o.array(k)
	if err != nil {
		return nil, nil, err
	}
	x, err := a.Float64s()
	if err != nil {
		return nil, nil, o.errf("attribute %s: %v", k, err)
	}
	return x, a.Shape, nil
}

// vec returns a numeric array attribute that must hold n values (any shape).
func (o obj) vec(k string, n int) ([]float64, error) {
	x, _, err := o.floats(k)
	if err != nil {
		return nil, err
	}
	if n >= 0 && len(x) != n {
		return nil, o.errf("attribute %s has %d values, want %d", k, len(x), n)
	}
	return x, nil
}

func (o obj) list(k string) ([]any, error) {
	v, _ := o.st.Get(k)
	switch l := v.(type) {
	case *pickle.List:
		return l.Items, nil
	case pickle.Tuple:
		return l, nil
	case *pickle.Array:
		if l.Kind() == 'O' {
			return l.Objects, nil
		}
	}
	return nil, o.errf("attribute %s is %s, want a list", k, pickle.Describe(v))
}

// nFeatures reads n_features_in_.
func (o obj) nFeatures() (int, error) {
	n, err := o.int("n_features_in_")
	if err != nil {
		return 0, err
	}
	if n <= 0 {
		return 0, o.errf("n_features_in_ is %d", n)
	}
	return n, nil
}
