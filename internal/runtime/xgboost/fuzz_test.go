package xgboost

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
)

// Fuzz targets for the three parsers. Each is seeded with the golden
// models of its encoding; any input must either parse into a model that
// evaluates without panicking, or fail with ErrCorruptModel or
// ErrUnsupported.
//
// The seeds are a few KB, and Go minimises every new interesting input for
// up to a minute by default; short runs should cap that:
//
//	go test -run XXX -fuzz '^FuzzParseBinary$' -fuzztime=20s -fuzzminimizetime=2s

func seedFuzz(f *testing.F, ext string) {
	paths, _ := filepath.Glob("testdata/golden/*/model." + ext)
	if len(paths) == 0 {
		f.Fatalf("no golden .%s models", ext)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func checkParsed(t *testing.T, r *rawModel, err error) {
	t.Helper()
	if err == nil {
		var b *booster
		if b, err = build(r); err == nil {
			exercise(t, &Model{b: b, raw: r, encoding: EncodingJSON})
			return
		}
	}
	if !errors.Is(err, runtime.ErrCorruptModel) && !errors.Is(err, runtime.ErrUnsupported) {
		t.Fatalf("error %v wraps neither ErrCorruptModel nor ErrUnsupported", err)
	}
}

// exercise evaluates a parsed model on rows that take every kind of branch.
func exercise(t *testing.T, m *Model) {
	t.Helper()
	nf := m.NumFeatures()
	if nf > 1<<16 {
		return // a valid but huge model; rows would dominate the run
	}
	x := make([]float32, 3*nf)
	for i := range nf {
		x[nf+i] = float32(math.NaN())
		x[2*nf+i] = float32(i) - 1
	}
	out, err := m.PredictMargins(t.Context(), x, 3)
	if err != nil {
		t.Fatal(err)
	}
	pred := make([]float32, 3*m.b.obj.outputsPerRow(m.b.ngroup))
	m.b.obj.transform(out, m.b.ngroup, pred)
	// Nine rows take the block walk that three rows (the small-batch
	// walk) do not; each row must score as it did alone.
	x9 := slices.Concat(x, x, x)
	out9, err := m.PredictMargins(t.Context(), x9, 9)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out9 {
		if w := out[i%len(out)]; math.Float32bits(v) != math.Float32bits(w) {
			t.Fatalf("margin %d: %v in a batch of 9, %v in a batch of 3", i, v, w)
		}
	}
	_ = m.Metadata()
}

func FuzzParseJSON(f *testing.F) {
	seedFuzz(f, "json")
	f.Add(handJSON())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseJSON(data)
		checkParsed(t, r, err)
	})
}

func FuzzParseUBJSON(f *testing.F) {
	seedFuzz(f, "ubj")
	f.Fuzz(func(t *testing.T, data []byte) {
		js, err := ubjToJSON(data)
		if err != nil {
			checkParsed(t, nil, err)
			return
		}
		if !json.Valid(quoteNonFinite(js)) {
			t.Fatalf("transcoded UBJSON is not valid JSON: %.200q", js)
		}
		r, err := parseJSON(js)
		checkParsed(t, r, err)
	})
}

func FuzzParseBinary(f *testing.F) {
	seedFuzz(f, "bst")
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseBinary(data)
		checkParsed(t, r, err)
	})
}
