package sklearn

import (
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// labels are a classifier's classes_, kept in their own type so predictions
// come back as the user trained them: ints, strings or floats.
type labels struct {
	ints   []int64
	strs   []string
	floats []float64
}

func (l labels) len() int { return max(len(l.ints), len(l.strs), len(l.floats)) }

func readLabels(o obj) (labels, error) {
	a, err := o.array("classes_")
	if err != nil {
		return labels{}, err
	}
	var l labels
	switch a.Kind() {
	case 'i', 'u', 'b':
		f, err := a.Float64s()
		if err != nil {
			return labels{}, o.errf("classes_: %v", err)
		}
		l.ints = make([]int64, len(f))
		for i, v := range f {
			l.ints[i] = int64(v)
		}
	case 'f':
		if l.floats, err = a.Float64s(); err != nil {
			return labels{}, o.errf("classes_: %v", err)
		}
	case 'U', 'S':
		if l.strs, err = a.Strings(); err != nil {
			return labels{}, o.errf("classes_: %v", err)
		}
	case 'O':
		if l.strs, err = a.Strings(); err != nil {
			if l.floats, err = a.Float64s(); err != nil {
				return labels{}, fmt.Errorf("%w: classes_ of mixed types are not supported", runtime.ErrUnsupported)
			}
		}
	default:
		return labels{}, o.errf("classes_ has dtype %s", a.Dtype)
	}
	if l.len() < 2 {
		return labels{}, o.errf("classes_ has %d classes, want at least 2", l.len())
	}
	return l, nil
}

// tensor builds the predict output from class indices.
func (l labels) tensor(name string, idx []int) *tensor.Tensor {
	shape := []int64{int64(len(idx))}
	switch {
	case l.strs != nil:
		out := make([]string, len(idx))
		for i, k := range idx {
			out[i] = l.strs[k]
		}
		return runtime.NewBytes(name, shape, out)
	case l.floats != nil:
		out := make([]float64, len(idx))
		for i, k := range idx {
			out[i] = l.floats[k]
		}
		return runtime.NewFP64(name, shape, out)
	}
	out := make([]int64, len(idx))
	for i, k := range idx {
		out[i] = l.ints[k]
	}
	return runtime.NewInt64(name, shape, out)
}

func (l labels) datatype() tensor.DataType {
	switch {
	case l.strs != nil:
		return tensor.Bytes
	case l.floats != nil:
		return tensor.FP64
	}
	return tensor.Int64
}
