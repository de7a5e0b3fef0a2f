package attack_test

import (
	"os"
	"testing"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/attack"
)

// TestExampleServices keeps the InferenceServices in examples/attack (and
// docs/trust.md, which quotes them) valid: they load as KServe would
// store them, and the art block's configuration is one ferry attack
// takes.
func TestExampleServices(t *testing.T) {
	for _, f := range []string{"iris-art.yaml", "digits-hopskipjump.yaml"} {
		b, err := os.ReadFile("../../examples/attack/" + f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := api.Load(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		isvc, ok := objs[0].(*api.InferenceService)
		if !ok || isvc.Spec.Explainer == nil {
			t.Fatalf("%s: not an InferenceService with an explainer", f)
		}
		if art := isvc.Spec.Explainer.ART; art != nil {
			if _, err := attack.ParseConfig(art.Type, art.Config); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
}
