package plan

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/attack"
	"github.com/ferryserve/ferry/internal/explain"
	"github.com/ferryserve/ferry/internal/runtime/builtin"
)

// ExplainerCommand is how a built-in explainer runs, the same under
// `ferry up` (a process) and the operator (a container of the ferry
// image): `ferry <Sub> <listener flags> <Args...>`.
type ExplainerCommand struct {
	// Sub is "serve" (alibi and aix explainers: ferry serve serving
	// :explain) or "attack" (art).
	Sub  string
	Args []string
}

// Explainer plans the built-in explainer of spec e for isvc, whose
// predictor answers at predictorHost. Alibi's black-box types (KernelShap,
// AnchorTabular, LimeTabular) call the predictor over V1 and read training
// data from storageUri; AnchorText, AnchorImages and aix's LimeImages read
// none (their storageUri, Alibi's explainer.dill, is not passed); TreeShap
// loads the predictor's own model to read its trees; art runs `ferry
// attack`. Unknown types and config keys are errors naming the field.
func Explainer(isvc *api.InferenceService, e *api.ExplainerSpec, predictorHost string) (ExplainerCommand, error) {
	const base = "spec.explainer"
	name := isvc.Metadata.Name
	x, block := e.Alibi, "alibi"
	switch {
	case e.ART != nil:
		own, err := attack.Args(e.ART.Type, e.ART.Config)
		if err != nil {
			return ExplainerCommand{}, fmt.Errorf("%s.art: %w", base, err)
		}
		return ExplainerCommand{Sub: "attack", Args: append([]string{"--model-name", name, "--predictor-host", predictorHost}, own...)}, nil
	case e.AIX != nil:
		x, block = e.AIX, "aix"
	case x == nil:
		return ExplainerCommand{}, fmt.Errorf("%s: no built-in explainer (alibi, aix or art)", base)
	}
	if err := (explain.Options{Type: x.Type}).Validate(); err != nil {
		return ExplainerCommand{}, fmt.Errorf("%s.%s.type: %w", base, block, stripConfigErr(err))
	}
	if err := (explain.Options{Type: x.Type, Config: x.Config}).Validate(); err != nil {
		return ExplainerCommand{}, fmt.Errorf("%s.%s.config: %w", base, block, stripConfigErr(err))
	}
	var own []string
	if x.Type == explain.TypeTreeShap {
		format, uri, _, custom := isvc.PredictorFormat()
		if custom != nil || uri == "" || !builtin.Has(format) {
			return ExplainerCommand{}, fmt.Errorf("%s.%s.type: TreeShap reads the predictor's trees: it needs a built-in predictor (xgboost, lightgbm, sklearn) with a storageUri", base, block)
		}
		own = []string{"--model-uri", uri, "--model-name", name, "--model-format", format}
		if x.StorageURI != "" {
			own = append(own, "--explainer-data", x.StorageURI)
		}
	} else {
		if x.StorageURI == "" && explain.NeedsData(x.Type) {
			return ExplainerCommand{}, fmt.Errorf("%s.%s.storageUri: %s needs training data: a storage URI holding %s", base, block, x.Type, explain.DataFile)
		}
		own = []string{"--predictor-host", predictorHost}
		if explain.NeedsData(x.Type) {
			own = append(own, "--explainer-data", x.StorageURI)
		}
	}
	own = append(own, "--explainer-type", x.Type)
	for _, k := range slices.Sorted(maps.Keys(x.Config)) {
		own = append(own, "--explainer-config", k+"="+x.Config[k])
	}
	return ExplainerCommand{Sub: "serve", Args: own}, nil
}

// stripConfigErr drops explain's "explainer config: " prefix, which the
// field path replaces.
func stripConfigErr(err error) error {
	if errors.Is(err, explain.ErrConfig) {
		if s, ok := strings.CutPrefix(err.Error(), explain.ErrConfig.Error()+": "); ok {
			return errors.New(s)
		}
	}
	return err
}
