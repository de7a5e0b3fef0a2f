package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/ferryserve/ferry/internal/api"
)

// TrainedModel placement conditions, as KServe names them.
const (
	ConditionIsMMSPredictor          = "IsMMSPredictor"
	ConditionFrameworkSupported      = "FrameworkSupported"
	ConditionMemoryResourceAvailable = "MemoryResourceAvailable"
)

// TrainedModelPlacement checks, as KServe's TrainedModel controller does
// before it lists a model in its parent's model config, that each of tms
// (the parent's TrainedModels) can go on parent: the parent's predictor is
// a multi-model server (no storageUri, a format ferry serve runs: loads
// says which), the model's framework is one it loads, and the models' memory
// fits in the predictor's memory limit. Memory is given out in order of
// creation (then name): a model that does not fit beside those before it
// fails and the earlier ones keep their place, where KServe fails every
// model once their sum exceeds the limit. parent must be defaulted (its
// limit set). It returns each model's three conditions.
func TrainedModelPlacement(parent *api.InferenceService, tms []*api.TrainedModel, loads func(format string) bool) map[*api.TrainedModel][]api.Condition {
	format, uri, _, custom := parent.PredictorFormat()
	mms := api.Condition{Type: ConditionIsMMSPredictor, Status: "True"}
	switch {
	case uri != "":
		mms = api.Condition{Type: ConditionIsMMSPredictor, Status: "False", Reason: "NotMMSPredictor",
			Message: fmt.Sprintf("the predictor of %s serves one model (storageUri %s): a multi-model server has no storageUri", parent.Metadata.Name, uri)}
	case custom != nil || !loads(format):
		mms = api.Condition{Type: ConditionIsMMSPredictor, Status: "False", Reason: "NotMMSPredictor",
			Message: fmt.Sprintf("the predictor of %s (format %q) is not ferry serve, the multi-model server TrainedModels are loaded into", parent.Metadata.Name, format)}
	}
	var limit int64 = -1 // no limit known
	var limitErr string
	if c := parent.PredictorContainer(); c != nil {
		if q, ok := c.Resources.Limits["memory"]; ok {
			b, err := q.Bytes()
			if err != nil {
				limitErr = fmt.Sprintf("the predictor's memory limit %q: %v", string(q), err)
			} else {
				limit = b
			}
		}
	}
	ordered := slices.Clone(tms)
	slices.SortStableFunc(ordered, func(a, b *api.TrainedModel) int {
		var ta, tb int64
		if a.Metadata.CreationTimestamp != nil {
			ta = a.Metadata.CreationTimestamp.UnixNano()
		}
		if b.Metadata.CreationTimestamp != nil {
			tb = b.Metadata.CreationTimestamp.UnixNano()
		}
		return cmp.Or(cmp.Compare(ta, tb), strings.Compare(a.Metadata.Name, b.Metadata.Name))
	})
	out := make(map[*api.TrainedModel][]api.Condition, len(tms))
	var used int64
	for _, tm := range ordered {
		fw := strings.ToLower(tm.Spec.Model.Framework)
		framework := api.Condition{Type: ConditionFrameworkSupported, Status: "True"}
		if !loads(fw) {
			framework = api.Condition{Type: ConditionFrameworkSupported, Status: "False", Reason: "FrameworkNotSupported",
				Message: fmt.Sprintf("framework %q is not one ferry serve loads", tm.Spec.Model.Framework)}
		}
		memory := api.Condition{Type: ConditionMemoryResourceAvailable, Status: "True"}
		need, err := tm.Spec.Model.Memory.Bytes()
		switch {
		case tm.Spec.Model.Memory == "":
			need, err = 0, nil
		case err != nil:
			memory = api.Condition{Type: ConditionMemoryResourceAvailable, Status: "False", Reason: "InvalidMemory", Message: fmt.Sprintf("spec.model.memory: %v", err)}
		}
		switch {
		case memory.Status == "False":
		case limitErr != "":
			memory = api.Condition{Type: ConditionMemoryResourceAvailable, Status: "False", Reason: "MemoryResourceUnavailable", Message: limitErr}
		case limit >= 0 && used+need > limit:
			memory = api.Condition{Type: ConditionMemoryResourceAvailable, Status: "False", Reason: "MemoryResourceUnavailable",
				Message: fmt.Sprintf("the model needs %s, and the predictor's memory limit %s has %s left beside the TrainedModels placed before it: raise the predictor's resources.limits.memory",
					string(tm.Spec.Model.Memory), string(parent.PredictorContainer().Resources.Limits["memory"]), binaryBytes(limit-used))}
		default:
			if mms.Status == "True" && framework.Status == "True" {
				used += need
			}
		}
		out[tm] = []api.Condition{mms, framework, memory}
	}
	return out
}

// Placed reports whether placement conditions all hold, and the first that
// does not.
func Placed(conds []api.Condition) (bool, api.Condition) {
	for _, c := range conds {
		if c.Status != "True" {
			return false, c
		}
	}
	return true, api.Condition{}
}

// WithPlacement adds placement to a TrainedModel's conditions (those of
// TrainedModelConditions, Ready last): a failed placement is why the model
// is not Ready, ahead of the model-config and parent reasons; an invalid
// spec stays the reason.
func WithPlacement(conds, placement []api.Condition) []api.Condition {
	if len(conds) == 0 {
		return slices.Clone(placement)
	}
	ready := conds[len(conds)-1]
	out := append(slices.Clone(conds[:len(conds)-1]), placement...)
	if ok, failed := Placed(placement); !ok && ready.Reason != "InvalidSpec" {
		ready = api.Condition{Type: "Ready", Status: "False", Reason: failed.Reason, Message: failed.Message}
	}
	return append(out, ready)
}

// binaryBytes writes n bytes in the largest binary unit that divides it.
func binaryBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.suffix)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
