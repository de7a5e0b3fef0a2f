package xgboost

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ferryserve/ferry/internal/runtime"
)

// TestTreeEnsembleEncodings: the trees laid open for TreeSHAP, covers
// included, are the same whichever encoding the model was read from, and
// every inner node's cover is its children's covers summed.
func TestTreeEnsembleEncodings(t *testing.T) {
	for name, c := range loadCases(t) {
		if c.Booster == "gblinear" {
			continue
		}
		var first *runtime.TreeEnsemble
		for _, enc := range c.Formats {
			b, err := os.ReadFile(filepath.Join("testdata/golden", name, "model."+enc))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(b)
			if err != nil {
				t.Fatalf("%s.%s: %v", name, enc, err)
			}
			e, err := m.TreeEnsemble()
			if err != nil {
				t.Fatalf("%s.%s: %v", name, enc, err)
			}
			if first == nil {
				first = e
				checkCovers(t, name, e)
				continue
			}
			e.FeatureNames = first.FeatureNames
			if !reflect.DeepEqual(e, first) {
				t.Errorf("%s: %s ensemble differs from %s", name, enc, c.Formats[0])
			}
		}
	}
}

func checkCovers(t *testing.T, name string, e *runtime.TreeEnsemble) {
	t.Helper()
	for ti, tr := range e.Trees {
		for i, n := range tr.Nodes {
			if n.IsLeaf() {
				continue
			}
			sum := tr.Nodes[n.Left].Cover + tr.Nodes[n.Right].Cover
			if d := sum - n.Cover; d > 1e-3*n.Cover || d < -1e-3*n.Cover {
				t.Errorf("%s tree %d node %d: cover %v, children sum %v", name, ti, i, n.Cover, sum)
			}
		}
	}
}

func TestTreeEnsembleLinear(t *testing.T) {
	b, err := os.ReadFile("testdata/golden/gblinear_squarederror/model.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.TreeEnsemble(); err == nil {
		t.Fatal("gblinear model laid open as trees")
	}
}
