package explain

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadDataDill: a storageUri holding only Alibi's explainer.dill gets
// an error that says what to provide; with explainer.json beside it, the
// JSON is read.
func TestLoadDataDill(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "explainer.dill"), []byte("\x80\x04not run"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "explainer.dill")} {
		_, err := LoadData(p)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "explainer.dill") || !strings.Contains(err.Error(), DataFile) {
			t.Errorf("%s: %v", p, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, DataFile), []byte(`{"feature_names":["a","b"],"data":[[1,2],[3,4]]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := LoadData(dir)
	if err != nil || len(d.Rows) != 2 || d.FeatureNames[1] != "b" {
		t.Fatalf("with explainer.json beside it: %+v %v", d, err)
	}
}
