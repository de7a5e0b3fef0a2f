package builtin

import (
	"slices"
	"testing"
)

func TestNames(t *testing.T) {
	names := Names()
	for _, f := range []string{"xgboost", "lightgbm", "sklearn", "pmml", "onnx"} {
		if !slices.Contains(names, f) || !Has(f) {
			t.Errorf("%s is not built in: %v", f, names)
		}
	}
	for _, f := range []string{"pytorch", "tensorflow", "triton", ""} {
		if Has(f) {
			t.Errorf("%q must need its own server", f)
		}
	}
}
