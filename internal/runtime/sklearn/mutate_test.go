package sklearn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
	"github.com/ferryserve/ferry/internal/tensor"
)

// objects lists every sklearn object reachable from v (estimators,
// pipeline steps, trees), each once.
func objects(v any, seen map[*pickle.Object]bool, out *[]*pickle.Object) {
	switch x := v.(type) {
	case *pickle.Object:
		if seen[x] {
			return
		}
		seen[x] = true
		*out = append(*out, x)
		objects(x.State, seen, out)
		objects(x.Args, seen, out)
	case *pickle.Dict:
		for _, e := range x.Values {
			objects(e, seen, out)
		}
	case *pickle.List:
		for _, e := range x.Items {
			objects(e, seen, out)
		}
	case pickle.Tuple:
		for _, e := range x {
			objects(e, seen, out)
		}
	case *pickle.Array:
		for _, e := range x.Objects {
			objects(e, seen, out)
		}
	}
}

// TestMutatedAttributes replaces, one at a time, every attribute of every
// object in every golden model by a wrong value: loading and predicting
// must return errors or results, never panic.
func TestMutatedAttributes(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	files, _ := filepath.Glob("testdata/models/*.joblib")
	replacements := []any{
		nil, int64(-1), int64(0), int64(1), int64(2), int64(1 << 40), "x", 1e308, true, false,
		&pickle.Array{},
		&pickle.Array{Dtype: &pickle.Dtype{Kind: 'f', Size: 8}, Shape: []int{0}, Data: []byte{}},
		&pickle.Array{Dtype: &pickle.Dtype{Kind: 'f', Size: 8}, Shape: []int{1, 1}, Data: make([]byte, 8)},
		&pickle.Array{Dtype: &pickle.Dtype{Kind: 'O', Size: 8}, Shape: []int{1}, Objects: []any{nil}},
		&pickle.List{}, pickle.Tuple{nil, nil, nil},
	}
	for _, f := range files {
		if strings.Contains(f, "bench_") || strings.Contains(f, "unsupported") {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		root, err := pickle.Load(t.Context(), fh, pickle.Options{Allow: allow})
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		var objs []*pickle.Object
		objects(root, map[*pickle.Object]bool{}, &objs)
		for _, o := range objs {
			st, ok := o.State.(*pickle.Dict)
			if !ok {
				continue
			}
			for k := range st.Values {
				orig := st.Values[k]
				for _, r := range replacements {
					st.Values[k] = r
					m, err := FromObject(root)
					if err == nil {
						predictZeros(m)
					}
				}
				st.Values[k] = orig
			}
		}
	}
}

func predictZeros(m *Model) {
	n := m.nFeatures
	if n > 1<<12 {
		return
	}
	req := &runtime.Request{
		Inputs:  []*tensor.Tensor{runtime.NewFP64("input-0", []int64{2, int64(n)}, make([]float64, 2*n))},
		Outputs: []string{OutputPredict},
	}
	_, _ = m.Predict(context.Background(), req)
	_ = m.Metadata()
}
