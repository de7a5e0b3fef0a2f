package sklearn

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/sklearn/pickle"
)

// A valid pickle naming a function Ferry will not load (what a
// FunctionTransformer(func=numpy.log1p) holds) is unsupported, not corrupt.
func TestForeignGlobalIsUnsupported(t *testing.T) {
	p := []byte("cnumpy.core\n_ufunc_reconstruct\n(Vnumpy\nVlog1p\ntR.")
	_, err := Read(t.Context(), bytes.NewReader(p))
	if !errors.Is(err, runtime.ErrUnsupported) || !errors.Is(err, pickle.ErrForbidden) || errors.Is(err, runtime.ErrCorruptModel) {
		t.Fatalf("got %v, want an unsupported error", err)
	}
	for _, want := range []string{"unsupported", "numpy.core._ufunc_reconstruct", "FunctionTransformer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "corrupt") {
		t.Errorf("error %q calls a valid file corrupt", err)
	}
}

// The decode budget a loader finds in its context bounds the decode.
func TestDecodeBudgetFromContext(t *testing.T) {
	b, err := os.ReadFile("testdata/models/rfc.joblib")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Read(runtime.WithDecodeBudget(t.Context(), 64<<20), bytes.NewReader(b)); err != nil {
		t.Fatalf("within budget: %v", err)
	}
	_, err = Read(runtime.WithDecodeBudget(t.Context(), 4<<10), bytes.NewReader(b))
	if !errors.Is(err, runtime.ErrBudget) || !errors.Is(err, pickle.ErrBudget) || !strings.Contains(err.Error(), "--max-model-decode-bytes") {
		t.Fatalf("over budget: got %v", err)
	}
}
