package operator

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite config/crd from the Go types")

// TestCRDFiles fails when the committed CRDs under config/crd differ from
// what internal/api's types generate, so a field added to the types cannot
// be silently pruned by the API server.
func TestCRDFiles(t *testing.T) {
	dir := filepath.Join("..", "..", "config", "crd")
	for _, crd := range CRDs() {
		want, err := RenderCRD(crd)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, CRDFileName(crd))
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run: go test ./internal/operator -run TestCRDFiles -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date with internal/api's types; run: go test ./internal/operator -run TestCRDFiles -update", path)
		}
	}
}
