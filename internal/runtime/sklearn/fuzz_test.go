package sklearn

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/tensor"
)

// FuzzRead loads arbitrary bytes as a model and, when that succeeds,
// predicts on a row: errors are fine, panics are not.
func FuzzRead(f *testing.F) {
	for _, name := range []string{"dtc_bin.joblib", "logreg_bin.joblib", "pipe_std_logreg.joblib", "gbr.joblib", "linreg.joblib"} {
		b, err := os.ReadFile("testdata/models/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Read(context.Background(), bytes.NewReader(b))
		if err != nil {
			return
		}
		n := m.nFeatures
		if n > 1<<12 {
			return
		}
		req := &runtime.Request{
			Inputs:  []*tensor.Tensor{runtime.NewFP64("input-0", []int64{2, int64(n)}, make([]float64, 2*n))},
			Outputs: []string{"predict"},
		}
		_, _ = m.Predict(context.Background(), req)
		_ = m.Metadata()
	})
}
