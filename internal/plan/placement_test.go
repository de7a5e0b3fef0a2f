package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/api"
)

func TestTrainedModelPlacement(t *testing.T) {
	loads := func(f string) bool { return f == "sklearn" || f == "xgboost" }
	parent := func(uri, limit string) *api.InferenceService {
		s := &api.InferenceService{Metadata: api.ObjectMeta{Name: "mms"}}
		s.Spec.Predictor.SKLearn = &api.PredictorExtensionSpec{StorageURI: uri}
		if limit != "" {
			s.Spec.Predictor.SKLearn.Resources.Limits = map[string]api.Quantity{"memory": api.Quantity(limit)}
		}
		return s
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tm := func(name, framework, memory string, age int) *api.TrainedModel {
		ts := t0.Add(time.Duration(age) * time.Minute)
		return &api.TrainedModel{Metadata: api.ObjectMeta{Name: name, CreationTimestamp: &ts},
			Spec: api.TrainedModelSpec{InferenceService: "mms", Model: api.StoredModel{Framework: framework, Memory: api.Quantity(memory)}}}
	}
	render := func(cs []api.Condition) string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Type+"="+c.Status+" "+c.Reason)
		}
		return strings.Join(out, ", ")
	}
	const ok = "IsMMSPredictor=True , FrameworkSupported=True , MemoryResourceAvailable=True "

	// First come, first placed: a (1Gi, oldest) and c (768Mi) fit in
	// 2Gi; b (1.5Gi) does not beside a; tf, a framework ferry serve does
	// not load, takes no memory (else c would not fit); a bad quantity is
	// reported.
	a, tf, b := tm("a", "sklearn", "1Gi", 0), tm("tf", "tensorflow", "512Mi", 1), tm("b", "XGBoost", "1536Mi", 2)
	c, bad := tm("c", "sklearn", "768Mi", 3), tm("bad", "sklearn", "lots", 4)
	got := TrainedModelPlacement(parent("", "2Gi"), []*api.TrainedModel{c, bad, b, tf, a}, loads)
	for _, tc := range []struct {
		tm   *api.TrainedModel
		want string
	}{
		{a, ok},
		{b, "IsMMSPredictor=True , FrameworkSupported=True , MemoryResourceAvailable=False MemoryResourceUnavailable"},
		{c, ok},
		{tf, "IsMMSPredictor=True , FrameworkSupported=False FrameworkNotSupported, MemoryResourceAvailable=True "},
		{bad, "IsMMSPredictor=True , FrameworkSupported=True , MemoryResourceAvailable=False InvalidMemory"},
	} {
		if r := render(got[tc.tm]); r != tc.want {
			t.Errorf("%s: %s, want %s", tc.tm.Metadata.Name, r, tc.want)
		}
	}
	if m := got[b][2].Message; !strings.Contains(m, "1536Mi") || !strings.Contains(m, "resources.limits.memory") {
		t.Errorf("memory message %q names neither the need nor the fix", m)
	}

	// A single-model parent, and no limit at all (every model fits).
	one := TrainedModelPlacement(parent("gs://b/m", ""), []*api.TrainedModel{a}, loads)
	if r := render(one[a]); !strings.HasPrefix(r, "IsMMSPredictor=False NotMMSPredictor") {
		t.Errorf("single-model parent: %s", r)
	}
	free := TrainedModelPlacement(parent("", ""), []*api.TrainedModel{tm("x", "sklearn", "900Ti", 0)}, loads)
	for _, cs := range free {
		if r := render(cs); r != ok {
			t.Errorf("no limit: %s", r)
		}
	}

	// Ready takes the first failed placement's reason, except over an
	// invalid spec.
	conds := WithPlacement(TrainedModelConditions("", true, true, true), got[b])
	if last := conds[len(conds)-1]; last.Type != "Ready" || last.Reason != "MemoryResourceUnavailable" || len(conds) != 5 {
		t.Errorf("with placement: %s", render(conds))
	}
	if last := WithPlacement(TrainedModelConditions("spec: bad", true, true, false), got[b]); last[len(last)-1].Reason != "InvalidSpec" {
		t.Errorf("invalid spec: %s", render(last))
	}
	if r := render(WithPlacement(TrainedModelConditions("", true, true, true), got[a])); !strings.HasSuffix(r, "Ready=True ") {
		t.Errorf("placed: %s", r)
	}
}
